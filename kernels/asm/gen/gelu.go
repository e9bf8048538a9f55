package main

import (
	"fmt"
	"math"
	"strings"

	. "github.com/mmcloughlin/avo/build"
	. "github.com/mmcloughlin/avo/operand"
	. "github.com/mmcloughlin/avo/reg"
)

// The exact (erf) GELU of Stable Diffusion's feed-forward layers and its
// gradient, with the same algorithm as the scalar normCDF in package kernels:
//
//	y = x·Φ(x),   Φ(x) = erfc(z)/2,  z = −x/√2
//	erfc(z) ≈ t·e^(−a² + P(t)),  a = |z|,  t = 1/(1 + a/2)   (Numerical Recipes' erfcc fit)
//	erfc(z) = 2 − erfc(a) when z < 0
//	dy/dx = Φ(x) + x·φ(x),   φ(x) = e^(−x²/2)/√(2π)
//
// P's ten coefficients by Horner from the highest; e^ is ExpAVX2's exp.
// −a² + P is one fused multiply-add here (two roundings in the scalar code),
// so results may differ from the scalar tail by an ulp.

var erfcCoefs = [numErfcCoefs]float32{0.17087277, -0.82215223, 1.48851587, -1.13520398, 0.27886807, -0.18628806, 0.09678418,
	0.37409196, 1.00002368, -1.26551223}

var geluData Mem

// The constant block: P's coefficients, then these, by index.
const (
	numErfcCoefs    = 10
	geluNegInvSqrt2 = iota + numErfcCoefs - 1 // −1/√2
	geluHalf                                  // 0.5
	geluTwo                                   // 2
	geluAbsMask                               // 0x7fffffff
	geluNegHalf                               // −0.5
	geluInvSqrt2Pi                            // 1/√(2π)
)

func declareGELUConsts() {
	geluData = GLOBL("geluconsts", RODATA|NOPTR)
	for i, v := range erfcCoefs {
		DATA(4*i, U32(math.Float32bits(v)))
	}
	for i, bits := range []uint32{ // in the order of the constants above
		math.Float32bits(float32(-1 / math.Sqrt2)), math.Float32bits(0.5), math.Float32bits(2), 0x7fffffff,
		math.Float32bits(-0.5), math.Float32bits(float32(1 / math.Sqrt(2*math.Pi))),
	} {
		DATA(4*(geluNegInvSqrt2+i), U32(bits))
	}
}

func geluConst(i int) Mem { return geluData.Offset(4 * i) }

// phi emits Φ(x) for the lanes of x (x is kept). The AVX-512F form uses the
// integer AND and an opmask blend (VANDPS and VBLENDVPS have no AVX-512F
// ZMM form); the lanes see the same operations.
func (a isa) phi(e expRegs, x VecVirtual) VecVirtual {
	z, abs, t, c, one, half := a.vec(), a.vec(), a.vec(), a.vec(), a.vec(), a.vec()
	Comment("z = −x/√2, a = |z|, t = 1/(1 + a/2)")
	VBROADCASTSS(geluConst(geluNegInvSqrt2), c)
	VMULPS(c, x, z)
	VBROADCASTSS(geluConst(geluAbsMask), c)
	if a.zmm {
		VPANDD(c, z, abs)
	} else {
		VANDPS(c, z, abs)
	}
	VBROADCASTSS(geluConst(geluHalf), half)
	VBROADCASTSS(expOne(), one)
	VMOVAPS(one, t)
	VFMADD231PS(half, abs, t)
	VDIVPS(t, one, t)
	Comment("P(t) by Horner; then the exponent −a² + P(t)")
	q := a.vec()
	VBROADCASTSS(geluConst(0), q)
	for i := 1; i < len(erfcCoefs); i++ {
		VBROADCASTSS(geluConst(i), c)
		VFMADD213PS(c, t, q)
	}
	VFNMADD231PS(abs, abs, q)
	r := e.exp(q)
	VMULPS(t, r, r)
	Comment("erfc(z) = 2 − erfc(|z|) where z < 0; Φ = erfc/2")
	two, zero := a.vec(), a.vec()
	VBROADCASTSS(geluConst(geluTwo), two)
	VSUBPS(r, two, two)
	zeroVec(zero, a.zmm)
	if a.zmm {
		neg := K()
		VCMPPS(U8(1), zero, z, neg) // z < 0
		VBLENDMPS(two, r, neg, r)
	} else {
		VCMPPS(U8(1), zero, z, zero) // z < 0
		VBLENDVPS(zero, two, r, r)
	}
	VMULPS(half, r, r)
	return r
}

func generateGELU() {
	declareGELUConsts()
	for _, a := range []isa{isaAVX2, isaAVX512} {
		name := "GELU" + a.suffix
		TEXT(name, NOSPLIT, "func(dst, src []float32)")
		Pragma("noescape")
		Doc(fmt.Sprintf("%s sets dst[i] = src[i]·Φ(src[i]) (the erf GELU) for i < len(src) rounded down to a", name),
			fmt.Sprintf("multiple of %d (the caller finishes the tail), Φ from an erfc fit and ExpAVX2's exp. %s.", a.lanes, a.needs))
		e := a.expRegs()
		elementwiseLanes(strings.ToLower(name), []string{"src", "dst"}, a.lanes, func(p []GPVirtual) {
			x := a.vec()
			VMOVUPS(Mem{Base: p[0]}, x)
			r := a.phi(e, x)
			VMULPS(x, r, r)
			VMOVUPS(r, Mem{Base: p[1]})
		})

		name = "GELUGrad" + a.suffix
		TEXT(name, NOSPLIT, "func(dx, x, dy []float32)")
		Pragma("noescape")
		Doc(fmt.Sprintf("%s sets dx[i] = dy[i]·(Φ(x[i]) + x[i]·φ(x[i])) for i < len(x) rounded down to a", name),
			fmt.Sprintf("multiple of %d (the caller finishes the tail); Φ as in %s, φ(x) = e^(−x²/2)/√(2π). %s.",
				a.lanes, "GELU"+a.suffix, a.needs))
		e = a.expRegs()
		elementwiseLanes(strings.ToLower(name), []string{"x", "dy", "dx"}, a.lanes, func(p []GPVirtual) {
			x, q, c := a.vec(), a.vec(), a.vec()
			VMOVUPS(Mem{Base: p[0]}, x)
			r := a.phi(e, x)
			Comment("φ(x)·x = (x/√(2π))·e^(−x²/2); dx = dy·(Φ + x·φ)")
			VBROADCASTSS(geluConst(geluNegHalf), q)
			VMULPS(x, q, q)
			VMULPS(x, q, q)
			g := e.exp(q)
			VBROADCASTSS(geluConst(geluInvSqrt2Pi), c)
			VMULPS(c, x, c)
			VFMADD213PS(r, c, g)
			VMULPS(Mem{Base: p[1]}, g, g)
			VMOVUPS(g, Mem{Base: p[2]})
		})
	}
}
