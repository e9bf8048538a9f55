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
	os.WriteFile(cfg, []byte(smallConfig), 0o644)
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

func TestBadInputErrors(t *testing.T) {
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty")
	os.MkdirAll(empty, 0o755)
	corrupt := filepath.Join(dir, "corrupt")
	writeImages(t, corrupt, 2)
	os.WriteFile(filepath.Join(corrupt, "broken.png"), []byte("\x89PNG\r\n\x1a\nnot really"), 0o644)
	badCfg := filepath.Join(dir, "bad.json")
	os.WriteFile(badCfg, []byte(strings.Replace(smallConfig, `"AttnDownBlock2D"`, `"CrossAttnDownBlock2D"`, 1)), 0o644)
	badCkpt := filepath.Join(dir, "badckpt")
	os.MkdirAll(badCkpt, 0o755)
	os.WriteFile(filepath.Join(badCkpt, "train_state.safetensors"), []byte("garbage!garbage!"), 0o644)
	out := filepath.Join(dir, "never.png")
	cases := []struct {
		name string
		run  func([]string) error
		args []string
		want string
	}{
		{"negative steps", runTrain, []string{"-steps", "-3", "-out", dir}, "-steps"},
		{"empty folder", runTrain, []string{"-data", "folder:" + empty, "-out", dir}, empty},
		{"missing config", runTrain, []string{"-config", badCfg + ".none", "-out", dir}, "bad.json.none"},
		{"corrupt png in folder", runTrain, []string{"-data", "folder:" + corrupt, "-size", "8", "-out", dir}, "broken.png"},
		{"unknown block type", runTrain, []string{"-config", badCfg, "-out", dir}, "down_block_types[1]"},
		{"bad data spec", runTrain, []string{"-data", "hub:cifar", "-out", dir}, "-data"},
		{"missing checkpoint", runSample, []string{"-checkpoint", filepath.Join(dir, "nope"), "-out", out}, "nope"},
		{"corrupt checkpoint", runSample, []string{"-checkpoint", badCkpt, "-out", out}, "train_state.safetensors"},
		{"negative n", runSample, []string{"-n", "-1", "-out", out}, "-n"},
		{"unknown schedule", runNoise, []string{"-schedule", "quadratic", "-out", out}, "-schedule"},
		{"bad timestep", runNoise, []string{"-t", "1000", "-out", out}, "-t"},
	}
	for _, c := range cases {
		err := c.run(c.args)
		if err == nil {
			t.Errorf("%s: accepted", c.name)
			continue
		}
		if !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %q does not mention %q", c.name, err, c.want)
		}
	}
	if _, err := os.Stat(out); err == nil {
		t.Error("a failed command left an output file behind")
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
	os.WriteFile(filepath.Join(dir, "img.idx"), img, 0o644)
	os.WriteFile(filepath.Join(dir, "lab.idx"), lab, 0o644)
	os.WriteFile(cfg, []byte(smallConfig), 0o644)
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
