package main

import (
	"fmt"
	"math"
	"strings"

	. "github.com/mmcloughlin/avo/build"
	. "github.com/mmcloughlin/avo/operand"
	. "github.com/mmcloughlin/avo/reg"
)

// The vector exp, with the same algorithm as the scalar expf in package
// kernels:
//
//	t = clamp(x, -103.97, 88.72)      (NaN passes through)
//	n = round(t·log2 e),  r = t - n·ln2hi - n·ln2lo
//	p = 1 + r + r²/2 + … + r⁷/7!      (Horner, fused multiply-adds)
//	e^x = p · 2^⌊n/2⌋ · 2^(n-⌊n/2⌋)   (two exponent scalings, so subnormals and n = 128 work)
//
// ExpAVX2 applies it to a slice; SiLUAVX2 and SiLUGradAVX2 build on it.

var expVals = []float32{-103.97208, 88.72283, 1.4426950408889634, 0.693145751953125, 1.428606765330187e-06,
	1.0 / 5040, 1.0 / 720, 1.0 / 120, 1.0 / 24, 1.0 / 6, 0.5, 1}

// expData is the constant block, declared once for all the kernels.
var expData Mem

func declareExpConsts() {
	expData = GLOBL("expconsts", RODATA|NOPTR)
	for i, v := range expVals {
		// As bits: avo prints F32(1) as $(1), which the Go assembler reads as the integer 1.
		DATA(4*i, U32(math.Float32bits(v)))
	}
	DATA(4*len(expVals), U32(127))
}

func expConst(i int) Mem { return expData.Offset(4 * i) }

// expOne is the address of the constant 1.0.
func expOne() Mem { return expConst(len(expVals) - 1) }

// expRegs holds the constants the exp keeps in registers, and the width of
// its vectors: eight lanes (YMM, AVX2) or sixteen (ZMM, AVX-512F).
type expRegs struct {
	lo, hi, log2e, ln2hi, ln2lo, bias VecVirtual
	vec                               func() VecVirtual
	zmm                               bool
}

func loadExpRegs() expRegs { return loadExpRegsOf(YMM, false) }

// loadExpRegsOf is loadExpRegs for vectors made by vec (zmm: ZMM).
func loadExpRegsOf(vec func() VecVirtual, zmm bool) expRegs {
	Comment("Constants of the exp that stay in registers.")
	e := expRegs{vec(), vec(), vec(), vec(), vec(), vec(), vec, zmm}
	VBROADCASTSS(expConst(0), e.lo)
	VBROADCASTSS(expConst(1), e.hi)
	VBROADCASTSS(expConst(2), e.log2e)
	VBROADCASTSS(expConst(3), e.ln2hi)
	VBROADCASTSS(expConst(4), e.ln2lo)
	VPBROADCASTD(expConst(len(expVals)), e.bias)
	return e
}

// exp emits p = e^t for the lanes of t (t is overwritten) and returns p.
// Both widths run the same operations on every lane (VRNDSCALEPS with
// immediate 0 rounds as VROUNDPS does), so they give the same bits.
func (e expRegs) exp(t VecVirtual) VecVirtual {
	nf, p, k := e.vec(), e.vec(), e.vec()
	Comment("Clamp, keeping NaN (MAXPS/MINPS return their first Go operand when it is NaN).")
	VMAXPS(t, e.lo, t)
	VMINPS(t, e.hi, t)
	Comment("n = round(t·log2e); r = t - n·ln2 in two parts (t becomes r).")
	VMULPS(e.log2e, t, nf)
	if e.zmm {
		VRNDSCALEPS(U8(0), nf, nf)
	} else {
		VROUNDPS(U8(0), nf, nf)
	}
	VFNMADD231PS(nf, e.ln2hi, t)
	VFNMADD231PS(nf, e.ln2lo, t)
	Comment("p = Σ r^k/k!, Horner from 1/7!.")
	VBROADCASTSS(expConst(5), p)
	for i := 6; i < len(expVals); i++ {
		VBROADCASTSS(expConst(i), k)
		VFMADD213PS(k, t, p)
	}
	VBROADCASTSS(expOne(), k)
	VFMADD213PS(k, t, p)
	Comment("Scale by 2^n as 2^(n>>1) · 2^(n - n>>1), building each factor's exponent bits.")
	ni, n1 := e.vec(), e.vec()
	VCVTPS2DQ(nf, ni)
	VPSRAD(U8(1), ni, n1)
	VPSUBD(n1, ni, ni)
	VPADDD(e.bias, n1, n1)
	VPSLLD(U8(23), n1, n1)
	VPADDD(e.bias, ni, ni)
	VPSLLD(U8(23), ni, ni)
	VMULPS(n1, p, p)
	VMULPS(ni, p, p)
	return p
}

// zeroVec emits v = 0: VXORPS, or VPXORD on ZMM (VXORPS there needs
// AVX-512DQ, and the AVX-512 kernels ask only for AVX-512F).
func zeroVec(v VecVirtual, zmm bool) {
	if zmm {
		VPXORD(v, v, v)
	} else {
		VXORPS(v, v, v)
	}
}

// sigmoid emits s = 1/(1 + e^-x) for the lanes of x (x is kept).
func (e expRegs) sigmoid(x VecVirtual) VecVirtual {
	t, one := e.vec(), e.vec()
	Comment("σ(x) = 1/(1 + e^-x)")
	zeroVec(t, e.zmm)
	VSUBPS(x, t, t)
	p := e.exp(t)
	VBROADCASTSS(expOne(), one)
	VADDPS(one, p, p)
	VDIVPS(p, one, p)
	return p
}

// elementwise emits the loop of a kernel over len(first) rounded down to a
// multiple of 8 of the given slices; body gets the current pointers.
func elementwise(name string, params []string, body func(ptrs []GPVirtual)) {
	elementwiseLanes(name, params, 8, body)
}

// elementwiseLanes is elementwise with vectors of 8 or 16 float32 lanes.
func elementwiseLanes(name string, params []string, lanes int, body func(ptrs []GPVirtual)) {
	vecLoop(name, params, lanes, body)
	VZEROUPPER()
	RET()
}

// vecLoop emits a loop over len(first) rounded down to a multiple of lanes
// values of the float32 slices params: body gets their current pointers
// and handles lanes values of each; the caller emits what follows the loop.
func vecLoop(name string, params []string, lanes int, body func(ptrs []GPVirtual)) {
	ptrs := make([]GPVirtual, len(params))
	for i, p := range params {
		ptrs[i] = Load(Param(p).Base(), GP64()).(GPVirtual)
	}
	n := Load(Param(params[0]).Len(), GP64())
	SHRQ(U8(map[int]uint8{8: 3, 16: 4}[lanes]), n)
	JZ(LabelRef(name + "_done"))
	Label(name + "_loop")
	body(ptrs)
	for _, p := range ptrs {
		ADDQ(U8(4*lanes), p)
	}
	DECQ(n)
	JNZ(LabelRef(name + "_loop"))
	Label(name + "_done")
}

// isa names a vector width the exp kernels come in: the suffix of their
// names, the instruction sets they need, and the lanes of a register.
type isa struct {
	suffix, needs string
	lanes         int
	vec           func() VecVirtual
	zmm           bool
}

var (
	isaAVX2   = isa{"AVX2", "AVX2+FMA", 8, YMM, false}
	isaAVX512 = isa{"AVX512", "AVX-512F", 16, ZMM, true}
)

func (a isa) expRegs() expRegs { return loadExpRegsOf(a.vec, a.zmm) }

func generateExp() {
	for _, a := range []isa{isaAVX2, isaAVX512} {
		name := "Exp" + a.suffix
		TEXT(name, NOSPLIT, "func(dst, src []float32)")
		Pragma("noescape")
		Doc(fmt.Sprintf("%s sets dst[i] = e^src[i] for i < len(src) rounded down to a multiple of %d", name, a.lanes),
			"(the caller finishes the tail). Within 2 ulp of math.Exp on [-87, 88]; saturates outside. "+a.needs+".")
		e := a.expRegs()
		elementwiseLanes(strings.ToLower(name), []string{"src", "dst"}, a.lanes, func(p []GPVirtual) {
			t := a.vec()
			VMOVUPS(Mem{Base: p[0]}, t)
			VMOVUPS(e.exp(t), Mem{Base: p[1]})
		})
	}
}

// generateSiLU writes the fused SiLU kernels: one pass instead of four
// (negate, exp, 1/(1+e), multiply), with the operations of that sequence in
// the same order, so the results keep the same bits.
func generateSiLU() {
	for _, a := range []isa{isaAVX2, isaAVX512} {
		name := "SiLU" + a.suffix
		TEXT(name, NOSPLIT, "func(dst, src []float32)")
		Pragma("noescape")
		Doc(fmt.Sprintf("%s sets dst[i] = src[i]·σ(src[i]) for i < len(src) rounded down to a multiple of %d", name, a.lanes),
			"(the caller finishes the tail), σ(x) = 1/(1 + e^-x) with ExpAVX2's exp. "+a.needs+".")
		e := a.expRegs()
		elementwiseLanes(strings.ToLower(name), []string{"src", "dst"}, a.lanes, func(p []GPVirtual) {
			x := a.vec()
			VMOVUPS(Mem{Base: p[0]}, x)
			s := e.sigmoid(x)
			VMULPS(x, s, s)
			VMOVUPS(s, Mem{Base: p[1]})
		})

		name = "SiLUGrad" + a.suffix
		TEXT(name, NOSPLIT, "func(dx, x, dy []float32)")
		Pragma("noescape")
		Doc(fmt.Sprintf("%s sets dx[i] = dy[i]·σ·(1 + x[i]·(1 − σ)), σ = σ(x[i]), for i < len(x) rounded", name),
			fmt.Sprintf("down to a multiple of %d (the caller finishes the tail). %s.", a.lanes, a.needs))
		e = a.expRegs()
		elementwiseLanes(strings.ToLower(name), []string{"x", "dy", "dx"}, a.lanes, func(p []GPVirtual) {
			x, g, one := a.vec(), a.vec(), a.vec()
			VMOVUPS(Mem{Base: p[0]}, x)
			s := e.sigmoid(x)
			Comment("dx = (dy·σ)·(1 + x·(1 − σ))")
			VBROADCASTSS(expOne(), one)
			VSUBPS(s, one, g)
			VMULPS(g, x, g)
			VADDPS(g, one, g)
			VMULPS(Mem{Base: p[1]}, s, s)
			VMULPS(g, s, s)
			VMOVUPS(s, Mem{Base: p[2]})
		})
	}
}
