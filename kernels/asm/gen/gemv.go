package main

import (
	"fmt"
	"strings"

	. "github.com/mmcloughlin/avo/build"
	. "github.com/mmcloughlin/avo/operand"
	. "github.com/mmcloughlin/avo/reg"
)

// generateGemv emits the kernels of a vector times a weight matrix stored
// row by row (a Linear layer at batch 1): four dot products at a time, one
// accumulator each, folded together at the end.
func generateGemv() {
	for _, a := range []isa{isaAVX2, isaAVX512} {
		name := "DotRows4" + a.suffix
		TEXT(name, NOSPLIT, "func(groups int, w *float32, ldw int, x *float32, k int, y *float32)")
		Pragma("noescape")
		Doc(fmt.Sprintf("%s sets y[i] = Σ_p w[i·ldw + p]·x[p], p < k, for i < 4·groups, four rows at a time", name),
			fmt.Sprintf("(k a multiple of %d, ldw in elements; the caller adds the rest of each row). %s.", a.lanes, a.needs))
		label := strings.ToLower(name)
		groups := Load(Param("groups"), GP64())
		w := Load(Param("w"), GP64())
		ldw := Load(Param("ldw"), GP64())
		x := Load(Param("x"), GP64())
		k := Load(Param("k"), GP64())
		y := Load(Param("y"), GP64())
		SHLQ(U8(2), ldw) // bytes
		ld3 := GP64()
		LEAQ(Mem{Base: ldw, Index: ldw, Scale: 2}, ld3)
		SHRQ(U8(map[int]uint8{8: 3, 16: 4}[a.lanes]), k) // vectors per row
		TESTQ(groups, groups)
		JZ(LabelRef(label + "_done"))
		TESTQ(k, k)
		JZ(LabelRef(label + "_zero"))

		Label(label + "_group")
		acc := make([]VecVirtual, 4)
		for i := range acc {
			acc[i] = a.vec()
			zeroVec(acc[i], a.zmm)
		}
		xp, wp, n := GP64(), GP64(), GP64()
		MOVQ(x, xp)
		MOVQ(w, wp)
		MOVQ(k, n)
		Label(label + "_loop")
		xv := a.vec()
		VMOVUPS(Mem{Base: xp}, xv)
		for i := range acc {
			var m Mem
			switch i {
			case 0:
				m = Mem{Base: wp}
			case 3:
				m = Mem{Base: wp, Index: ld3, Scale: 1}
			default:
				m = Mem{Base: wp, Index: ldw, Scale: uint8(i)}
			}
			VFMADD231PS(m, xv, acc[i])
		}
		ADDQ(U32(4*a.lanes), xp)
		ADDQ(U32(4*a.lanes), wp)
		DECQ(n)
		JNZ(LabelRef(label + "_loop"))

		Comment("Fold the four accumulators to one value each: y[0..3].")
		ys := make([]VecVirtual, 4)
		for i, v := range acc {
			ys[i] = v
			if a.zmm {
				hi, s := YMM(), YMM()
				VEXTRACTF64X4(U8(1), v, hi)
				VADDPS(hi, v.AsY(), s)
				ys[i] = s
			}
		}
		t0, t1, t := YMM(), YMM(), YMM()
		VHADDPS(ys[1], ys[0], t0) // per 128-bit lane: y0's pair sums, then y1's
		VHADDPS(ys[3], ys[2], t1)
		VHADDPS(t1, t0, t) // per lane: one partial sum of each row
		hi, r := XMM(), XMM()
		VEXTRACTF128(U8(1), t, hi)
		VADDPS(hi, t.AsX(), r)
		VMOVUPS(r, Mem{Base: y})
		LEAQ(Mem{Base: w, Index: ldw, Scale: 4}, w)
		ADDQ(U32(16), y)
		DECQ(groups)
		JNZ(LabelRef(label + "_group"))
		JMP(LabelRef(label + "_done"))

		Label(label + "_zero")
		Comment("k < one vector: every sum is empty.")
		z := XMM()
		VXORPS(z, z, z)
		Label(label + "_zeroloop")
		VMOVUPS(z, Mem{Base: y})
		ADDQ(U32(16), y)
		DECQ(groups)
		JNZ(LabelRef(label + "_zeroloop"))

		Label(label + "_done")
		VZEROUPPER()
		RET()
	}
}

// generatePanelDot writes PanelDot4AVX2 and PanelDot4AVX512: four packed
// panels of A (kc steps of mr = 6 or 12 values, the rows of the level's
// GEMM tile) times one column x of B, each row's sum one chain of
// multiply-adds in the order of p from zero, as the GEMM kernels sum it, so
// that a column computed here is bit for bit the one a tile computes. The
// four chains are independent, which hides the latency of each; a caller
// with fewer panels passes one of them again. A step's mr values are one
// masked load (VMASKMOVPS at AVX2, a zeroing mask at AVX-512).
func generatePanelDot() {
	mask6 := GLOBL("paneldot6mask", RODATA|NOPTR)
	for i := range 8 {
		v := uint32(0)
		if i < 6 {
			v = 0xFFFFFFFF
		}
		DATA(4*i, U32(v))
	}
	for _, a := range []isa{isaAVX2, isaAVX512} {
		mr := 6
		if a.zmm {
			mr = 12
		}
		name := "PanelDot4" + a.suffix
		TEXT(name, NOSPLIT, "func(kc int, a0, a1, a2, a3, x *float32, xs int, y *float32)")
		Pragma("noescape")
		Doc(fmt.Sprintf("%s sets y[%dq + r] = Σ_{p<kc} aq[%dp + r]·x[p·xs] for the four panels q < 4 and", name, a.lanes, mr),
			fmt.Sprintf("r < %d (xs in elements; y[%dq + %d …] are set to 0), each sum one chain of fused", mr, a.lanes, mr),
			fmt.Sprintf("multiply-adds from zero in the order of p. %s.", a.needs))
		kc := Load(Param("kc"), GP64())
		ap := []Register{Load(Param("a0"), GP64()), Load(Param("a1"), GP64()), Load(Param("a2"), GP64()), Load(Param("a3"), GP64())}
		x := Load(Param("x"), GP64())
		xs := Load(Param("xs"), GP64())
		y := Load(Param("y"), GP64())
		SHLQ(U8(2), xs)
		var load func(m Mem, v VecVirtual)
		if a.zmm {
			bits := GP64()
			MOVQ(U32(1<<mr-1), bits)
			k := K()
			KMOVW(bits.As32(), k)
			load = func(m Mem, v VecVirtual) { VMOVUPS_Z(m, k, v) }
		} else {
			mask := YMM()
			VMOVUPS(mask6, mask)
			load = func(m Mem, v VecVirtual) { VMASKMOVPS(m, mask, v) }
		}
		acc := make([]VecVirtual, 4)
		for q := range acc {
			acc[q] = a.vec()
			if a.zmm {
				VPXORD(acc[q], acc[q], acc[q])
			} else {
				VXORPS(acc[q], acc[q], acc[q])
			}
		}
		done := "paneldot_store_" + a.suffix
		TESTQ(kc, kc)
		JZ(LabelRef(done))
		Label("paneldot_loop_" + a.suffix)
		t := a.vec()
		VBROADCASTSS(Mem{Base: x}, t)
		for q := range acc {
			v := a.vec()
			load(Mem{Base: ap[q]}, v)
			VFMADD231PS(v, t, acc[q])
			ADDQ(U8(4*mr), ap[q])
		}
		ADDQ(xs, x)
		DECQ(kc)
		JNZ(LabelRef("paneldot_loop_" + a.suffix))
		Label(done)
		for q := range acc {
			VMOVUPS(acc[q], Mem{Base: y, Disp: 4 * a.lanes * q})
		}
		VZEROUPPER()
		RET()
	}
}
