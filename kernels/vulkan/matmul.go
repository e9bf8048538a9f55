//go:build !windows

package vulkan

import (
	"fmt"
	"math"

	"github.com/godiffuse/godiffuse/tensor"
)

// GEMMs: the tiled shaders and the cooperative-matrix (fp16) path, chosen
// at start-up and checked against fp32 on the device itself.

// SelectMatMul chooses the GEMM path as GODIFFUSE_VULKAN_MATMUL does at
// start-up: "", "auto" and "fp32" keep every GEMM in fp32, "fp16" demands
// the cooperative-matrix path and a passing self-check (see CheckFP16).
//
// auto does not take the cooperative-matrix path: on the one GPU measured
// (an NVIDIA H200, bench/RESULTS.md 2026-12-04) its 64×64-tile shader ran
// GEMMs at 3 TFLOP/s against 24–28 for the fp32 128×128 tile, and the SD
// U-Net step took 0.44 s against 0.23.
func (d *Device) SelectMatMul(mode string) error {
	switch mode {
	case "", "auto", "fp32":
		if d.c.coopShader != "" {
			d.note = "GEMMs stay fp32 (the cooperative-matrix GEMM measured slower than the fp32 tiles; GODIFFUSE_VULKAN_MATMUL=fp16 takes it)"
		}
		return d.SetMatMulFP16(false)
	case "fp16":
	default:
		return fmt.Errorf("GODIFFUSE_VULKAN_MATMUL=%q: want auto, fp32 or fp16", mode)
	}
	if d.c.coopShader == "" {
		return d.SetMatMulFP16(true) // the error naming what the device lacks
	}
	e, err := d.CheckFP16()
	if err == nil && !(e <= FP16Tolerance) {
		err = fmt.Errorf("normalized error %.3g against fp32, bound %.0e", e, FP16Tolerance)
	}
	if err != nil {
		return fmt.Errorf("GODIFFUSE_VULKAN_MATMUL=fp16: the cooperative-matrix GEMM failed its self-check: %v", err)
	}
	d.note = fmt.Sprintf("GEMMs use cooperative matrices (fp16 inputs, fp32 accumulation, self-check error %.2g)", e)
	return d.SetMatMulFP16(true)
}

// MatMulNote says which GEMM path start-up chose and why ("" when there was
// no choice to make); the library does not log, its callers may.
func (d *Device) MatMulNote() string { return d.note }

// FP16Tolerance bounds max|fp16 − fp32| / max|fp32| of the self-check:
// inputs rounded to fp16 (11-bit significands) give about 1e-3.
const FP16Tolerance = 5e-3

// CheckFP16 runs one product whose sizes are off the 16×16 tiles (edges)
// and span several k-blocks through the cooperative-matrix shader and the
// fp32 one, and returns the normalized difference. A driver or shader fault
// shows up here, at start-up, instead of in a user's results.
func (d *Device) CheckFP16() (float64, error) {
	const m, n, k = 200, 136, 264
	seed := uint32(1)
	rnd := func(size int) []float32 {
		v := make([]float32, size)
		for i := range v {
			seed = seed*1664525 + 1013904223
			v[i] = float32(seed>>8)/(1<<24)*2 - 1
		}
		return v
	}
	av, bv := rnd(m*k), rnd(k*n)
	p := tensor.MatMulParams{Batch: 1, M: m, N: n, K: k, Alpha: 1}
	if d.c.coopShader == "" {
		return 0, fmt.Errorf("vulkan: %s has no usable cooperative-matrix support", d.c.phys.Name)
	}
	defer d.SetMatMulFP16(d.MatMulFP16()) // the caller's choice afterwards
	var out [2][]float32
	var err error
	if e := tensor.Catch(func() {
		a, b := tensor.FromFloat32(d, av, m, k), tensor.FromFloat32(d, bv, k, n)
		for i, fp16 := range []bool{false, true} {
			d.SetMatMulFP16(fp16)
			c := tensor.Zeros(d, m, n)
			d.MatMul(c.Buffer(), a.Buffer(), b.Buffer(), p)
			if out[i], err = c.Float32s(); err != nil {
				return
			}
		}
	}); e != nil {
		return 0, e
	}
	if err != nil {
		return 0, err
	}
	var diff, ref float64
	for i, want := range out[0] {
		diff = max(diff, math.Abs(float64(out[1][i]-want)))
		ref = max(ref, math.Abs(float64(want)))
	}
	if ref == 0 || math.IsNaN(diff) {
		return math.Inf(1), nil
	}
	return diff / ref, nil
}

// SetMatMulFP16 routes GEMMs (not the convolutions) through the
// cooperative-matrix shader: inputs rounded to fp16, products accumulated in
// fp32, about 1e-3 relative error. It needs shaderFloat16, the Vulkan memory
// model and either VK_KHR_cooperative_matrix with a 16×16×16 or 8×8×8
// fp16·fp16+fp32 subgroup shape, or VK_NV_cooperative_matrix with 16×16×16
// and subgroups of 32.
func (d *Device) SetMatMulFP16(on bool) error {
	if on && d.c.coopShader == "" {
		return fmt.Errorf("vulkan: %s has no usable cooperative-matrix support (VK_KHR_cooperative_matrix 16×16×16 or 8×8×8 fp16·fp16+fp32, or VK_NV_cooperative_matrix 16×16×16 with subgroups of 32; shaderFloat16; vulkanMemoryModel)", d.c.phys.Name)
	}
	d.mu.Lock()
	d.fp16 = on
	d.mu.Unlock()
	return nil
}

// MatMulFP16 reports whether GEMMs run on the cooperative-matrix path.
func (d *Device) MatMulFP16() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.fp16
}

// CooperativeMatrix reports whether SetMatMulFP16(true) would work.
func (d *Device) CooperativeMatrix() bool { return d.c.coopShader != "" }

// CooperativeMatrixShader names the shader SetMatMulFP16(true) runs:
// gemm_coop_khr16 or gemm_coop_khr8 (VK_KHR_cooperative_matrix, by fragment
// edge), gemm_coop (VK_NV_cooperative_matrix), or "" for none.
func (d *Device) CooperativeMatrixShader() string { return d.c.coopShader }

// MatMul implements tensor.Device.
func (d *Device) MatMul(c, a, b tensor.Buffer, p tensor.MatMulParams) {
	cb, ab, bb := d.own("matmul", c, tensor.F32, 0, 0), d.own("matmul", a, tensor.F32, 0, 0), d.own("matmul", b, tensor.F32, 0, 0)
	lda, ldb := p.K, p.N
	if p.TransA {
		lda = p.M
	}
	if p.TransB {
		ldb = p.K
	}
	d.gemm(cb, ab, bb, gemmArgs{M: p.M, N: p.N, K: p.K, TransA: p.TransA, TransB: p.TransB, Alpha: p.Alpha, Beta: p.Beta,
		LdA: lda, LdB: ldb, LdC: p.N, Outer: p.Batch, Inner: 1, SA0: p.StrideA, SB0: p.StrideB, SC0: p.StrideC})
}

// gemmArgs is one call of the GEMM shader: Outer×Inner matrices, batch
// (o, i) starting at Off + o·S0 + i·S1 in each operand, with leading
// dimensions LdA, LdB, LdC (row strides) so that head slices of attention
// need no copies.
type gemmArgs struct {
	M, N, K          int
	TransA, TransB   bool
	Alpha, Beta      float32
	LdA, LdB, LdC    int
	Outer, Inner     int
	SA0, SB0, SC0    int
	SA1, SB1, SC1    int
	OffA, OffB, OffC int
}

func (d *Device) gemm(c, a, b *Buffer, g gemmArgs) {
	if g.Outer*g.Inner == 0 || g.M == 0 || g.N == 0 {
		return
	}
	push := []uint32{uint32(g.M), uint32(g.N), uint32(g.K), b2u(g.TransA), b2u(g.TransB), f32bits(g.Alpha), f32bits(g.Beta),
		uint32(g.LdA), uint32(g.LdB), uint32(g.LdC), uint32(g.Inner),
		uint32(g.SA0), uint32(g.SB0), uint32(g.SC0), uint32(g.SA1), uint32(g.SB1), uint32(g.SC1),
		uint32(g.OffA), uint32(g.OffB), uint32(g.OffC)}
	name, tile := "gemm", 64
	switch {
	case d.fp16:
		name = d.c.coopShader
	case g.M >= 128 && g.N >= 128:
		name, tile = "gemm_big", 128
	}
	gx, gy := (g.N+tile-1)/tile, (g.M+tile-1)/tile
	// One product of few tiles and a long K (a weight gradient, xᵀ·dy over
	// batch × tokens): split K over the grid into partial products, then
	// sum them into C (fp32 path, C whole from its start and overwritten).
	push = append(push, 0) // kChunk
	if !d.fp16 && g.Outer*g.Inner == 1 && g.Beta == 0 && g.LdC == g.N && g.OffC == 0 {
		d.runSplitK("matmul", name, c, []*Buffer{a, b, d.dummy}, push, gx, gy, 1, g.K, g.M*g.N)
		return
	}
	d.run(name, []*Buffer{c, a, b, d.dummy}, push, gx, gy, g.Outer*g.Inner)
}

func b2u(b bool) uint32 {
	if b {
		return 1
	}
	return 0
}
