package main

import (
	"math"

	. "github.com/mmcloughlin/avo/build"
	. "github.com/mmcloughlin/avo/operand"
	. "github.com/mmcloughlin/avo/reg"
)

// GELUAVX2, the exact (erf) GELU of Stable Diffusion's feed-forward layers,
// with the same algorithm as the scalar normCDF in package kernels:
//
//	y = x·Φ(x),   Φ(x) = erfc(z)/2,  z = −x/√2
//	erfc(z) ≈ t·e^(−a² + P(t)),  a = |z|,  t = 1/(1 + a/2)   (Numerical Recipes' erfcc fit)
//	erfc(z) = 2 − erfc(a) when z < 0
//
// P's ten coefficients by Horner from the highest; e^ is ExpAVX2's exp.
// −a² + P is one fused multiply-add here (two roundings in the scalar code),
// so results may differ from the scalar tail by an ulp.

var erfcCoefs = []float32{0.17087277, -0.82215223, 1.48851587, -1.13520398, 0.27886807, -0.18628806, 0.09678418,
	0.37409196, 1.00002368, -1.26551223}

var geluData Mem

func declareGELUConsts() {
	geluData = GLOBL("geluconsts", RODATA|NOPTR)
	for i, v := range erfcCoefs {
		DATA(4*i, U32(math.Float32bits(v)))
	}
	n := len(erfcCoefs)
	DATA(4*n, U32(math.Float32bits(float32(-1/math.Sqrt2))))
	DATA(4*(n+1), U32(math.Float32bits(0.5)))
	DATA(4*(n+2), U32(math.Float32bits(2)))
	DATA(4*(n+3), U32(0x7fffffff))
}

func geluConst(i int) Mem { return geluData.Offset(4 * i) }

func generateGELU() {
	declareGELUConsts()
	TEXT("GELUAVX2", NOSPLIT, "func(dst, src []float32)")
	Pragma("noescape")
	Doc("GELUAVX2 sets dst[i] = src[i]·Φ(src[i]) (the erf GELU) for i < len(src) rounded down to a multiple",
		"of 8 (the caller finishes the tail), Φ from an erfc fit and ExpAVX2's exp. AVX2+FMA.")
	e := loadExpRegs()
	n := len(erfcCoefs)
	elementwise("gelu", []string{"src", "dst"}, func(p []GPVirtual) {
		x, z, a, t, c, one, half := YMM(), YMM(), YMM(), YMM(), YMM(), YMM(), YMM()
		VMOVUPS(Mem{Base: p[0]}, x)
		Comment("z = −x/√2, a = |z|, t = 1/(1 + a/2)")
		VBROADCASTSS(geluConst(n), c)
		VMULPS(c, x, z)
		VBROADCASTSS(geluConst(n+3), c)
		VANDPS(c, z, a)
		VBROADCASTSS(geluConst(n+1), half)
		VBROADCASTSS(expOne(), one)
		VMOVAPS(one, t)
		VFMADD231PS(half, a, t)
		VDIVPS(t, one, t)
		Comment("P(t) by Horner; then the exponent −a² + P(t)")
		q := YMM()
		VBROADCASTSS(geluConst(0), q)
		for i := 1; i < n; i++ {
			VBROADCASTSS(geluConst(i), c)
			VFMADD213PS(c, t, q)
		}
		VFNMADD231PS(a, a, q)
		r := e.exp(q)
		VMULPS(t, r, r)
		Comment("erfc(z) = 2 − erfc(|z|) where z < 0; Φ = erfc/2; y = x·Φ")
		two, neg := YMM(), YMM()
		VBROADCASTSS(geluConst(n+2), two)
		VSUBPS(r, two, two)
		VXORPS(neg, neg, neg)
		VCMPPS(U8(1), neg, z, neg) // z < 0
		VBLENDVPS(neg, two, r, r)
		VMULPS(half, r, r)
		VMULPS(x, r, r)
		VMOVUPS(r, Mem{Base: p[1]})
	})
}
