package main

import (
	"math"

	. "github.com/mmcloughlin/avo/build"
	. "github.com/mmcloughlin/avo/operand"
)

// generateExp writes ExpAVX2: dst[i] = e^src[i] for the first len(src)/8·8
// elements, eight lanes at a time, with the same algorithm as the scalar
// expf in package kernels:
//
//	t = clamp(x, -103.97, 88.72)      (NaN passes through)
//	n = round(t·log2 e),  r = t - n·ln2hi - n·ln2lo
//	p = 1 + r + r²/2 + … + r⁷/7!      (Horner, fused multiply-adds)
//	e^x = p · 2^⌊n/2⌋ · 2^(n-⌊n/2⌋)   (two exponent scalings, so subnormals and n = 128 work)
func generateExp() {
	consts := GLOBL("expconsts", RODATA|NOPTR)
	vals := []float32{-103.97208, 88.72283, 1.4426950408889634, 0.693145751953125, 1.428606765330187e-06,
		1.0 / 5040, 1.0 / 720, 1.0 / 120, 1.0 / 24, 1.0 / 6, 0.5, 1}
	for i, v := range vals {
		// As bits: avo prints F32(1) as $(1), which the Go assembler reads as the integer 1.
		DATA(4*i, U32(math.Float32bits(v)))
	}
	DATA(4*len(vals), U32(127))
	c := func(i int) Mem { return consts.Offset(4 * i) }

	TEXT("ExpAVX2", NOSPLIT, "func(dst, src []float32)")
	Pragma("noescape")
	Doc("ExpAVX2 sets dst[i] = e^src[i] for i < len(src) rounded down to a multiple of 8",
		"(the caller finishes the tail). Within 2 ulp of math.Exp on [-87, 88]; saturates outside. AVX2+FMA.")
	dst := Load(Param("dst").Base(), GP64())
	src := Load(Param("src").Base(), GP64())
	n := Load(Param("src").Len(), GP64())
	SHRQ(U8(3), n)
	JZ(LabelRef("exp_done"))

	Comment("Constants that stay in registers.")
	lo, hi, log2e, ln2hi, ln2lo, bias := YMM(), YMM(), YMM(), YMM(), YMM(), YMM()
	VBROADCASTSS(c(0), lo)
	VBROADCASTSS(c(1), hi)
	VBROADCASTSS(c(2), log2e)
	VBROADCASTSS(c(3), ln2hi)
	VBROADCASTSS(c(4), ln2lo)
	VPBROADCASTD(c(len(vals)), bias)

	Label("exp_loop")
	t, nf, p, k := YMM(), YMM(), YMM(), YMM()
	VMOVUPS(Mem{Base: src}, t)
	Comment("Clamp, keeping NaN (MAXPS/MINPS return their first Go operand when it is NaN).")
	VMAXPS(t, lo, t)
	VMINPS(t, hi, t)
	Comment("n = round(t·log2e); r = t - n·ln2 in two parts (t becomes r).")
	VMULPS(log2e, t, nf)
	VROUNDPS(U8(0), nf, nf)
	VFNMADD231PS(nf, ln2hi, t)
	VFNMADD231PS(nf, ln2lo, t)
	Comment("p = Σ r^k/k!, Horner from 1/7!.")
	VBROADCASTSS(c(5), p)
	for i := 6; i < len(vals); i++ {
		VBROADCASTSS(c(i), k)
		VFMADD213PS(k, t, p)
	}
	VBROADCASTSS(c(len(vals)-1), k)
	VFMADD213PS(k, t, p)
	Comment("Scale by 2^n as 2^(n>>1) · 2^(n - n>>1), building each factor's exponent bits.")
	ni, n1 := YMM(), YMM()
	VCVTPS2DQ(nf, ni)
	VPSRAD(U8(1), ni, n1)
	VPSUBD(n1, ni, ni)
	VPADDD(bias, n1, n1)
	VPSLLD(U8(23), n1, n1)
	VPADDD(bias, ni, ni)
	VPSLLD(U8(23), ni, ni)
	VMULPS(n1, p, p)
	VMULPS(ni, p, p)
	VMOVUPS(p, Mem{Base: dst})
	ADDQ(U8(32), src)
	ADDQ(U8(32), dst)
	DECQ(n)
	JNZ(LabelRef("exp_loop"))

	Label("exp_done")
	VZEROUPPER()
	RET()
}
