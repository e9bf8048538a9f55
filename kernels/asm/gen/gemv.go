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

// generatePanelDot writes PanelDot4AVX512: four packed 12-row panels of A
// (kc steps of 12 values each) times one column x of B, each row's sum one
// chain of multiply-adds in the order of p from zero, as the GEMM kernels
// sum it, so that a column computed here is bit for bit the one a tile
// computes. The four chains are independent, which hides the latency of
// each; a caller with fewer panels passes one of them again.
func generatePanelDot() {
	TEXT("PanelDot4AVX512", NOSPLIT, "func(kc int, a0, a1, a2, a3, x *float32, xs int, y *float32)")
	Pragma("noescape")
	Doc("PanelDot4AVX512 sets y[16q + r] = Σ_{p<kc} aq[12p + r]·x[p·xs] for the four panels q < 4 and",
		"r < 12 (xs in elements; y[16q + 12 … 16q + 15] are set to 0), each sum one chain of",
		"fused multiply-adds from zero in the order of p. AVX-512F.")
	kc := Load(Param("kc"), GP64())
	a := []Register{Load(Param("a0"), GP64()), Load(Param("a1"), GP64()), Load(Param("a2"), GP64()), Load(Param("a3"), GP64())}
	x := Load(Param("x"), GP64())
	xs := Load(Param("xs"), GP64())
	y := Load(Param("y"), GP64())
	SHLQ(U8(2), xs)
	bits := GP64()
	MOVQ(U32(0xFFF), bits)
	k := K()
	KMOVW(bits.As32(), k)
	acc := make([]VecVirtual, 4)
	for q := range acc {
		acc[q] = ZMM()
		VPXORD(acc[q], acc[q], acc[q])
	}
	TESTQ(kc, kc)
	JZ(LabelRef("paneldot_store"))
	Label("paneldot_loop")
	t := ZMM()
	VBROADCASTSS(Mem{Base: x}, t)
	for q := range acc {
		v := ZMM()
		VMOVUPS_Z(Mem{Base: a[q]}, k, v)
		VFMADD231PS(v, t, acc[q])
		ADDQ(U8(48), a[q])
	}
	ADDQ(xs, x)
	DECQ(kc)
	JNZ(LabelRef("paneldot_loop"))
	Label("paneldot_store")
	for q := range acc {
		VMOVUPS(acc[q], Mem{Base: y, Disp: 64 * q})
	}
	VZEROUPPER()
	RET()
}

// generatePanelDotAVX2 writes PanelDot4AVX2: PanelDot4AVX512 for the
// AVX2 kernel's 6-row panels: masked loads of six values a step.
func generatePanelDotAVX2() {
	data := GLOBL("paneldot6mask", RODATA|NOPTR)
	for i := range 8 {
		v := uint32(0)
		if i < 6 {
			v = 0xFFFFFFFF
		}
		DATA(4*i, U32(v))
	}
	TEXT("PanelDot4AVX2", NOSPLIT, "func(kc int, a0, a1, a2, a3, x *float32, xs int, y *float32)")
	Pragma("noescape")
	Doc("PanelDot4AVX2 sets y[8q + r] = Σ_{p<kc} aq[6p + r]·x[p·xs] for the four panels q < 4 and",
		"r < 6 (xs in elements; y[8q + 6], y[8q + 7] are set to 0), each sum one chain of fused",
		"multiply-adds from zero in the order of p. AVX2+FMA.")
	kc := Load(Param("kc"), GP64())
	a := []Register{Load(Param("a0"), GP64()), Load(Param("a1"), GP64()), Load(Param("a2"), GP64()), Load(Param("a3"), GP64())}
	x := Load(Param("x"), GP64())
	xs := Load(Param("xs"), GP64())
	y := Load(Param("y"), GP64())
	SHLQ(U8(2), xs)
	mask := YMM()
	VMOVUPS(data, mask)
	acc := make([]VecVirtual, 4)
	for q := range acc {
		acc[q] = YMM()
		VXORPS(acc[q], acc[q], acc[q])
	}
	TESTQ(kc, kc)
	JZ(LabelRef("paneldot6_store"))
	Label("paneldot6_loop")
	t := YMM()
	VBROADCASTSS(Mem{Base: x}, t)
	for q := range acc {
		v := YMM()
		VMASKMOVPS(Mem{Base: a[q]}, mask, v)
		VFMADD231PS(v, t, acc[q])
		ADDQ(U8(24), a[q])
	}
	ADDQ(xs, x)
	DECQ(kc)
	JNZ(LabelRef("paneldot6_loop"))
	Label("paneldot6_store")
	for q := range acc {
		VMOVUPS(acc[q], Mem{Base: y, Disp: 32 * q})
	}
	VZEROUPPER()
	RET()
}
