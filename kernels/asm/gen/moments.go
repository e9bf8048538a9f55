package main

import (
	"fmt"
	"math/bits"
	"strings"

	. "github.com/mmcloughlin/avo/build"
	. "github.com/mmcloughlin/avo/operand"
	. "github.com/mmcloughlin/avo/reg"
)

// generateMoments writes MomentsAVX2 and MomentsAVX512, the one pass of the
// normalization statistics: with d = x − k in float64 (k a value near the
// mean, so that the sums do not cancel), Σd and Σd².
func generateMoments() {
	for _, a := range []isa{isaAVX2, isaAVX512} {
		name := "Moments" + a.suffix
		TEXT(name, NOSPLIT, "func(x []float32, k float64) (s, ss float64)")
		Pragma("noescape")
		Doc(name+" returns Σ(x[i] − k) and Σ(x[i] − k)² in float64 for i < len(x) rounded down to a",
			fmt.Sprintf("multiple of %d (the caller adds the tail). %s.", sumChains*a.lanes/2, a.needs))
		kv := a.vec()
		VBROADCASTSD(paramMem(Param("k")), kv)
		pairedSums(strings.ToLower(name), []string{"x"}, a, func(p []GPVirtual, off int, s, q VecVirtual) {
			d := a.vec()
			VCVTPS2PD(Mem{Base: p[0], Disp: off}, d)
			VSUBPD(kv, d, d)
			VADDPD(d, s, s)
			VFMADD231PD(d, d, q)
		})
	}
}

// generateSumDot writes SumDotAVX2 and SumDotAVX512, the sums of the
// normalizations' backward pass for one row: Σy and Σy·x in float64 (a
// product of two float32s is exact there, so the fused multiply-add rounds
// only the sum).
func generateSumDot() {
	for _, a := range []isa{isaAVX2, isaAVX512} {
		name := "SumDot" + a.suffix
		TEXT(name, NOSPLIT, "func(y, x []float32) (sy, syx float64)")
		Pragma("noescape")
		Doc(name+" returns Σy[i] and Σy[i]·x[i] in float64 for i < len(y) rounded down to a multiple",
			fmt.Sprintf("of %d (the caller adds the tail; x is at least as long). %s.", sumChains*a.lanes/2, a.needs))
		pairedSums(strings.ToLower(name), []string{"y", "x"}, a, func(p []GPVirtual, off int, s, q VecVirtual) {
			y, x := a.vec(), a.vec()
			VCVTPS2PD(Mem{Base: p[0], Disp: off}, y)
			VCVTPS2PD(Mem{Base: p[1], Disp: off}, x)
			VADDPD(y, s, s)
			VFMADD231PD(x, y, q)
		})
	}
}

// sumChains is how many accumulators each float64 sum of pairedSums keeps:
// an add's latency is 3–4 cycles, so one chain per sum would wait on itself.
const sumChains = 4

// pairedSums emits a kernel that returns two float64 sums over the float32
// slices params, len(first) rounded down to a whole step: each step widens
// sumChains groups of lanes/2 values to float64 (a YMM of four, or a ZMM of
// eight) and body adds group j, at byte offset off, into its own
// accumulators s and q. The chains are then added pairwise and each sum
// folded to one value.
func pairedSums(name string, params []string, a isa, body func(p []GPVirtual, off int, s, q VecVirtual)) {
	var s, q [sumChains]VecVirtual
	for j := range sumChains {
		s[j], q[j] = a.vec(), a.vec()
		zeroVec(s[j], a.zmm)
		zeroVec(q[j], a.zmm)
	}
	group := a.lanes / 2 // float32 values per widened vector
	ptrs := make([]GPVirtual, len(params))
	for i, p := range params {
		ptrs[i] = Load(Param(p).Base(), GP64()).(GPVirtual)
	}
	n := Load(Param(params[0]).Len(), GP64())
	SHRQ(U8(bits.TrailingZeros(uint(sumChains*group))), n)
	JZ(LabelRef(name + "_done"))
	Label(name + "_loop")
	for j := range sumChains {
		body(ptrs, 4*group*j, s[j], q[j])
	}
	for _, p := range ptrs {
		ADDQ(U32(4*group*sumChains), p)
	}
	DECQ(n)
	JNZ(LabelRef(name + "_loop"))
	Label(name + "_done")
	for _, acc := range [][sumChains]VecVirtual{s, q} {
		VADDPD(acc[1], acc[0], acc[0])
		VADDPD(acc[3], acc[2], acc[2])
		VADDPD(acc[2], acc[0], acc[0])
	}
	fold := func(v VecVirtual) VecVirtual {
		if a.zmm {
			hi, y := YMM(), YMM()
			VEXTRACTF64X4(U8(1), v, hi)
			VADDPD(hi, v.AsY(), y)
			v = y
		}
		return reduce4(v)
	}
	VMOVSD(fold(s[0]), paramMem(ReturnIndex(0)))
	VMOVSD(fold(q[0]), paramMem(ReturnIndex(1)))
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
