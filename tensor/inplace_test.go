package tensor_test

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/godiffuse/godiffuse/kernels"
	. "github.com/godiffuse/godiffuse/tensor"
)

// TestActivationInPlace checks that ActivationInPlace overwrites a dense
// tensor without gradients (same values as Activation, bit for bit, at
// every CPU level and on lengths with a vector tail), and leaves views and
// tensors in a gradient's path to Activation.
func TestActivationInPlace(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for _, level := range kernels.Levels() {
		dev := kernels.NewCPULevel(2, level)
		for _, n := range []int{1, 7, 8, 9, 4097} {
			for _, act := range []string{"silu", "gelu", "relu", "sigmoid", "tanh"} {
				v := make([]float32, n)
				for i := range v {
					v[i] = 8*r.Float32() - 4
				}
				want := Activation(act, FromFloat32(dev, v, n)).MustFloat32s()
				x := FromFloat32(dev, v, n)
				if y := ActivationInPlace(act, x); y != x {
					t.Fatalf("%v %s n=%d: a dense tensor without gradients was not overwritten", level, act, n)
				}
				if got := x.MustFloat32s(); !slices.Equal(got, want) {
					t.Fatalf("%v %s n=%d: in place differs from Activation", level, act, n)
				}
			}
		}
	}
	x := FromFloat32(cpu, []float32{-1, 0.5, 2, 3}, 2, 2)
	col := x.Transpose(0, 1) // not dense: must not be touched
	if y := ActivationInPlace("silu", col); y == col || !slices.Equal(x.MustFloat32s(), []float32{-1, 0.5, 2, 3}) {
		t.Fatal("a transposed view was overwritten")
	}
	w := FromFloat32(cpu, []float32{-1, 0.5, 2}, 3).SetRequiresGrad(true)
	h := Scale(w, 2)
	y := ActivationInPlace("silu", h)
	if y == h {
		t.Fatal("a tensor on a gradient's path was overwritten")
	}
	Sum(y).Backward()
	want := make([]float32, 3)
	for i, v := range []float32{-2, 1, 4} {
		s := float32(1 / (1 + math.Exp(-float64(v))))
		want[i] = 2 * s * (1 + v*(1-s))
	}
	for i, g := range w.Grad().MustFloat32s() {
		if d := g - want[i]; d > 1e-5 || d < -1e-5 {
			t.Fatalf("gradient through ActivationInPlace: %v, want %v", w.Grad().MustFloat32s(), want)
		}
	}
}
