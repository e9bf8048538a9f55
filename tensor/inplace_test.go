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

// TestAddInPlace checks that AddInPlace adds into a dense tensor without
// gradients (Add's bits, b broadcast as a ResNet block's time embedding, at
// every CPU level) and leaves views, a that would have to grow, and tensors
// in a gradient's path to Add.
func TestAddInPlace(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	rnd := func(n int) []float32 {
		v := make([]float32, n)
		for i := range v {
			v[i] = 4*r.Float32() - 2
		}
		return v
	}
	for _, level := range kernels.Levels() {
		dev := kernels.NewCPULevel(2, level)
		for _, bShape := range [][]int{{2, 3, 5, 7}, {2, 3, 1, 1}, {7}, {1}} {
			av, bv := rnd(2*3*5*7), rnd(numelOf(bShape))
			b := FromFloat32(dev, bv, bShape...)
			want := Add(FromFloat32(dev, av, 2, 3, 5, 7), b).MustFloat32s()
			a := FromFloat32(dev, av, 2, 3, 5, 7)
			if y := AddInPlace(a, b); y != a {
				t.Fatalf("%v b %v: a dense tensor without gradients was not added into", level, bShape)
			}
			if got := a.MustFloat32s(); !slices.Equal(got, want) {
				t.Fatalf("%v b %v: in place differs from Add", level, bShape)
			}
		}
	}
	x := FromFloat32(cpu, []float32{1, 2, 3, 4}, 2, 2)
	if y := AddInPlace(x.Transpose(0, 1), x); !slices.Equal(x.MustFloat32s(), []float32{1, 2, 3, 4}) ||
		!slices.Equal(y.MustFloat32s(), []float32{2, 5, 5, 8}) {
		t.Fatal("a transposed view was added into, or the sum is wrong")
	}
	small := FromFloat32(cpu, []float32{1, 2}, 2)
	if y := AddInPlace(small, x); y == small || !slices.Equal(y.Shape(), []int{2, 2}) {
		t.Fatal("a tensor smaller than the sum was added into")
	}
	w := FromFloat32(cpu, []float32{1, 2}, 2).SetRequiresGrad(true)
	h := Scale(w, 3)
	if y := AddInPlace(h, small); y == h {
		t.Fatal("a tensor on a gradient's path was added into")
	} else {
		Sum(y).Backward()
	}
	if g := w.Grad().MustFloat32s(); !slices.Equal(g, []float32{3, 3}) {
		t.Fatalf("gradient through AddInPlace: %v, want [3 3]", g)
	}
}

func numelOf(shape []int) int {
	n := 1
	for _, d := range shape {
		n *= d
	}
	return n
}

// TestReleaseLeavesWhatItMustNot: Release hands back a plain intermediate's
// buffer (a later use of it fails loudly) but never a parameter's, a
// paused parameter's, a recorded tensor's or a partial view's.
func TestReleaseLeavesWhatItMustNot(t *testing.T) {
	dev := kernels.NewCPU(2)
	const n = 1 << 15
	fresh := func() *Tensor { return Full(dev, 1.5, 2, n/2) }
	param := fresh().SetRequiresGrad(true)
	paused := fresh().SetRequiresGrad(true)
	paused.PauseGrad()
	recorded := Scale(fresh().SetRequiresGrad(true), 2)
	whole := fresh()
	part := whole.Narrow(0, 1, 1)
	Release(param, paused, recorded, part, nil)
	for name, x := range map[string]*Tensor{"parameter": param, "paused parameter": paused, "recorded": recorded, "part of a buffer": part} {
		if _, err := x.Float32s(); err != nil {
			t.Fatalf("%s: released (%v)", name, err)
		}
	}
	if v := whole.MustFloat32s(); v[0] != 1.5 {
		t.Fatalf("releasing a partial view changed its base: %g", v[0])
	}
	Release(whole)
	if err := Catch(func() { Scale(whole, 2) }); err == nil {
		t.Fatal("an op on a released tensor did not fail")
	}
}

// TestBackwardReleaseKeepsLeaves: BackwardRelease hands back the graph's
// intermediates but not a parameter that an intermediate views (a
// reshaped weight), nor the loss, and the gradients are Backward's.
func TestBackwardReleaseKeepsLeaves(t *testing.T) {
	dev := kernels.PoisonedCPU(2)
	r := rand.New(rand.NewPCG(3, 4))
	vals := func(n int) []float32 {
		v := make([]float32, n)
		for i := range v {
			v[i] = float32(r.NormFloat64())
		}
		return v
	}
	wv, xv := vals(64*64), vals(8*64)
	run := func(release bool) (loss float32, grad, w []float32) {
		wt := FromFloat32(dev, wv, 64*64).SetRequiresGrad(true)
		x := FromFloat32(dev, xv, 8, 64)
		h := SiLU(MatMul(x, wt.Reshape(64, 64))) // the reshape is an intermediate on wt's buffer
		l := MSELoss(h, Zeros(dev, 8, 64))
		if release {
			l.BackwardRelease()
		} else {
			l.Backward()
		}
		return l.MustFloat32s()[0], wt.Grad().MustFloat32s(), wt.MustFloat32s()
	}
	l0, g0, _ := run(false)
	l1, g1, w1 := run(true)
	if l1 != l0 || !slices.Equal(g1, g0) {
		t.Fatal("BackwardRelease: loss or gradient differs from Backward's")
	}
	if !slices.Equal(w1, wv) {
		t.Fatal("BackwardRelease handed back a parameter's buffer (viewed by a reshape in the graph)")
	}
}
