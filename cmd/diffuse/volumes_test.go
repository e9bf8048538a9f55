package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/godiffuse/godiffuse/mesh"
)

// tinyUNet3D is a fast UNet3D config for the command's tests.
const tinyUNet3D = `{"_class_name": "UNet3DModel", "in_channels": 1, "out_channels": 1, "patch_size": 4,
  "block_out_channels": [8, 16], "layers_per_block": 1, "down_block_types": ["DownBlock3D", "DownBlock3D"],
  "up_block_types": ["UpBlock3D", "UpBlock3D"], "mid_block_type": "UNetMidBlock3D", "add_attention": true,
  "attention_head_dim": 8, "norm_num_groups": 4}`

// TestTrainShapes3DThenSample3D: diffuse train -data shapes3d writes a 3-D
// checkpoint, resumes it, and sample3d turns it into meshes of every format
// with their provenance, a preview sheet and a turntable.
func TestTrainShapes3DThenSample3D(t *testing.T) {
	out := t.TempDir()
	cfg := filepath.Join(out, "tiny3d.json")
	writeFile(t, cfg, []byte(tinyUNet3D), 0o644)
	args := []string{"-data", "shapes3d:64", "-config", cfg, "-steps", "2", "-batch", "2", "-out", out, "-sample-steps", "1", "-device", "cpu"}
	if err := runTrain(args); err != nil {
		t.Fatal(err)
	}
	// The checkpoint knows its data and model: -resume needs neither.
	if err := runTrain([]string{"-resume", "-steps", "3", "-out", out, "-sample-steps", "1", "-device", "cpu"}); err != nil {
		t.Fatal(err)
	}
	if info, err := os.ReadFile(filepath.Join(out, "checkpoint", "COMPLETE")); err != nil || string(info) != "3\n" {
		t.Errorf("after resuming: COMPLETE %q %v", info, err)
	}
	for _, f := range []string{"loss.png", "samples.png"} {
		if _, err := os.Stat(filepath.Join(out, f)); err != nil {
			t.Error(err)
		}
	}
	ckpt := filepath.Join(out, "checkpoint")
	for _, format := range mesh.Formats {
		dir := filepath.Join(out, format)
		sargs := []string{"-checkpoint", ckpt, "-class", "torus", "-n", "2", "-steps", "2", "-format", format, "-out", dir, "-device", "cpu", "-judge", "-json", filepath.Join(dir, "scores.json")}
		if format == "obj" {
			sargs = append(sargs, "-gif", filepath.Join(out, "spin.gif"))
		}
		if err := runSample3D(sargs); err != nil {
			t.Fatal(err)
		}
		raw, err := os.ReadFile(filepath.Join(dir, "torus_001."+format))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Contains(raw[:200], []byte("godiffuse")) || !bytes.Contains(raw[:200], []byte("torus_001")) {
			t.Errorf("%s: no provenance in the header: %q", format, raw[:80])
		}
		if _, err := os.Stat(filepath.Join(dir, "preview.png")); err != nil {
			t.Error(err)
		}
	}
	if _, err := os.Stat(filepath.Join(out, "spin.gif")); err != nil {
		t.Error(err)
	}
	err := runSample3D([]string{"-checkpoint", ckpt, "-class", "dragon", "-steps", "1", "-out", filepath.Join(out, "x"), "-device", "cpu"})
	if err == nil || !strings.Contains(err.Error(), "dragon") {
		t.Errorf("-class dragon: %v", err)
	}
	// The image commands say what to use instead; serve's discovery passes it over.
	if err := runSample([]string{"-checkpoint", ckpt, "-out", filepath.Join(out, "s.png")}); err == nil || !strings.Contains(err.Error(), "sample3d") {
		t.Errorf("diffuse sample on a 3-D checkpoint: %v", err)
	}
	if srcs, err := findSources(nil, out); err != nil || len(srcs) != 0 {
		t.Errorf("serve's discovery in %s: %+v %v", out, srcs, err)
	}
	if err := runTrain(append(args, "-hflip", "-out", filepath.Join(out, "flip"))); err == nil || !strings.Contains(err.Error(), "hflip") {
		t.Errorf("-hflip on volumes: %v", err)
	}
}
