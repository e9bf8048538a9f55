package main

import (
	. "github.com/mmcloughlin/avo/build"
	. "github.com/mmcloughlin/avo/operand"
	. "github.com/mmcloughlin/avo/reg"
)

// generateMoments writes MomentsAVX2, the one pass of the normalization
// statistics: with d = x − k in float64 (k a value near the mean, so that
// the sums do not cancel), Σd and Σd². Eight values per iteration: two
// halves of four widened to float64, each half with its own accumulators
// (four chains of four lanes in all).
func generateMoments() {
	TEXT("MomentsAVX2", NOSPLIT, "func(x []float32, k float64) (s, ss float64)")
	Pragma("noescape")
	Doc("MomentsAVX2 returns Σ(x[i] − k) and Σ(x[i] − k)² in float64 for i < len(x) rounded down to a",
		"multiple of 8 (the caller adds the tail). AVX2+FMA.")
	x := Load(Param("x").Base(), GP64())
	n := Load(Param("x").Len(), GP64())
	kv := YMM()
	VBROADCASTSD(Load(Param("k"), XMM()), kv)
	s0, s1, q0, q1 := YMM(), YMM(), YMM(), YMM()
	for _, r := range []VecVirtual{s0, s1, q0, q1} {
		VXORPD(r, r, r)
	}
	SHRQ(U8(3), n)
	JZ(LabelRef("moments_done"))
	Label("moments_loop")
	a, b := YMM(), YMM()
	VCVTPS2PD(Mem{Base: x}, a)
	VCVTPS2PD(Mem{Base: x, Disp: 16}, b)
	VSUBPD(kv, a, a)
	VSUBPD(kv, b, b)
	VADDPD(a, s0, s0)
	VADDPD(b, s1, s1)
	VFMADD231PD(a, a, q0)
	VFMADD231PD(b, b, q1)
	ADDQ(U8(32), x)
	DECQ(n)
	JNZ(LabelRef("moments_loop"))
	Label("moments_done")
	VADDPD(s1, s0, s0)
	VADDPD(q1, q0, q0)
	Store(reduce4(s0), ReturnIndex(0))
	Store(reduce4(q0), ReturnIndex(1))
	VZEROUPPER()
	RET()
}

// generateSumDot writes SumDotAVX2, the sums of the normalizations'
// backward pass for one row: Σy and Σy·x in float64 (a product of two
// float32s is exact there, so the fused multiply-add rounds only the sum).
func generateSumDot() {
	TEXT("SumDotAVX2", NOSPLIT, "func(y, x []float32) (sy, syx float64)")
	Pragma("noescape")
	Doc("SumDotAVX2 returns Σy[i] and Σy[i]·x[i] in float64 for i < len(y) rounded down to a multiple",
		"of 8 (the caller adds the tail; x is at least as long). AVX2+FMA.")
	y := Load(Param("y").Base(), GP64())
	x := Load(Param("x").Base(), GP64())
	n := Load(Param("y").Len(), GP64())
	s0, s1, q0, q1 := YMM(), YMM(), YMM(), YMM()
	for _, r := range []VecVirtual{s0, s1, q0, q1} {
		VXORPD(r, r, r)
	}
	SHRQ(U8(3), n)
	JZ(LabelRef("sumdot_done"))
	Label("sumdot_loop")
	a, b, u, v := YMM(), YMM(), YMM(), YMM()
	VCVTPS2PD(Mem{Base: y}, a)
	VCVTPS2PD(Mem{Base: y, Disp: 16}, b)
	VCVTPS2PD(Mem{Base: x}, u)
	VCVTPS2PD(Mem{Base: x, Disp: 16}, v)
	VADDPD(a, s0, s0)
	VADDPD(b, s1, s1)
	VFMADD231PD(u, a, q0)
	VFMADD231PD(v, b, q1)
	ADDQ(U8(32), y)
	ADDQ(U8(32), x)
	DECQ(n)
	JNZ(LabelRef("sumdot_loop"))
	Label("sumdot_done")
	VADDPD(s1, s0, s0)
	VADDPD(q1, q0, q0)
	Store(reduce4(s0), ReturnIndex(0))
	Store(reduce4(q0), ReturnIndex(1))
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
