package unet

import (
	"math"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/godiffuse/godiffuse/kernels"
	"github.com/godiffuse/godiffuse/safetensors"
	"github.com/godiffuse/godiffuse/tensor"
)

// TestUNet3DParity runs testdata/unet3d (written by its make_fixture.py, a
// PyTorch UNet3D with nn.Conv3d and trilinear F.interpolate) and compares the
// output and every parameter's gradient of sum(out·r) within 1e-4 of the
// largest magnitude, at every CPU level.
func TestUNet3DParity(t *testing.T) {
	for _, level := range kernels.Levels() {
		t.Run(level.String(), func(t *testing.T) { checkUNet3DParity(t, kernels.NewCPULevel(2, level)) })
	}
}

func checkUNet3DParity(t *testing.T, dev tensor.Device) {
	dir := filepath.Join("testdata", "unet3d")
	m, err := LoadUNet3D(dev, dir)
	if err != nil {
		t.Fatal(err)
	}
	io, err := safetensors.Read(filepath.Join(dir, "io.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	defer io.Close()
	get := func(name string) ([]float32, []int) {
		v, shape, err := io.Float32(name)
		if err != nil {
			t.Fatal(err)
		}
		return v, shape
	}
	xv, xs := get("x")
	ts, _ := get("timesteps")
	lv, _, err := io.Int64("labels")
	if err != nil {
		t.Fatal(err)
	}
	rv, rs := get("r")
	want, _ := get("out")
	x := tensor.FromFloat32(dev, xv, xs...)
	out, err := m.Forward(x, ts, lv, nil)
	if err != nil {
		t.Fatal(err)
	}
	got := out.MustFloat32s()
	closeWithin(t, "out", got, want, 1e-4)
	tensor.Sum(tensor.Mul(out, tensor.FromFloat32(dev, rv, rs...))).Backward()
	for _, p := range m.Params() {
		gw, _ := get("grad." + p.Name)
		closeWithin(t, "grad."+p.Name, p.T.Grad().MustFloat32s(), gw, 1e-4)
	}

	// The same volumes as stacks of slices (B, C, D·H, W) give the same answer in that shape.
	flat, err := m.Forward(x.Reshape(xs[0], xs[1], xs[2]*xs[3], xs[4]), ts, lv, nil)
	if err != nil {
		t.Fatal(err)
	}
	if s := flat.Shape(); len(s) != 4 || s[2] != xs[2]*xs[3] {
		t.Fatalf("slices in, shape %v out", s)
	}
	closeWithin(t, "out (slices)", flat.MustFloat32s(), want, 1e-4)
}

// closeWithin fails when any |got - want| exceeds tol·max|want| (the scale
// at least 1e-2: a gradient that is zero in exact arithmetic, as the key
// bias's under softmax, is compared absolutely).
func closeWithin(t *testing.T, name string, got, want []float32, tol float64) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d values, want %d", name, len(got), len(want))
	}
	scale, worst := 1e-2, 0.0
	for i := range want {
		scale = math.Max(scale, math.Abs(float64(want[i])))
		worst = math.Max(worst, math.Abs(float64(got[i]-want[i])))
	}
	if worst > tol*scale {
		t.Fatalf("%s: max |diff| %.3g > %g·max|want| (%.3g)", name, worst, tol, scale)
	}
}

// TestUNet3DSaveLoad round-trips a model through Save and LoadUNet3D and
// checks that bad configs are refused naming the field.
func TestUNet3DSaveLoad(t *testing.T) {
	dev := kernels.NewCPU(2)
	cfg := DefaultUNet3DConfig()
	cfg.BlockOutChannels, cfg.SampleSize = []int{8, 16}, 8
	cfg.DownBlockTypes, cfg.UpBlockTypes = cfg.DownBlockTypes[:2], cfg.UpBlockTypes[:2]
	cfg.NormNumGroups, cfg.AttentionHeadDim = 4, nil
	n := 4
	cfg.NumClassEmbeds = &n
	m, err := NewUNet3D(dev, cfg, 1)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := m.Save(dir); err != nil {
		t.Fatal(err)
	}
	back, err := LoadUNet3D(dev, dir)
	if err != nil {
		t.Fatal(err)
	}
	x := tensor.Full(dev, 0.5, 1, 1, 8, 8, 8)
	a, err := m.Forward(x, []float32{3}, []int64{2}, nil)
	if err != nil {
		t.Fatal(err)
	}
	b, err := back.Forward(x, []float32{3}, []int64{2}, nil)
	if err != nil {
		t.Fatal(err)
	}
	closeWithin(t, "reloaded", b.MustFloat32s(), a.MustFloat32s(), 0)
	if _, err := m.Forward(x, []float32{3}, []int64{4}, nil); err == nil || !strings.Contains(err.Error(), "label") {
		t.Fatalf("label 4 of 4 classes: %v", err)
	}
	if _, err := m.Forward(tensor.Zeros(dev, 1, 1, 7, 8, 8), []float32{3}, []int64{0}, nil); err == nil {
		t.Fatal("a side of 7 for two blocks was accepted")
	}
	for _, bad := range []struct{ json, field string }{
		{`{"block_out_channels": [32, 64, 60], "norm_num_groups": 8}`, "block_out_channels[2]"},
		{`{"down_block_types": ["DownBlock2D", "DownBlock3D", "DownBlock3D"]}`, "down_block_types[0]"},
		{`{"upsample_interpolation": "bicubic"}`, "upsample_interpolation"},
		{`{"layers_per_block": "two"}`, "layers_per_block"},
		{`{"_class_name": "UNet2DModel"}`, "_class_name"},
		{`{"sample_size": 30}`, "sample_size"},
	} {
		if _, err := ParseUNet3DConfig("c.json", []byte(bad.json)); err == nil || !strings.Contains(err.Error(), bad.field) {
			t.Errorf("%s: error %v does not name %s", bad.json, err, bad.field)
		}
	}
}

// FuzzUNet3DConfig: a config the parser accepts builds (on a device without
// memory), and nothing in it panics.
func FuzzUNet3DConfig(f *testing.F) {
	f.Add([]byte(`{"block_out_channels": [8, 16], "down_block_types": ["DownBlock3D", "AttnDownBlock3D"], "up_block_types": ["AttnUpBlock3D", "UpBlock3D"], "norm_num_groups": 4, "attention_head_dim": 8}`))
	f.Add([]byte(`{"patch_size": 4, "sample_size": 32}`))
	f.Add([]byte(`{"block_out_channels": [4096, 4096, 4096, 4096, 4096, 4096, 4096, 4096]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := ParseUNet3DConfig("fuzz", data)
		if err != nil {
			return
		}
		if _, err := newUNet3D(tensor.ShapesOnly(), cfg, nil); err != nil {
			t.Fatalf("an accepted config does not build: %v", err)
		}
	})
}

// TestUNet3DReleasedIntermediates: sampling releases the blocks'
// intermediates; on a device that recycles every length and fills reused
// arrays with NaN first, the fixture model still matches the reference,
// pass after pass, and with the same bits as tensor.Repeat runs passes 3–5
// on one thread.
func TestUNet3DReleasedIntermediates(t *testing.T) {
	dev := kernels.PoisonedCPU(2)
	dir := filepath.Join("testdata", "unet3d")
	m, err := LoadUNet3D(dev, dir)
	if err != nil {
		t.Fatal(err)
	}
	defer m.NoGrad()()
	io, err := safetensors.Read(filepath.Join(dir, "io.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	defer io.Close()
	xv, xs, _ := io.Float32("x")
	ts, _, _ := io.Float32("timesteps")
	want, _, _ := io.Float32("out")
	lv, _, err := io.Int64("labels")
	if err != nil {
		t.Fatal(err)
	}
	var first []float32
	for pass := range 8 {
		out, err := m.Forward(tensor.FromFloat32(dev, xv, xs...), ts, lv, nil)
		if err != nil {
			t.Fatal(err)
		}
		got := out.MustFloat32s()
		closeWithin(t, "out", got, want, 1e-4)
		if pass == 0 {
			first = got
		} else if !slices.Equal(got, first) {
			t.Fatalf("pass %d: output differs from the first pass", pass)
		}
	}
}
