package main

import (
	"fmt"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/godiffuse/godiffuse/internal/vktest"
	"github.com/godiffuse/godiffuse/safetensors"
)

// diffuse train and sample with -device vulkan follow the CPU: the same
// seed gives the same batches, noise and dropout masks on both devices, so
// the loss of each step may differ only by float32 rounding (summation
// order in the GPU's GEMMs and reductions): we allow 1e-4 relative. The
// sampled images may differ by at most 2 of 255 grey levels.
func TestTrainAndSampleOnVulkan(t *testing.T) {
	vk := vktest.Device(t)
	t.Setenv("GODIFFUSE_VULKAN_MATMUL", "fp32") // fp32 tolerances: no fp16 cooperative-matrix GEMMs
	spec := fmt.Sprintf("vulkan:%d", vk.Info().Index)
	dir := t.TempDir()
	writeImages(t, filepath.Join(dir, "imgs"), 6)
	cfg := filepath.Join(dir, "config.json")
	writeFile(t, cfg, []byte(smallConfig), 0o644)
	losses := map[string][]float32{}
	pix := map[string][][]uint8{}
	for _, d := range []string{"cpu", spec} {
		out := filepath.Join(dir, "out-"+d[:3])
		if err := runTrain([]string{"-config", cfg, "-data", "folder:" + filepath.Join(dir, "imgs"), "-steps", "3", "-batch", "4",
			"-out", out, "-sample-steps", "1", "-device", d}); err != nil {
			t.Fatalf("%s: %v", d, err)
		}
		st, err := safetensors.Read(filepath.Join(out, "checkpoint", "train_state.safetensors"))
		if err != nil {
			t.Fatal(err)
		}
		if losses[d], _, err = st.Float32("losses"); err != nil {
			t.Fatal(err)
		}
		folder := filepath.Join(dir, "samples-"+d[:3])
		if err := runSample([]string{"-checkpoint", filepath.Join(out, "checkpoint"), "-n", "2", "-steps", "3",
			"-out", "", "-folder", folder, "-device", d}); err != nil {
			t.Fatalf("%s: %v", d, err)
		}
		entries, _ := os.ReadDir(folder)
		for _, e := range entries {
			f, err := os.Open(filepath.Join(folder, e.Name()))
			if err != nil {
				t.Fatal(err)
			}
			img, err := png.Decode(f)
			f.Close()
			if err != nil {
				t.Fatal(err)
			}
			var grey []uint8
			b := img.Bounds()
			for y := b.Min.Y; y < b.Max.Y; y++ {
				for x := b.Min.X; x < b.Max.X; x++ {
					r, _, _, _ := img.At(x, y).RGBA()
					grey = append(grey, uint8(r>>8))
				}
			}
			pix[d] = append(pix[d], grey)
		}
	}
	c, g := losses["cpu"], losses[spec]
	if len(c) != 3 || len(g) != 3 {
		t.Fatalf("loss histories of %d and %d steps", len(c), len(g))
	}
	for i := range c {
		rel := math.Abs(float64(g[i]-c[i])) / max(math.Abs(float64(c[i])), 1e-6)
		t.Logf("step %d: loss cpu %.7f, vulkan %.7f (relative difference %.1e)", i+1, c[i], g[i], rel)
		if rel > 1e-4 {
			t.Errorf("step %d: the Vulkan loss departs from the CPU's by %.2g relative", i+1, rel)
		}
	}
	if len(pix["cpu"]) != 2 || len(pix[spec]) != 2 {
		t.Fatalf("%d and %d sample files", len(pix["cpu"]), len(pix[spec]))
	}
	worst := 0
	for i := range pix["cpu"] {
		for k := range pix["cpu"][i] {
			worst = max(worst, absInt(int(pix["cpu"][i][k])-int(pix[spec][i][k])))
		}
	}
	t.Logf("samples: max difference %d grey levels", worst)
	if worst > 2 {
		t.Errorf("Vulkan samples differ from the CPU's by up to %d grey levels", worst)
	}
}

func absInt(x int) int {
	if x < 0 {
		return -x
	}
	return x
}
