//go:build !windows

package vulkan_test

import (
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"strings"
	"testing"

	"github.com/godiffuse/godiffuse/internal/vktest"
	"github.com/godiffuse/godiffuse/kernels"
	"github.com/godiffuse/godiffuse/kernels/vulkan"
	. "github.com/godiffuse/godiffuse/tensor"
)

// The conformance table: every op case runs forward and backward on the CPU
// reference (generic kernels) and on every Vulkan device, from the same
// inputs, with the loss L = Σ out ⊙ R for a fixed random R. Outputs and input
// gradients must agree to a normalized error max|vk − ref| / max|ref| within
// the case's tolerance (float32 rounding differs between the devices: summation
// order in GEMMs and reductions, the GPU's exp/tanh and our erf to ~1e-7).

func testDevice(t testing.TB) *vulkan.Device { return vktest.Device(t) }

type input struct {
	lo, hi float32
	shape  []int
	away   bool // values in ±[lo, hi] (away from zero, for ReLU's kink)
}

type opCase struct {
	name string
	tol  float64
	in   []input
	f    func(dev Device, in []*Tensor) *Tensor
}

func in(lo, hi float32, shape ...int) input { return input{lo: lo, hi: hi, shape: shape} }

func conformanceCases() []opCase {
	u := func(name string, f func(*Tensor) *Tensor, lo, hi float32, shape ...int) opCase {
		return opCase{name, 2e-6, []input{in(lo, hi, shape...)}, func(_ Device, x []*Tensor) *Tensor { return f(x[0]) }}
	}
	return []opCase{
		u("neg", Neg, -1, 1, 3, 37),
		u("exp", Exp, -3, 3, 3, 37),
		u("log", Log, 0.1, 4, 3, 37),
		u("sqrt", Sqrt, 0.1, 4, 3, 37),
		u("square", Square, -2, 2, 3, 37),
		u("silu", SiLU, -6, 6, 5, 211),
		u("gelu", GELU, -5, 5, 5, 211),
		{"relu", 1e-6, []input{{lo: 0.05, hi: 2, shape: []int{4, 33}, away: true}}, func(_ Device, x []*Tensor) *Tensor { return ReLU(x[0]) }},
		u("sigmoid", Sigmoid, -6, 6, 5, 211),
		u("tanh", Tanh, -4, 4, 5, 211),
		u("affine", func(x *Tensor) *Tensor { return Affine(x, -1.5, 0.25) }, -2, 2, 300),
		u("clamp", func(x *Tensor) *Tensor { return Clamp(x, -0.5, 0.5) }, -1, 1, 301),
		{"add/broadcast", 1e-6, []input{in(-1, 1, 2, 3, 41), in(-1, 1, 3, 1)}, func(_ Device, x []*Tensor) *Tensor { return Add(x[0], x[1]) }},
		{"sub/broadcast", 1e-6, []input{in(-1, 1, 41), in(-1, 1, 2, 3, 41)}, func(_ Device, x []*Tensor) *Tensor { return Sub(x[0], x[1]) }},
		{"mul/broadcast", 1e-6, []input{in(-1, 1, 2, 1, 41), in(-1, 1, 2, 3, 1)}, func(_ Device, x []*Tensor) *Tensor { return Mul(x[0], x[1]) }},
		{"div/broadcast", 2e-6, []input{in(-1, 1, 2, 37), in(0.5, 2, 37)}, func(_ Device, x []*Tensor) *Tensor { return Div(x[0], x[1]) }},
		{"sum_axis", 1e-5, []input{in(-1, 1, 2, 300, 5)}, func(_ Device, x []*Tensor) *Tensor { return SumAxis(x[0], 1, false) }},
		{"mean_axis/keep", 1e-5, []input{in(-1, 1, 3, 4, 77)}, func(_ Device, x []*Tensor) *Tensor { return MeanAxis(x[0], -1, true) }},
		{"mse_loss", 1e-5, []input{in(-1, 1, 7, 45), in(-1, 1, 7, 45)}, func(_ Device, x []*Tensor) *Tensor { return MSELoss(x[0], x[1]) }},
		{"matmul/odd", 1e-5, []input{in(-1, 1, 67, 130), in(-1, 1, 130, 45)}, func(_ Device, x []*Tensor) *Tensor { return MatMul(x[0], x[1]) }},
		{"matmul/tile±1", 1e-5, []input{in(-1, 1, 65, 17), in(-1, 1, 17, 63)}, func(_ Device, x []*Tensor) *Tensor { return MatMul(x[0], x[1]) }},
		{"matmul/big_tiles", 1e-5, []input{in(-1, 1, 130, 70), in(-1, 1, 70, 200)}, func(_ Device, x []*Tensor) *Tensor { return MatMul(x[0], x[1]) }},
		// Split-K: the product itself (K 2500), and a weight gradient xᵀ·dy
		// through a transposed A (K 2100).
		{"matmul/split_k", 1e-5, []input{in(-1, 1, 20, 2500), in(-1, 1, 2500, 30)}, func(_ Device, x []*Tensor) *Tensor { return MatMul(x[0], x[1]) }},
		{"matmul/split_k_weight_grad", 1e-5, []input{in(-1, 1, 2100, 33), in(-1, 1, 33, 40)}, func(_ Device, x []*Tensor) *Tensor { return MatMul(x[0], x[1]) }},
		{"matmul/k1", 1e-5, []input{in(-1, 1, 5, 1), in(-1, 1, 1, 70)}, func(_ Device, x []*Tensor) *Tensor { return MatMul(x[0], x[1]) }},
		{"matmul/batched", 1e-5, []input{in(-1, 1, 3, 33, 20), in(-1, 1, 3, 20, 9)}, func(_ Device, x []*Tensor) *Tensor { return MatMul(x[0], x[1]) }},
		{"matmul/shared_b", 1e-5, []input{in(-1, 1, 2, 13, 21), in(-1, 1, 21, 8)}, func(_ Device, x []*Tensor) *Tensor { return MatMul(x[0], x[1]) }},
		{"matmul/transposed_view", 1e-5, []input{in(-1, 1, 21, 13), in(-1, 1, 21, 30)}, func(_ Device, x []*Tensor) *Tensor { return MatMul(x[0].Transpose(0, 1), x[1]) }},
		{"linear", 1e-5, []input{in(-1, 1, 2, 9, 70), in(-1, 1, 33, 70), in(-1, 1, 33)}, func(_ Device, x []*Tensor) *Tensor { return Linear(x[0], x[1], x[2]) }},
		{"conv2d/3x3s1p1", 1e-5, []input{in(-1, 1, 2, 5, 9, 11), in(-1, 1, 7, 5, 3, 3), in(-1, 1, 7)},
			func(_ Device, x []*Tensor) *Tensor { return Conv2D(x[0], x[1], x[2], 1, PadAll(1)) }},
		{"conv2d/3x3s2asym", 1e-5, []input{in(-1, 1, 2, 3, 8, 7), in(-1, 1, 4, 3, 3, 3), in(-1, 1, 4)},
			func(_ Device, x []*Tensor) *Tensor { return Conv2D(x[0], x[1], x[2], 2, Pad4{0, 1, 0, 1}) }},
		{"conv2d/1x1", 1e-5, []input{in(-1, 1, 3, 5, 4, 3), in(-1, 1, 2, 5, 1, 1), in(-1, 1, 2)},
			func(_ Device, x []*Tensor) *Tensor { return Conv2D(x[0], x[1], x[2], 1, PadAll(0)) }},
		{"conv2d/3x3s2p1_tiles", 1e-5, []input{in(-1, 1, 2, 70, 17, 19), in(-1, 1, 66, 70, 3, 3), in(-1, 1, 66)},
			func(_ Device, x []*Tensor) *Tensor { return Conv2D(x[0], x[1], x[2], 2, PadAll(1)) }},
		{"conv2d/big_tiles", 1e-5, []input{in(-1, 1, 2, 129, 12, 12), in(-1, 1, 130, 129, 3, 3), in(-1, 1, 130)},
			func(_ Device, x []*Tensor) *Tensor { return Conv2D(x[0], x[1], x[2], 1, PadAll(1)) }},
		// The weight gradient's K (batch × pixels) split over the grid:
		// 3 slices of 1072, 1072 and 1056 on the 64-tile shader, 2 on the
		// 128-tile one.
		{"conv2d/split_k", 1e-5, []input{in(-1, 1, 2, 3, 40, 40), in(-1, 1, 5, 3, 3, 3), in(-1, 1, 5)},
			func(_ Device, x []*Tensor) *Tensor { return Conv2D(x[0], x[1], x[2], 1, PadAll(1)) }},
		{"conv2d/split_k_big_tiles", 1e-5, []input{in(-1, 1, 1, 15, 48, 48), in(-1, 1, 130, 15, 3, 3)},
			func(_ Device, x []*Tensor) *Tensor { return Conv2D(x[0], x[1], nil, 1, PadAll(1)) }},
		// Split-K in the forward pass (K = 240·9, with the bias) and in the
		// input gradient (K = 240·9) of small images.
		{"conv2d/split_k_forward", 1e-5, []input{in(-1, 1, 1, 240, 5, 6), in(-1, 1, 70, 240, 3, 3), in(-1, 1, 70)},
			func(_ Device, x []*Tensor) *Tensor { return Conv2D(x[0], x[1], x[2], 1, PadAll(1)) }},
		{"conv2d/split_k_input_grad", 1e-5, []input{in(-1, 1, 2, 70, 5, 6), in(-1, 1, 240, 70, 3, 3), in(-1, 1, 240)},
			func(_ Device, x []*Tensor) *Tensor { return Conv2D(x[0], x[1], x[2], 1, PadAll(1)) }},
		{"conv2d/3x3s1p1_nobias", 1e-5, []input{in(-1, 1, 1, 4, 12, 12), in(-1, 1, 65, 4, 3, 3)},
			func(_ Device, x []*Tensor) *Tensor { return Conv2D(x[0], x[1], nil, 1, PadAll(1)) }},
		{"conv3d/3x3x3s1p1", 1e-5, []input{in(-1, 1, 2, 3, 5, 6, 7), in(-1, 1, 5, 3, 3, 3, 3), in(-1, 1, 5)},
			func(_ Device, x []*Tensor) *Tensor { return Conv3D(x[0], x[1], x[2], 1, 1) }},
		{"conv3d/3x3x3s2p1", 1e-5, []input{in(-1, 1, 2, 4, 6, 5, 7), in(-1, 1, 6, 4, 3, 3, 3), in(-1, 1, 6)},
			func(_ Device, x []*Tensor) *Tensor { return Conv3D(x[0], x[1], x[2], 2, 1) }},
		{"conv3d/1x1x1_nobias", 1e-5, []input{in(-1, 1, 2, 5, 3, 4, 3), in(-1, 1, 3, 5, 1, 1, 1)},
			func(_ Device, x []*Tensor) *Tensor { return Conv3D(x[0], x[1], nil, 1, 0) }},
		{"conv3d/big_tiles", 1e-5, []input{in(-1, 1, 1, 8, 7, 8, 8), in(-1, 1, 130, 8, 3, 3, 3), in(-1, 1, 130)},
			func(_ Device, x []*Tensor) *Tensor { return Conv3D(x[0], x[1], x[2], 1, 1) }},
		{"upsample3d/nearest", 1e-6, []input{in(-1, 1, 2, 3, 3, 4, 5)}, func(_ Device, x []*Tensor) *Tensor { return Upsample3D(x[0], Nearest) }},
		{"upsample3d/trilinear", 1e-6, []input{in(-1, 1, 2, 3, 3, 1, 5)}, func(_ Device, x []*Tensor) *Tensor { return Upsample3D(x[0], Trilinear) }},
		{"group_norm/no_affine", 1e-5, []input{in(-1, 2, 3, 6, 7, 5)},
			func(_ Device, x []*Tensor) *Tensor { return GroupNorm(x[0], 3, nil, nil, 1e-6) }},
		{"group_norm", 1e-5, []input{in(-1, 2, 2, 8, 5, 3), in(0.5, 1.5, 8), in(-0.5, 0.5, 8)},
			func(_ Device, x []*Tensor) *Tensor { return GroupNorm(x[0], 4, x[1], x[2], 1e-5) }},
		// Split over parts (normSplit): 2 groups of 4·64·64 values, 2 parts each.
		{"group_norm/split", 1e-5, []input{in(-1, 2, 1, 8, 64, 64), in(0.5, 1.5, 8), in(-0.5, 0.5, 8)},
			func(_ Device, x []*Tensor) *Tensor { return GroupNorm(x[0], 2, x[1], x[2], 1e-5) }},
		{"layer_norm", 1e-5, []input{in(-1, 2, 5, 24), in(0.5, 1.5, 24), in(-0.5, 0.5, 24)},
			func(_ Device, x []*Tensor) *Tensor { return LayerNorm(x[0], x[1], x[2], 1e-5) }},
		{"softmax", 1e-5, []input{in(-4, 4, 6, 37)}, func(_ Device, x []*Tensor) *Tensor { return Softmax(x[0]) }},
		{"attention/1head_long", 1e-5, []input{in(-1, 1, 2, 70, 16), in(-1, 1, 2, 70, 16), in(-1, 1, 2, 70, 16)},
			func(_ Device, x []*Tensor) *Tensor { return Attention(x[0], x[1], x[2], 1) }},
		{"attention/2heads", 1e-5, []input{in(-1, 1, 2, 7, 8), in(-1, 1, 2, 9, 8), in(-1, 1, 2, 9, 8)},
			func(_ Device, x []*Tensor) *Tensor { return Attention(x[0], x[1], x[2], 2) }},
		{"attention/channel_major", 1e-5, []input{in(-1, 1, 2, 8, 7), in(-1, 1, 2, 8, 9), in(-1, 1, 2, 8, 9)},
			func(_ Device, x []*Tensor) *Tensor { return AttentionChannels(x[0], x[1], x[2], 2) }},
		{"upsample2x", 1e-6, []input{in(-1, 1, 2, 3, 5, 4)}, func(_ Device, x []*Tensor) *Tensor { return Upsample2x(x[0]) }},
		{"concat", 1e-6, []input{in(-1, 1, 2, 3, 5), in(-1, 1, 2, 1, 5)}, func(_ Device, x []*Tensor) *Tensor { return Concat(1, x[0], x[1]) }},
		{"split+narrow", 1e-6, []input{in(-1, 1, 2, 5, 7)}, func(_ Device, x []*Tensor) *Tensor {
			p := Split(x[0], 1, 2, 3)
			return Mul(p[0].Narrow(1, 0, 1), p[1])
		}},
		{"permute+reshape", 1e-6, []input{in(-1, 1, 2, 3, 4, 5)}, func(_ Device, x []*Tensor) *Tensor {
			return Square(x[0].Permute(3, 0, 2, 1).Reshape(5, -1))
		}},
		{"embedding", 1e-6, []input{in(-1, 1, 6, 5)}, func(dev Device, x []*Tensor) *Tensor {
			return Embedding(FromInt64(dev, []int64{2, 0, 5, 3, 2}, 5), x[0])
		}},
		{"dropout", 1e-6, []input{in(-1, 1, 1000)}, func(_ Device, x []*Tensor) *Tensor { return Dropout(x[0], 0.3, 0x1234_5678_9abc) }},
	}
}

// inputs draws the case's input values and the loss weights R.
func (c opCase) inputs(r *rand.Rand) (data [][]float32, rw []float32) {
	data = make([][]float32, len(c.in))
	for i, spec := range c.in {
		n := 1
		for _, s := range spec.shape {
			n *= s
		}
		data[i] = make([]float32, n)
		for k := range data[i] {
			v := spec.lo + (spec.hi-spec.lo)*r.Float32()
			if spec.away && r.IntN(2) == 0 {
				v = -v
			}
			data[i][k] = v
		}
	}
	rw = make([]float32, 1<<19)
	for i := range rw {
		rw[i] = 2*r.Float32() - 1
	}
	return data, rw
}

// run evaluates a case on dev: the output and each input's gradient.
func (c opCase) run(dev Device, data [][]float32, rw []float32) (out []float32, grads [][]float32, err error) {
	err = Catch(func() {
		ins := make([]*Tensor, len(c.in))
		for i, spec := range c.in {
			ins[i] = FromFloat32(dev, data[i], spec.shape...).SetRequiresGrad(true)
		}
		o := c.f(dev, ins)
		Sum(Mul(o, FromFloat32(dev, rw[:o.Numel()], o.Shape()...))).Backward()
		out = o.MustFloat32s()
		for _, x := range ins {
			if x.Grad() == nil {
				panic(&Error{Op: c.name, Msg: "no gradient"})
			}
			grads = append(grads, x.Grad().MustFloat32s())
		}
	})
	return
}

func normErr(got, want []float32) float64 {
	var d, s float64
	for i := range want {
		d = max(d, math.Abs(float64(got[i])-float64(want[i])))
		s = max(s, math.Abs(float64(want[i])))
	}
	if s == 0 {
		return d
	}
	return d / s
}

func TestConformance(t *testing.T) {
	vk := testDevice(t)
	ref := kernels.NewCPULevel(1, kernels.Generic)
	r := rand.New(rand.NewPCG(11, 12))
	var table strings.Builder
	fmt.Fprintf(&table, "%-24s %10s %10s %8s\n", "op", "out err", "grad err", "tol")
	for _, c := range conformanceCases() {
		data, rw := c.inputs(r)
		t.Run(c.name, func(t *testing.T) {
			wantOut, wantGrads, err := c.run(ref, data, rw)
			if err != nil {
				t.Fatal(err)
			}
			gotOut, gotGrads, err := c.run(vk, data, rw)
			if err != nil {
				t.Fatal(err)
			}
			eo := normErr(gotOut, wantOut)
			eg := 0.0
			for i := range wantGrads {
				eg = max(eg, normErr(gotGrads[i], wantGrads[i]))
			}
			fmt.Fprintf(&table, "%-24s %10.2e %10.2e %8.0e\n", c.name, eo, eg, c.tol)
			if eo > c.tol || eg > c.tol || math.IsNaN(eo) || math.IsNaN(eg) {
				t.Errorf("normalized error: output %.3g, gradients %.3g (tolerance %.0e)", eo, eg, c.tol)
			}
		})
	}
	t.Logf("conformance on %s:\n%s", vk.Name(), table.String())
}

func TestAdamStepMatchesCPU(t *testing.T) {
	vk := testDevice(t)
	ref := kernels.NewCPULevel(1, kernels.Generic)
	r := rand.New(rand.NewPCG(5, 6))
	const n = 1031
	vals := make([][]float32, 4)
	for i := range vals {
		vals[i] = make([]float32, n)
		for k := range vals[i] {
			vals[i][k] = 2*r.Float32() - 1
		}
	}
	for k := range vals[3] {
		vals[3][k] = vals[3][k] * vals[3][k] // v ≥ 0
	}
	p := AdamParams{Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, OneMinusBeta1: 0.1, OneMinusBeta2: 0.001,
		StepSize: 1e-3 / 0.19, Bias2Sqrt: 0.0447, LR: 1e-3, DecoupledWD: 0.01, GradScale: 0.7}
	res := map[string][][]float32{}
	for name, dev := range map[string]Device{"cpu": ref, "vulkan": vk} {
		ts := make([]*Tensor, 4)
		for i := range ts {
			ts[i] = FromFloat32(dev, vals[i], n)
		}
		dev.AdamStep(ts[0].Buffer(), ts[1].Buffer(), ts[2].Buffer(), ts[3].Buffer(), n, p)
		for _, i := range []int{0, 2, 3} {
			res[name] = append(res[name], ts[i].MustFloat32s())
		}
	}
	for i, what := range []string{"param", "m", "v"} {
		if e := normErr(res["vulkan"][i], res["cpu"][i]); e > 1e-6 {
			t.Errorf("%s: normalized error %.3g", what, e)
		}
	}
}

// TestCooperativeMatrixGEMM checks the fp16 tensor-core GEMM (where the
// device has one) against the CPU: inputs rounded to fp16 (11-bit
// significand) give errors around 1e-3 of max|ref|, so 5e-3 is the bound.
func TestCooperativeMatrixGEMM(t *testing.T) {
	vk := testDevice(t)
	if !vk.CooperativeMatrix() {
		msg := fmt.Sprintf("%s has no usable cooperative matrices (VK_KHR_cooperative_matrix 16×16×16 or 8×8×8 fp16·fp16+fp32, or VK_NV_cooperative_matrix 16×16×16)", vk.Name())
		if os.Getenv("GODIFFUSE_REQUIRE_COOP") == "1" {
			t.Fatal(msg + "; GODIFFUSE_REQUIRE_COOP=1 demands them (scripts/khr_toolchain.sh brings a lavapipe that has them)")
		}
		t.Skip(msg)
	}
	t.Logf("%s: %s", vk.Name(), vk.CooperativeMatrixShader())
	if err := vk.SetMatMulFP16(true); err != nil {
		t.Fatal(err)
	}
	defer vk.SetMatMulFP16(false)
	ref := kernels.NewCPULevel(1, kernels.Generic)
	r := rand.New(rand.NewPCG(3, 4))
	for _, c := range conformanceCases() {
		if !strings.HasPrefix(c.name, "matmul") && c.name != "linear" && !strings.HasPrefix(c.name, "attention") {
			continue
		}
		data, rw := c.inputs(r)
		wantOut, wantGrads, err := c.run(ref, data, rw)
		if err != nil {
			t.Fatal(err)
		}
		gotOut, gotGrads, err := c.run(vk, data, rw)
		if err != nil {
			t.Fatal(err)
		}
		eo, eg := normErr(gotOut, wantOut), 0.0
		for i := range wantGrads {
			eg = max(eg, normErr(gotGrads[i], wantGrads[i]))
		}
		t.Logf("%-24s fp16 out err %.2e, grad err %.2e", c.name, eo, eg)
		if eo > 5e-3 || eg > 5e-3 {
			t.Errorf("%s: normalized error %.3g / %.3g > 5e-3", c.name, eo, eg)
		}
	}
}

// TestChooseMatMul checks GODIFFUSE_VULKAN_MATMUL's values on the test
// device: a bad value and a demand the device cannot meet are errors; auto
// stays fp32; fp16 takes the cooperative-matrix path after its self-check.
func TestChooseMatMul(t *testing.T) {
	vk := testDevice(t)
	defer vk.SetMatMulFP16(false)
	if err := vk.SelectMatMul("fp8"); err == nil || !strings.Contains(err.Error(), "GODIFFUSE_VULKAN_MATMUL") {
		t.Errorf("fp8: error %v, want one naming GODIFFUSE_VULKAN_MATMUL", err)
	}
	for _, mode := range []string{"fp32", "auto", ""} {
		if err := vk.SelectMatMul(mode); err != nil || vk.MatMulFP16() {
			t.Errorf("%q: error %v, fp16 %v", mode, err, vk.MatMulFP16())
		}
	}
	err := vk.SelectMatMul("fp16")
	if !vk.CooperativeMatrix() {
		if err == nil || vk.MatMulFP16() {
			t.Errorf("fp16 on a device without cooperative matrices: error %v, fp16 %v", err, vk.MatMulFP16())
		}
		return
	}
	e, cerr := vk.CheckFP16()
	t.Logf("self-check: normalized error %.2e (bound %.0e)", e, vulkan.FP16Tolerance)
	if err != nil || cerr != nil || e > vulkan.FP16Tolerance || !vk.MatMulFP16() {
		t.Errorf("fp16: error %v, self-check error %v, normalized error %.3g, fp16 %v", err, cerr, e, vk.MatMulFP16())
	}
}

// TestAttentionInferenceMatchesCPU runs attention without gradients, where
// the device gets no probs buffer and keeps the probabilities in a
// temporary one, against the CPU reference.
func TestAttentionInferenceMatchesCPU(t *testing.T) {
	vk := testDevice(t)
	ref := kernels.NewCPULevel(1, kernels.Generic)
	r := rand.New(rand.NewPCG(7, 8))
	vals := make([][]float32, 3)
	for i := range vals {
		vals[i] = make([]float32, 2*37*24)
		for k := range vals[i] {
			vals[i][k] = 2*r.Float32() - 1
		}
	}
	res := map[string][]float32{}
	for name, dev := range map[string]Device{"cpu": ref, "vulkan": vk} {
		q, k, v := FromFloat32(dev, vals[0], 2, 37, 24), FromFloat32(dev, vals[1], 2, 37, 24), FromFloat32(dev, vals[2], 2, 37, 24)
		res[name] = Attention(q, k, v, 3).MustFloat32s()
	}
	if e := normErr(res["vulkan"], res["cpu"]); e > 1e-5 || math.IsNaN(e) {
		t.Errorf("attention without gradients: normalized error %.3g against the CPU (tolerance 1e-5)", e)
	}
}

// TestNormActivation: a group norm with its activation fused
// (NormParams.Activate, inference only, so outside the gradient table
// above) against the reference, for SiLU and GELU.
func TestNormActivation(t *testing.T) {
	vk := testDevice(t)
	ref := kernels.NewCPULevel(1, kernels.Generic)
	r := rand.New(rand.NewPCG(13, 14))
	c := opCase{"group_norm_act", 1e-5, []input{in(-1, 2, 2, 8, 5, 3), in(0.5, 1.5, 8), in(-0.5, 0.5, 8)}, nil}
	data, _ := c.inputs(r)
	for _, act := range []string{"silu", "gelu"} {
		run := func(dev Device) (out []float32, err error) {
			err = Catch(func() {
				x := FromFloat32(dev, data[0], c.in[0].shape...)
				g, b := FromFloat32(dev, data[1], 8), FromFloat32(dev, data[2], 8)
				out = GroupNormAct(x, 4, g, b, 1e-5, act).MustFloat32s()
				// and in place: x's buffer bound as both input and output
				inPlace := GroupNormActInPlace(FromFloat32(dev, data[0], c.in[0].shape...), 4, g, b, 1e-5, act).MustFloat32s()
				if e := normErr(inPlace, out); e > 1e-6 {
					t.Errorf("%s on %s: in place differs from a fresh output by %.2g", act, dev.Name(), e)
				}
			})
			return
		}
		want, err := run(ref)
		if err != nil {
			t.Fatal(err)
		}
		got, err := run(vk)
		if err != nil {
			t.Fatal(err)
		}
		if e := normErr(got, want); e > c.tol {
			t.Errorf("%s: normalized error %.2g > %.0g", act, e, c.tol)
		}
	}
}
