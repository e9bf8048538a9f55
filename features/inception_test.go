package features

import (
	"math"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/godiffuse/godiffuse/kernels"
	"github.com/godiffuse/godiffuse/safetensors"
	"github.com/godiffuse/godiffuse/tensor"
)

// The FID InceptionV3 parity fixture (58 MB, made by
// shared/reference/make_inception_fixture.py: seeded random F16 weights, a
// float64 PyTorch forward of two 32×32 images) is too large for the
// repository: the test reads the folder named by GODIFFUSE_INCEPTION_FIXTURE
// and skips without it, unless GODIFFUSE_REQUIRE_INCEPTION=1 (as in .ci/run),
// which turns the skip into a failure.
func inceptionFixture(t *testing.T) string {
	dir := os.Getenv("GODIFFUSE_INCEPTION_FIXTURE")
	if dir == "" {
		if os.Getenv("GODIFFUSE_REQUIRE_INCEPTION") == "1" {
			t.Fatal("GODIFFUSE_REQUIRE_INCEPTION=1 but GODIFFUSE_INCEPTION_FIXTURE names no folder")
		}
		t.Skip("set GODIFFUSE_INCEPTION_FIXTURE to the folder of weights.safetensors and io.safetensors " +
			"(e.g. ../shared/fixtures/inception-fid) to run the InceptionV3 parity test")
	}
	return dir
}

func TestInceptionParity(t *testing.T) {
	dir := inceptionFixture(t)
	// Every CPU level this machine has (generic, avx2, avx512).
	for _, level := range kernels.Levels() {
		t.Run(level.String(), func(t *testing.T) {
			dev := kernels.NewCPULevel(0, level)
			m, err := LoadInception(filepath.Join(dir, "weights.safetensors"), dev)
			if err != nil {
				t.Fatal(err)
			}
			io, err := safetensors.Read(filepath.Join(dir, "io.safetensors"))
			if err != nil {
				t.Fatal(err)
			}
			xv, xs, err := io.Float32("x")
			if err != nil {
				t.Fatal(err)
			}
			acts := m.Activations(tensor.FromFloat32(dev, xv, xs...))
			for _, c := range []struct {
				ref, act string
				tol      float64
			}{
				// Tolerances from the fixture's README: float32 rounding
				// grows with depth in this random network.
				{"act/input", "input", 1e-5},
				{"act/maxpool2", "maxpool2", 1e-5},
				{"act/Mixed_5d", "Mixed_5d", 1e-4},
				{"act/Mixed_6e", "Mixed_6e", 2e-3},
				{"act/Mixed_7c", "Mixed_7c", 2e-3},
				{"pool3", "pool3", 2e-3},
				{"logits", "logits", 2e-3},
			} {
				want, shape, err := io.Float32(c.ref)
				if err != nil {
					t.Fatal(err)
				}
				got := acts[c.act]
				if !slices.Equal(got.Shape(), shape) {
					t.Fatalf("%s: shape %v, want %v", c.act, got.Shape(), shape)
				}
				dev, scale := maxDev(got.MustFloat32s(), want)
				t.Logf("%-9s max|ref| %8.4g  max deviation %.2e of it", c.act, scale, dev/scale)
				if dev > c.tol*scale {
					t.Errorf("%s: max deviation %.3g = %.2e of max|ref| %.3g (tolerance %.0e)", c.act, dev, dev/scale, scale, c.tol)
				}
			}
			// Extract takes [-1, 1] images and returns pool3 and the softmax.
			x11 := make([]float32, len(xv))
			for i, v := range xv {
				x11[i] = 2*v - 1
			}
			feats, probs, err := m.Extract(x11, xs[0], xs[1], xs[2], xs[3])
			if err != nil {
				t.Fatal(err)
			}
			if d, s := maxDev(feats, acts["pool3"].MustFloat32s()); d > 1e-5*s {
				t.Errorf("Extract's features differ from pool3 by %.3g", d)
			}
			var sum float64
			for _, p := range probs[:1008] {
				sum += float64(p)
			}
			if math.Abs(sum-1) > 1e-4 {
				t.Errorf("probabilities of image 0 sum to %g", sum)
			}
		})
	}
}

func maxDev(got, want []float32) (dev, scale float64) {
	for i := range want {
		dev = max(dev, math.Abs(float64(got[i])-float64(want[i])))
		scale = max(scale, math.Abs(float64(want[i])))
	}
	return dev, scale
}

func TestInceptionRejectsBadWeights(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "w.safetensors")
	if err := safetensors.Write(path, []safetensors.Tensor{{Name: "fc.bias", DType: safetensors.F32, Shape: []int{1008}, F: make([]float32, 1008)}}, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadInception(path, nil); err == nil {
		t.Error("a file without the convolutions loaded")
	} else {
		t.Log(err)
	}
	if _, err := LoadInception(filepath.Join(dir, "missing.safetensors"), nil); err == nil {
		t.Error("a missing file loaded")
	}
}

func TestPools(t *testing.T) {
	dev := kernels.CPU()
	// A 3×3 plane of ones: the exclusive average is 1 everywhere (a plain
	// count_include_pad average would give 4/9 at the corners).
	ones := tensor.Full(dev, 1, 1, 1, 3, 3)
	for i, v := range avgPool3x3Exclusive(ones).MustFloat32s() {
		if v != 1 {
			t.Fatalf("exclusive average pool of ones [%d] = %g", i, v)
		}
	}
	x := tensor.FromFloat32(dev, []float32{-5, -1, -2, -3, -4, -6, -7, -8, -9}, 1, 1, 3, 3)
	if got := maxPool3x3(x, 1, 1).MustFloat32s(); got[0] != -1 || got[8] != -4 {
		t.Errorf("max pool with padding = %v (padding must never win)", got)
	}
	if got := maxPool3x3(x, 2, 0).MustFloat32s(); len(got) != 1 || got[0] != -1 {
		t.Errorf("3×3 stride-2 max pool of a 3×3 plane = %v", got)
	}
	// Resizing to the same size is the identity; a 2×2 → 4×4 resize
	// interpolates with weights ¼, ¾ and clamps at the edges.
	y := resizeBilinear(x, 3, 3).MustFloat32s()
	for i, v := range x.MustFloat32s() {
		if y[i] != v {
			t.Fatalf("same-size resize changed [%d]: %g → %g", i, v, y[i])
		}
	}
	two := tensor.FromFloat32(dev, []float32{0, 4, 8, 12}, 1, 1, 2, 2)
	got := resizeBilinear(two, 4, 4).MustFloat32s()
	want := []float32{0, 1, 3, 4, 2, 3, 5, 6, 6, 7, 9, 10, 8, 9, 11, 12}
	for i := range want {
		if math.Abs(float64(got[i]-want[i])) > 1e-6 {
			t.Fatalf("2×2 → 4×4 resize = %v, want %v", got, want)
		}
	}
}
