package main

import (
	"encoding/json"
	"image"
	"image/color"
	"image/png"
	"os"
	"path/filepath"
	"testing"

	"github.com/godiffuse/godiffuse/metrics"
)

// A 28×28 class-conditional model trained for two steps on the embedded
// Fashion-MNIST slice: enough to exercise sampling, the judge and every
// metric of diffuse eval end to end (the numbers themselves are poor).
const fmnistTinyConfig = `{"sample_size": 28, "in_channels": 1, "out_channels": 1, "block_out_channels": [8, 16],
 "layers_per_block": 1, "norm_num_groups": 4, "num_class_embeds": 10,
 "down_block_types": ["DownBlock2D", "DownBlock2D"], "up_block_types": ["UpBlock2D", "UpBlock2D"]}`

func TestEvalCheckpointAndFolder(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "config.json")
	writeFile(t, cfg, []byte(fmnistTinyConfig), 0o644)
	out := filepath.Join(dir, "out")
	if err := runTrain([]string{"-config", cfg, "-steps", "2", "-batch", "4", "-out", out, "-sample-steps", "1"}); err != nil {
		t.Fatal(err)
	}
	ckpt := filepath.Join(out, "checkpoint")
	stats := filepath.Join(dir, "real.stats")
	report := filepath.Join(dir, "report.json")
	if err := runEval([]string{"-checkpoint", ckpt, "-n", "30", "-steps", "2", "-batch", "16", "-real-n", "200",
		"-kid-subsets", "5", "-save-stats", stats, "-json", report, "-noise-baseline"}); err != nil {
		t.Fatal(err)
	}
	var rep evalReport
	raw, err := os.ReadFile(report)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, &rep); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"FD-FMNIST", "FD-FMNIST_noise", "IS", "KID", "precision", "recall", "class_accuracy"} {
		if _, ok := rep.Metrics[k]; !ok {
			t.Errorf("report lacks %s: %v", k, rep.Metrics)
		}
	}
	if rep.Generated.N != 30 || rep.Real.N != 200 || rep.Features != "fmnist-judge-v1/fc1" {
		t.Errorf("report sides: %+v %+v %s", rep.Generated, rep.Real, rep.Features)
	}
	if s, err := metrics.LoadStats(stats); err != nil || s.N != 200 {
		t.Fatalf("saved statistics: %v", err)
	}

	// The same real statistics from the file, against a folder of samples.
	folder := filepath.Join(dir, "samples")
	if err := runSample([]string{"-checkpoint", ckpt, "-n", "12", "-steps", "2", "-out", "", "-folder", folder}); err != nil {
		t.Fatal(err)
	}
	if err := runEval([]string{"-images", folder, "-real", "stats:" + stats, "-is-splits", "2"}); err != nil {
		t.Fatal(err)
	}
}

func writeGreyPNG(t *testing.T, path string, w, h int) {
	t.Helper()
	img := image.NewGray(image.Rect(0, 0, w, h))
	for i := range img.Pix {
		img.Pix[i] = uint8(i * 13)
	}
	img.SetGray(0, 0, color.Gray{255})
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	png.Encode(f, img)
}
