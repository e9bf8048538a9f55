package main

import (
	"math"

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

// expRegs holds the constants the exp keeps in registers.
type expRegs struct{ lo, hi, log2e, ln2hi, ln2lo, bias VecVirtual }

func loadExpRegs() expRegs {
	Comment("Constants of the exp that stay in registers.")
	e := expRegs{YMM(), YMM(), YMM(), YMM(), YMM(), YMM()}
	VBROADCASTSS(expConst(0), e.lo)
	VBROADCASTSS(expConst(1), e.hi)
	VBROADCASTSS(expConst(2), e.log2e)
	VBROADCASTSS(expConst(3), e.ln2hi)
	VBROADCASTSS(expConst(4), e.ln2lo)
	VPBROADCASTD(expConst(len(expVals)), e.bias)
	return e
}

// exp emits p = e^t for the eight lanes of t (t is overwritten) and returns p.
func (e expRegs) exp(t VecVirtual) VecVirtual {
	nf, p, k := YMM(), YMM(), YMM()
	Comment("Clamp, keeping NaN (MAXPS/MINPS return their first Go operand when it is NaN).")
	VMAXPS(t, e.lo, t)
	VMINPS(t, e.hi, t)
	Comment("n = round(t·log2e); r = t - n·ln2 in two parts (t becomes r).")
	VMULPS(e.log2e, t, nf)
	VROUNDPS(U8(0), nf, nf)
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
	ni, n1 := YMM(), YMM()
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

// sigmoid emits s = 1/(1 + e^-x) for the eight lanes of x (x is kept).
func (e expRegs) sigmoid(x VecVirtual) VecVirtual {
	t, one := YMM(), YMM()
	Comment("σ(x) = 1/(1 + e^-x)")
	VXORPS(t, t, t)
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
	ptrs := make([]GPVirtual, len(params))
	for i, p := range params {
		ptrs[i] = Load(Param(p).Base(), GP64()).(GPVirtual)
	}
	n := Load(Param(params[0]).Len(), GP64())
	SHRQ(U8(3), n)
	JZ(LabelRef(name + "_done"))
	Label(name + "_loop")
	body(ptrs)
	for _, p := range ptrs {
		ADDQ(U8(32), p)
	}
	DECQ(n)
	JNZ(LabelRef(name + "_loop"))
	Label(name + "_done")
	VZEROUPPER()
	RET()
}

func generateExp() {
	TEXT("ExpAVX2", NOSPLIT, "func(dst, src []float32)")
	Pragma("noescape")
	Doc("ExpAVX2 sets dst[i] = e^src[i] for i < len(src) rounded down to a multiple of 8",
		"(the caller finishes the tail). Within 2 ulp of math.Exp on [-87, 88]; saturates outside. AVX2+FMA.")
	e := loadExpRegs()
	elementwise("exp", []string{"src", "dst"}, func(p []GPVirtual) {
		t := YMM()
		VMOVUPS(Mem{Base: p[0]}, t)
		VMOVUPS(e.exp(t), Mem{Base: p[1]})
	})
}

// generateSiLU writes the fused SiLU kernels: one pass instead of four
// (negate, exp, 1/(1+e), multiply), with the operations of that sequence in
// the same order, so the results keep the same bits.
func generateSiLU() {
	TEXT("SiLUAVX2", NOSPLIT, "func(dst, src []float32)")
	Pragma("noescape")
	Doc("SiLUAVX2 sets dst[i] = src[i]·σ(src[i]) for i < len(src) rounded down to a multiple of 8",
		"(the caller finishes the tail), σ(x) = 1/(1 + e^-x) with ExpAVX2's exp. AVX2+FMA.")
	e := loadExpRegs()
	elementwise("silu", []string{"src", "dst"}, func(p []GPVirtual) {
		x := YMM()
		VMOVUPS(Mem{Base: p[0]}, x)
		s := e.sigmoid(x)
		VMULPS(x, s, s)
		VMOVUPS(s, Mem{Base: p[1]})
	})

	TEXT("SiLUGradAVX2", NOSPLIT, "func(dx, x, dy []float32)")
	Pragma("noescape")
	Doc("SiLUGradAVX2 sets dx[i] = dy[i]·σ·(1 + x[i]·(1 − σ)), σ = σ(x[i]), for i < len(x) rounded",
		"down to a multiple of 8 (the caller finishes the tail). AVX2+FMA.")
	e = loadExpRegs()
	elementwise("silugrad", []string{"x", "dy", "dx"}, func(p []GPVirtual) {
		x, a, one := YMM(), YMM(), YMM()
		VMOVUPS(Mem{Base: p[0]}, x)
		s := e.sigmoid(x)
		Comment("dx = (dy·σ)·(1 + x·(1 − σ))")
		VBROADCASTSS(expOne(), one)
		VSUBPS(s, one, a)
		VMULPS(a, x, a)
		VADDPS(a, one, a)
		VMULPS(Mem{Base: p[1]}, s, s)
		VMULPS(a, s, s)
		VMOVUPS(s, Mem{Base: p[2]})
	})
}
