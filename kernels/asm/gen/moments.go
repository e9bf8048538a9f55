package main

import (
	. "github.com/mmcloughlin/avo/build"
	. "github.com/mmcloughlin/avo/operand"
	. "github.com/mmcloughlin/avo/reg"
)

// generateMoments writes MomentsAVX2, the one pass of the normalization
// statistics: with d = x − k in float64 (k a value near the mean, so that
// the sums do not cancel), Σd and Σd².
func generateMoments() {
	TEXT("MomentsAVX2", NOSPLIT, "func(x []float32, k float64) (s, ss float64)")
	Pragma("noescape")
	Doc("MomentsAVX2 returns Σ(x[i] − k) and Σ(x[i] − k)² in float64 for i < len(x) rounded down to a",
		"multiple of 8 (the caller adds the tail). AVX2+FMA.")
	kv := YMM()
	VBROADCASTSD(paramMem(Param("k")), kv)
	pairedSums("moments", []string{"x"}, func(p []GPVirtual, s, q [2]VecVirtual) {
		for h := range 2 {
			d := YMM()
			VCVTPS2PD(Mem{Base: p[0], Disp: 16 * h}, d)
			VSUBPD(kv, d, d)
			VADDPD(d, s[h], s[h])
			VFMADD231PD(d, d, q[h])
		}
	})
}

// generateSumDot writes SumDotAVX2, the sums of the normalizations'
// backward pass for one row: Σy and Σy·x in float64 (a product of two
// float32s is exact there, so the fused multiply-add rounds only the sum).
func generateSumDot() {
	TEXT("SumDotAVX2", NOSPLIT, "func(y, x []float32) (sy, syx float64)")
	Pragma("noescape")
	Doc("SumDotAVX2 returns Σy[i] and Σy[i]·x[i] in float64 for i < len(y) rounded down to a multiple",
		"of 8 (the caller adds the tail; x is at least as long). AVX2+FMA.")
	pairedSums("sumdot", []string{"y", "x"}, func(p []GPVirtual, s, q [2]VecVirtual) {
		for h := range 2 {
			a, u := YMM(), YMM()
			VCVTPS2PD(Mem{Base: p[0], Disp: 16 * h}, a)
			VCVTPS2PD(Mem{Base: p[1], Disp: 16 * h}, u)
			VADDPD(a, s[h], s[h])
			VFMADD231PD(u, a, q[h])
		}
	})
}

// pairedSums emits the loop of a kernel that returns two float64 sums over
// the float32 slices params, len(first) rounded down to 8 values: body adds
// eight values' worth, as two halves of four widened to float64, each half
// into its own accumulators s[h] and q[h] (four chains of four lanes in
// all); the halves are then added and each sum folded to one value.
func pairedSums(name string, params []string, body func(p []GPVirtual, s, q [2]VecVirtual)) {
	s, q := [2]VecVirtual{YMM(), YMM()}, [2]VecVirtual{YMM(), YMM()}
	for _, r := range []VecVirtual{s[0], s[1], q[0], q[1]} {
		VXORPD(r, r, r)
	}
	vecLoop(name, params, 8, func(p []GPVirtual) { body(p, s, q) })
	VADDPD(s[1], s[0], s[0])
	VADDPD(q[1], q[0], q[0])
	VMOVSD(reduce4(s[0]), paramMem(ReturnIndex(0)))
	VMOVSD(reduce4(q[0]), paramMem(ReturnIndex(1)))
	VZEROUPPER()
	RET()
}

// reduce4 folds the four float64 lanes of v into the low lane of a new register.
func reduce4(v VecVirtual) VecVirtual {
	hi, s, t := XMM(), XMM(), XMM()
	VEXTRACTF128(U8(1), v, hi)
	VADDPD(hi, v.AsX(), s)
	VUNPCKHPD(s, s, t)
	VADDSD(t, s, s)
	return s
}
