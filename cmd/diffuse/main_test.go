package main

import (
	"image"
	"image/color"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// writeImages makes a folder of n small PNGs (alternating bright and dark squares).
// writeFile and mkdirAll fail the test on an error (a fixture that was not
// written would make the test pass or fail for the wrong reason).
func writeFile(t testing.TB, path string, data []byte, perm os.FileMode) {
	t.Helper()
	if err := os.WriteFile(path, data, perm); err != nil {
		t.Fatal(err)
	}
}

func mkdirAll(t testing.TB, dir string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
}

func writeImages(t *testing.T, dir string, n int) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for i := range n {
		img := image.NewGray(image.Rect(0, 0, 12, 10))
		for y := range 10 {
			for x := range 12 {
				v := uint8(20)
				if (x > 3 && x < 9) == (i%2 == 0) {
					v = 230
				}
				img.SetGray(x, y, color.Gray{v})
			}
		}
		f, err := os.Create(filepath.Join(dir, "img"+string(rune('a'+i))+".png"))
		if err != nil {
			t.Fatal(err)
		}
		png.Encode(f, img)
		f.Close()
	}
}

const smallConfig = `{"sample_size": 8, "in_channels": 1, "out_channels": 1, "block_out_channels": [8, 16],
 "layers_per_block": 1, "norm_num_groups": 4, "attention_head_dim": 8,
 "down_block_types": ["DownBlock2D", "AttnDownBlock2D"], "up_block_types": ["AttnUpBlock2D", "UpBlock2D"]}`

func TestTrainThenSample(t *testing.T) {
	dir := t.TempDir()
	writeImages(t, filepath.Join(dir, "imgs"), 6)
	cfg := filepath.Join(dir, "config.json")
	writeFile(t, cfg, []byte(smallConfig), 0o644)
	out := filepath.Join(dir, "out")
	args := []string{"-config", cfg, "-data", "folder:" + filepath.Join(dir, "imgs"), "-steps", "3", "-batch", "4",
		"-out", out, "-sample-steps", "2", "-checkpoint-every", "2", "-sample-every", "3"}
	if err := runTrain(args); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"checkpoint/unet/config.json", "checkpoint/unet_ema/diffusion_pytorch_model.safetensors",
		"checkpoint/train_state.safetensors", "loss.png", "samples.png", "samples/step_000003.png"} {
		if _, err := os.Stat(filepath.Join(out, f)); err != nil {
			t.Errorf("missing %s: %v", f, err)
		}
	}
	// Resume to 5 steps.
	if err := runTrain(append(args, "-resume", "-steps", "5")); err != nil {
		t.Fatal(err)
	}
	grid, folder, gif := filepath.Join(dir, "g.png"), filepath.Join(dir, "each"), filepath.Join(dir, "t.gif")
	if err := runSample([]string{"-checkpoint", filepath.Join(out, "checkpoint"), "-n", "3", "-steps", "4",
		"-out", grid, "-folder", folder, "-gif", gif, "-sampler", "ddim"}); err != nil {
		t.Fatal(err)
	}
	entries, _ := os.ReadDir(folder)
	if len(entries) != 3 {
		t.Errorf("%d files in the sample folder, want 3", len(entries))
	}
	for _, f := range []string{grid, gif} {
		if st, err := os.Stat(f); err != nil || st.Size() == 0 {
			t.Errorf("%s not written: %v", f, err)
		}
	}
}

func TestUnknownClassName(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "config.json")
	// A labelled IDX set: 4 images of 8×8 with 2 labels.
	img := []byte{0, 0, 8, 3, 0, 0, 0, 4, 0, 0, 0, 8, 0, 0, 0, 8}
	for i := range 4 * 64 {
		img = append(img, byte(i*7))
	}
	lab := []byte{0, 0, 8, 1, 0, 0, 0, 4, 0, 1, 0, 1}
	writeFile(t, filepath.Join(dir, "img.idx"), img, 0o644)
	writeFile(t, filepath.Join(dir, "lab.idx"), lab, 0o644)
	writeFile(t, cfg, []byte(smallConfig), 0o644)
	out := filepath.Join(dir, "out")
	if err := runTrain([]string{"-config", cfg, "-data", "idx:" + filepath.Join(dir, "img.idx") + "," + filepath.Join(dir, "lab.idx"),
		"-steps", "1", "-batch", "2", "-out", out, "-sample-steps", "1"}); err != nil {
		t.Fatal(err)
	}
	grid := filepath.Join(dir, "g.png")
	err := runSample([]string{"-checkpoint", filepath.Join(out, "checkpoint"), "-class", "giraffe", "-out", grid})
	if err == nil || !strings.Contains(err.Error(), "giraffe") || !strings.Contains(err.Error(), "-class") {
		t.Fatalf("unknown class: %v", err)
	}
	if _, err := os.Stat(grid); err == nil {
		t.Fatal("grid written despite the error")
	}
	if err := runSample([]string{"-checkpoint", filepath.Join(out, "checkpoint"), "-class", "1", "-n", "2", "-steps", "2", "-out", grid}); err != nil {
		t.Fatal(err)
	}
}
