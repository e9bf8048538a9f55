package nn_test

import (
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/godiffuse/godiffuse/kernels"
	"github.com/godiffuse/godiffuse/nn"
	"github.com/godiffuse/godiffuse/safetensors"
	"github.com/godiffuse/godiffuse/tensor"
)

// TestParity runs the U-Net on every reference fixture (made by
// shared/reference/make_fixtures.py from diffusers' UNet2DModel in float64)
// and compares t_proj, emb, mid, out, loss and every stored gradient within
// 1e-4 of the stored tensor's max |value|. GODIFFUSE_FIXTURES names one more
// fixture directory (config.json, weights.safetensors, io.safetensors).
// It runs at every CPU level this machine has (generic, avx2, avx512).
func TestParity(t *testing.T) {
	dirs, _ := filepath.Glob("../testdata/fixtures/*")
	if extra := os.Getenv("GODIFFUSE_FIXTURES"); extra != "" {
		dirs = append(dirs, extra)
	}
	if len(dirs) == 0 {
		t.Fatal("no fixtures under testdata/fixtures")
	}
	for _, level := range kernels.Levels() {
		for _, dir := range dirs {
			t.Run(level.String()+"/"+filepath.Base(dir), func(t *testing.T) { checkParity(t, kernels.NewCPULevel(2, level), dir) })
		}
	}
}

func maxAbs(v []float32) float64 {
	m := 0.0
	for _, x := range v {
		m = max(m, math.Abs(float64(x)))
	}
	return m
}

// compare reports whether got matches want within rel·max|want| (absolute
// floor 1e-7 for an all-zero reference).
func compare(t *testing.T, name string, got *tensor.Tensor, want []float32, rel float64) {
	t.Helper()
	g, err := got.Float32s()
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	if len(g) != len(want) {
		t.Fatalf("%s: %d values, want %d", name, len(g), len(want))
	}
	tol := max(rel*maxAbs(want), 1e-7)
	worst, at := 0.0, 0
	for i := range g {
		if d := math.Abs(float64(g[i] - want[i])); d > worst || math.IsNaN(d) {
			worst, at = d, i
		}
	}
	if worst > tol || math.IsNaN(worst) {
		t.Errorf("%s: max |diff| %.3g at %d (got %g, want %g) > tol %.3g", name, worst, at, g[at], want[at], tol)
	} else {
		t.Logf("%s: max |diff| %.3g (%.2g of max|value|)", name, worst, worst/max(maxAbs(want), 1e-30))
	}
}

func checkParity(t *testing.T, dev tensor.Device, dir string) {
	m, err := nn.LoadUNet2DFiles(dev, filepath.Join(dir, "config.json"), filepath.Join(dir, "weights.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	io, err := safetensors.Read(filepath.Join(dir, "io.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	get := func(name string) ([]float32, []int) {
		v, s, err := io.Float32(name)
		if err != nil {
			t.Fatal(err)
		}
		return v, s
	}
	xv, xs := get("x")
	tv, _, err := io.Int64("t")
	if err != nil {
		t.Fatal(err)
	}
	ts := make([]float32, len(tv))
	for i, v := range tv {
		ts[i] = float32(v)
	}
	var labels []int64
	if _, ok := io.Tensors["class_labels"]; ok {
		labels, _, _ = io.Int64("class_labels")
	}
	x := tensor.FromFloat32(dev, xv, xs...).SetRequiresGrad(true)
	trace := map[string]*tensor.Tensor{}
	out, err := m.Forward(x, ts, labels, &nn.ForwardOptions{Trace: trace})
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"t_proj", "emb", "mid"} {
		want, _ := get(name)
		compare(t, name, trace[name], want, 1e-4)
	}
	want, _ := get("out")
	compare(t, "out", out, want, 1e-4)
	tgt, tshape := get("target")
	loss := tensor.MSELoss(out, tensor.FromFloat32(dev, tgt, tshape...))
	wl, _ := get("loss")
	compare(t, "loss", loss, wl, 1e-4)

	loss.Backward()
	params := map[string]*tensor.Tensor{}
	for _, p := range m.Params() {
		params[p.Name] = p.T
	}
	n := 0
	for _, name := range io.Names() {
		if !strings.HasPrefix(name, "grad/") {
			continue
		}
		key := strings.TrimPrefix(name, "grad/")
		var p *tensor.Tensor
		if key == "x" {
			p = x
		} else if p = params[key]; p == nil {
			t.Fatalf("fixture has a gradient for %q, which the model lacks", key)
		}
		if p.Grad() == nil {
			t.Fatalf("%s: no gradient computed", name)
		}
		gw, _ := get(name)
		compare(t, name, p.Grad(), gw, 1e-4)
		n++
	}
	if n == 0 {
		t.Fatal("fixture holds no gradients")
	}
}
