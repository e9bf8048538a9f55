package tensor_test

import (
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/godiffuse/godiffuse/kernels"
	. "github.com/godiffuse/godiffuse/tensor"
)

// ---------------------------------------------------------------------------
// Gradient check: every op's backward against central finite differences.
//
// The loss is L = Σ f(inputs) ⊙ R with a fixed random R, summed on the host in
// float64. The kernels compute in float32, so a finite difference
// (L(x+h) - L(x-h)) / 2h carries a rounding error of about
// u·Σ|f ⊙ R| / h with u ≈ 6e-8 (float32 unit roundoff) times a small factor for
// the rounding inside the op, plus a truncation error O(h²·f'''). With h = 1e-2
// and smooth ops the truncation term is ≲ 1e-4 relative. We therefore accept
//
//	|analytic - numeric| ≤ 20·u·Σ|f⊙R|/h + 2e-3·(1 + |numeric|)
//
// which is tight enough to catch a wrong formula (those are off by O(1)) but
// loose enough for float32. Inputs of non-smooth ops (ReLU) stay away from the
// kink, and log/sqrt get positive inputs.
// ---------------------------------------------------------------------------

var cpu = kernels.NewCPU(2)

func randT(r *rand.Rand, lo, hi float32, shape ...int) *Tensor {
	n := 1
	for _, s := range shape {
		n *= s
	}
	v := make([]float32, n)
	for i := range v {
		v[i] = lo + (hi-lo)*r.Float32()
	}
	return FromFloat32(cpu, v, shape...)
}

func lossOf(out *Tensor, rw []float32) (float64, float64) {
	v := out.MustFloat32s()
	var s, abs float64
	for i, x := range v {
		s += float64(x) * float64(rw[i])
		abs += math.Abs(float64(x) * float64(rw[i]))
	}
	return s, abs
}

func gradcheck(t *testing.T, name string, f func(in []*Tensor) *Tensor, inputs ...*Tensor) {
	t.Helper()
	r := rand.New(rand.NewPCG(7, uint64(len(name))))
	// Analytic gradients.
	for _, x := range inputs {
		x.SetRequiresGrad(true)
		x.ZeroGrad()
	}
	out := f(inputs)
	rw := make([]float32, out.Numel())
	for i := range rw {
		rw[i] = 2*r.Float32() - 1
	}
	R := FromFloat32(cpu, rw, out.Shape()...)
	Sum(Mul(out, R)).Backward()
	const h = 1e-2
	const u = 6e-8
	for k, x := range inputs {
		if x.Grad() == nil {
			t.Fatalf("%s: input %d got no gradient", name, k)
		}
		ga := x.Grad().MustFloat32s()
		base := x.MustFloat32s()
		// Check up to 24 elements per input, spread over the tensor.
		idx := []int{}
		for i := 0; i < len(base); i += max(1, len(base)/24) {
			idx = append(idx, i)
		}
		if len(base) > 0 {
			idx = append(idx, len(base)-1)
		}
		for _, i := range idx {
			eval := func(d float32) (float64, float64) {
				v := append([]float32(nil), base...)
				v[i] += d
				in := append([]*Tensor(nil), inputs...)
				in[k] = FromFloat32(cpu, v, x.Shape()...)
				return lossOf(f(in), rw)
			}
			lp, ap := eval(h)
			lm, am := eval(-h)
			num := (lp - lm) / (2 * h)
			tol := 20*u*max(ap, am)/h + 2e-3*(1+math.Abs(num))
			if diff := math.Abs(float64(ga[i]) - num); diff > tol || math.IsNaN(diff) {
				t.Errorf("%s: d/d input%d[%d]: analytic %.6g, numeric %.6g (diff %.3g > tol %.3g)",
					name, k, i, ga[i], num, diff, tol)
			}
		}
	}
}

func TestGradients(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	type tc struct {
		name string
		f    func(in []*Tensor) *Tensor
		in   []*Tensor
	}
	away := func(shape ...int) *Tensor { // values in ±[0.1, 1], away from ReLU's kink
		x := randT(r, 0.1, 1, shape...)
		v := x.MustFloat32s()
		for i := range v {
			if r.IntN(2) == 0 {
				v[i] = -v[i]
			}
		}
		return FromFloat32(cpu, v, shape...)
	}
	cases := []tc{
		{"add/broadcast", func(in []*Tensor) *Tensor { return Add(in[0], in[1]) }, []*Tensor{randT(r, -1, 1, 2, 3, 4), randT(r, -1, 1, 3, 1)}},
		{"sub/broadcast", func(in []*Tensor) *Tensor { return Sub(in[0], in[1]) }, []*Tensor{randT(r, -1, 1, 4), randT(r, -1, 1, 2, 3, 4)}},
		{"mul/broadcast", func(in []*Tensor) *Tensor { return Mul(in[0], in[1]) }, []*Tensor{randT(r, -1, 1, 2, 1, 4), randT(r, -1, 1, 2, 3, 1)}},
		{"div/broadcast", func(in []*Tensor) *Tensor { return Div(in[0], in[1]) }, []*Tensor{randT(r, -1, 1, 2, 3), randT(r, 0.5, 2, 3)}},
		{"neg", func(in []*Tensor) *Tensor { return Neg(in[0]) }, []*Tensor{randT(r, -1, 1, 5)}},
		{"exp", func(in []*Tensor) *Tensor { return Exp(in[0]) }, []*Tensor{randT(r, -1, 1, 7)}},
		{"log", func(in []*Tensor) *Tensor { return Log(in[0]) }, []*Tensor{randT(r, 0.5, 2, 7)}},
		{"sqrt", func(in []*Tensor) *Tensor { return Sqrt(in[0]) }, []*Tensor{randT(r, 0.5, 2, 7)}},
		{"square", func(in []*Tensor) *Tensor { return Square(in[0]) }, []*Tensor{randT(r, -1, 1, 7)}},
		{"silu", func(in []*Tensor) *Tensor { return SiLU(in[0]) }, []*Tensor{randT(r, -3, 3, 9)}},
		{"gelu", func(in []*Tensor) *Tensor { return GELU(in[0]) }, []*Tensor{randT(r, -3, 3, 9)}},
		{"relu", func(in []*Tensor) *Tensor { return ReLU(in[0]) }, []*Tensor{away(9)}},
		{"sigmoid", func(in []*Tensor) *Tensor { return Sigmoid(in[0]) }, []*Tensor{randT(r, -3, 3, 9)}},
		{"tanh", func(in []*Tensor) *Tensor { return Tanh(in[0]) }, []*Tensor{randT(r, -2, 2, 9)}},
		{"affine", func(in []*Tensor) *Tensor { return Affine(in[0], -1.5, 0.25) }, []*Tensor{randT(r, -2, 2, 9)}},
		{"clamp", func(in []*Tensor) *Tensor { return Clamp(in[0], -0.5, 0.5) }, []*Tensor{FromFloat32(cpu, []float32{-0.9, -0.3, 0.1, 0.4, 0.8, -0.6}, 6)}},
		{"sum_axis", func(in []*Tensor) *Tensor { return SumAxis(in[0], 1, false) }, []*Tensor{randT(r, -1, 1, 2, 3, 4)}},
		{"mean_axis/keep", func(in []*Tensor) *Tensor { return MeanAxis(in[0], -1, true) }, []*Tensor{randT(r, -1, 1, 2, 3, 4)}},
		{"mean", func(in []*Tensor) *Tensor { return Mean(in[0]) }, []*Tensor{randT(r, -1, 1, 3, 5)}},
		{"mse_loss", func(in []*Tensor) *Tensor { return MSELoss(in[0], in[1]) }, []*Tensor{randT(r, -1, 1, 2, 5), randT(r, -1, 1, 2, 5)}},
		{"matmul/2d", func(in []*Tensor) *Tensor { return MatMul(in[0], in[1]) }, []*Tensor{randT(r, -1, 1, 3, 5), randT(r, -1, 1, 5, 4)}},
		{"matmul/batched", func(in []*Tensor) *Tensor { return MatMul(in[0], in[1]) }, []*Tensor{randT(r, -1, 1, 2, 3, 5), randT(r, -1, 1, 2, 5, 4)}},
		{"matmul/shared_b", func(in []*Tensor) *Tensor { return MatMul(in[0], in[1]) }, []*Tensor{randT(r, -1, 1, 2, 3, 5), randT(r, -1, 1, 5, 4)}},
		{"matmul/transposed_view", func(in []*Tensor) *Tensor { return MatMul(in[0].Transpose(0, 1), in[1]) }, []*Tensor{randT(r, -1, 1, 5, 3), randT(r, -1, 1, 5, 4)}},
		{"linear", func(in []*Tensor) *Tensor { return Linear(in[0], in[1], in[2]) }, []*Tensor{randT(r, -1, 1, 2, 3, 6), randT(r, -1, 1, 4, 6), randT(r, -1, 1, 4)}},
		{"conv2d/3x3s1p1", func(in []*Tensor) *Tensor { return Conv2D(in[0], in[1], in[2], 1, PadAll(1)) }, []*Tensor{randT(r, -1, 1, 2, 3, 5, 6), randT(r, -1, 1, 4, 3, 3, 3), randT(r, -1, 1, 4)}},
		{"conv2d/3x3s2asym", func(in []*Tensor) *Tensor { return Conv2D(in[0], in[1], in[2], 2, Pad4{0, 1, 0, 1}) }, []*Tensor{randT(r, -1, 1, 2, 3, 6, 7), randT(r, -1, 1, 4, 3, 3, 3), randT(r, -1, 1, 4)}},
		{"conv2d/1x1", func(in []*Tensor) *Tensor { return Conv2D(in[0], in[1], in[2], 1, PadAll(0)) }, []*Tensor{randT(r, -1, 1, 3, 5, 4, 3), randT(r, -1, 1, 2, 5, 1, 1), randT(r, -1, 1, 2)}},
		{"conv2d/2x3s2p", func(in []*Tensor) *Tensor { return Conv2D(in[0], in[1], nil, 2, Pad4{1, 0, 2, 1}) }, []*Tensor{randT(r, -1, 1, 1, 2, 5, 5), randT(r, -1, 1, 3, 2, 2, 3)}},
		{"conv3d/3x3x3s1p1", func(in []*Tensor) *Tensor { return Conv3D(in[0], in[1], in[2], 1, 1) }, []*Tensor{randT(r, -1, 1, 2, 2, 3, 4, 8), randT(r, -1, 1, 3, 2, 3, 3, 3), randT(r, -1, 1, 3)}},
		{"conv3d/3x3x3s2p1", func(in []*Tensor) *Tensor { return Conv3D(in[0], in[1], in[2], 2, 1) }, []*Tensor{randT(r, -1, 1, 2, 2, 4, 5, 3), randT(r, -1, 1, 3, 2, 3, 3, 3), randT(r, -1, 1, 3)}},
		{"conv3d/1x1x1", func(in []*Tensor) *Tensor { return Conv3D(in[0], in[1], nil, 1, 0) }, []*Tensor{randT(r, -1, 1, 1, 3, 2, 3, 2), randT(r, -1, 1, 2, 3, 1, 1, 1)}},
		{"upsample3d/nearest", func(in []*Tensor) *Tensor { return Upsample3D(in[0], Nearest) }, []*Tensor{randT(r, -1, 1, 1, 2, 2, 3, 2)}},
		{"upsample3d/trilinear", func(in []*Tensor) *Tensor { return Upsample3D(in[0], Trilinear) }, []*Tensor{randT(r, -1, 1, 2, 1, 3, 2, 4)}},
		{"group_norm", func(in []*Tensor) *Tensor { return GroupNorm(in[0], 2, in[1], in[2], 1e-5) }, []*Tensor{randT(r, -1, 2, 2, 4, 3, 3), randT(r, 0.5, 1.5, 4), randT(r, -0.5, 0.5, 4)}},
		{"layer_norm", func(in []*Tensor) *Tensor { return LayerNorm(in[0], in[1], in[2], 1e-5) }, []*Tensor{randT(r, -1, 2, 3, 6), randT(r, 0.5, 1.5, 6), randT(r, -0.5, 0.5, 6)}},
		{"softmax", func(in []*Tensor) *Tensor { return Softmax(in[0]) }, []*Tensor{randT(r, -2, 2, 3, 5)}},
		{"attention/2heads", func(in []*Tensor) *Tensor { return Attention(in[0], in[1], in[2], 2) }, []*Tensor{randT(r, -1, 1, 2, 3, 4), randT(r, -1, 1, 2, 5, 4), randT(r, -1, 1, 2, 5, 4)}},
		{"attention/channel_major", func(in []*Tensor) *Tensor { return AttentionChannels(in[0], in[1], in[2], 2) }, []*Tensor{randT(r, -1, 1, 2, 4, 3), randT(r, -1, 1, 2, 4, 5), randT(r, -1, 1, 2, 4, 5)}},
		{"attention/channel_major_image", func(in []*Tensor) *Tensor { return AttentionChannels(in[0], in[1], in[2], 2) }, []*Tensor{randT(r, -1, 1, 2, 4, 3, 2), randT(r, -1, 1, 2, 4, 5, 1), randT(r, -1, 1, 2, 4, 5, 1)}},
		{"upsample2x", func(in []*Tensor) *Tensor { return Upsample2x(in[0]) }, []*Tensor{randT(r, -1, 1, 2, 2, 3, 2)}},
		{"concat", func(in []*Tensor) *Tensor { return Concat(1, in[0], in[1]) }, []*Tensor{randT(r, -1, 1, 2, 3, 2), randT(r, -1, 1, 2, 1, 2)}},
		{"split+mul", func(in []*Tensor) *Tensor {
			p := Split(in[0], 1, 2, 3)
			return Mul(p[0].Narrow(1, 0, 1), p[1])
		}, []*Tensor{randT(r, -1, 1, 2, 5, 2)}},
		{"permute+reshape", func(in []*Tensor) *Tensor { return Square(in[0].Permute(2, 0, 1).Reshape(4, -1)) }, []*Tensor{randT(r, -1, 1, 2, 3, 4)}},
		{"embedding", func(in []*Tensor) *Tensor { return Embedding(FromInt64(cpu, []int64{2, 0, 2, 3}, 2, 2), in[0]) }, []*Tensor{randT(r, -1, 1, 4, 3)}},
		{"dropout", func(in []*Tensor) *Tensor { return Dropout(in[0], 0.3, 42) }, []*Tensor{randT(r, -1, 1, 40)}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { gradcheck(t, c.name, c.f, c.in...) })
	}
}

// TestReshapeErrors checks that misuse gives a *tensor.Error, not a crash.
func TestReshapeErrors(t *testing.T) {
	x := Zeros(cpu, 2, 3)
	err := Catch(func() { x.Reshape(4, -1) })
	if err == nil {
		t.Fatal("reshape of 6 elements to (4, -1) did not fail")
	}
	if got := err.Error(); got == "" {
		t.Fatal("empty error")
	}
	// A 0-d tensor copies like any other.
	if v := Scalar(cpu, 2.5).Clone().MustFloat32s(); len(v) != 1 || v[0] != 2.5 {
		t.Fatalf("0-d clone gave %v", v)
	}
	err = Catch(func() { Add(Zeros(cpu, 2, 3), Zeros(cpu, 4)) })
	if err == nil {
		t.Fatal("non-broadcastable add did not fail")
	}
	_ = err.Error()
	// Attention whose channels do not agree, in either layout: an error that
	// names the op and the layout it wants, not a panic in the kernel.
	for _, c := range []struct {
		name, want string
		f          func() *Tensor
	}{
		{"attention", "(B, L, heads·D)", func() *Tensor { return Attention(Zeros(cpu, 1, 5, 8), Zeros(cpu, 1, 7, 6), Zeros(cpu, 1, 7, 6), 2) }},
		{"attention_channels", "(B, heads·D, L)", func() *Tensor {
			return AttentionChannels(Zeros(cpu, 1, 8, 5), Zeros(cpu, 1, 6, 7), Zeros(cpu, 1, 6, 7), 2)
		}},
		{"attention_channels", "(B, heads·D, L)", func() *Tensor {
			return AttentionChannels(Zeros(cpu, 1, 9, 5), Zeros(cpu, 1, 9, 7), Zeros(cpu, 1, 9, 7), 2)
		}},
	} {
		err := Catch(func() { c.f() })
		if err == nil || !strings.Contains(err.Error(), c.name) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s with mismatched shapes: error %v, want one naming %q and %q", c.name, err, c.name, c.want)
		}
	}
}

// TestAttentionChannelsImage: channel-major attention on (B, C, H, W) is the
// attention of the (B, C, H·W) views, in q's shape.
func TestAttentionChannelsImage(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	q, k, v := randT(r, -1, 1, 2, 6, 3, 4), randT(r, -1, 1, 2, 6, 2, 5), randT(r, -1, 1, 2, 6, 2, 5)
	got := AttentionChannels(q, k, v, 3)
	want := AttentionChannels(q.Reshape(2, 6, 12), k.Reshape(2, 6, 10), v.Reshape(2, 6, 10), 3)
	if !slices.Equal(got.Shape(), q.Shape()) {
		t.Fatalf("shape %v, want q's %v", got.Shape(), q.Shape())
	}
	if !slices.Equal(got.MustFloat32s(), want.MustFloat32s()) {
		t.Error("the image's attention differs from its (B, C, H·W) view's")
	}
}

// TestGroupNormActInPlace: without gradients the norm writes x itself, with
// GroupNormAct's values; with them it is GroupNormAct (x untouched).
func TestGroupNormActInPlace(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	x, g, b := randT(r, -2, 2, 2, 6, 5, 3), randT(r, 0.5, 1.5, 6), randT(r, -0.5, 0.5, 6)
	want := GroupNormAct(x, 3, g, b, 1e-5, "silu").MustFloat32s()
	before := x.MustFloat32s()
	y := GroupNormActInPlace(x, 3, g, b, 1e-5, "silu")
	if y != x {
		t.Fatal("without gradients the result is not x itself")
	}
	if got := y.MustFloat32s(); !slices.Equal(got, want) {
		t.Errorf("in place: %v, want %v", got[:4], want[:4])
	}
	xg := FromFloat32(cpu, before, 2, 6, 5, 3).SetRequiresGrad(true)
	yg := GroupNormActInPlace(xg, 3, g, b, 1e-5, "silu")
	if yg == xg || !slices.Equal(xg.MustFloat32s(), before) {
		t.Error("with a gradient to take, x was overwritten")
	}
	if !slices.Equal(yg.MustFloat32s(), want) {
		t.Error("with a gradient to take, the values differ from GroupNormAct's")
	}
}
