package main

import (
	. "github.com/mmcloughlin/avo/build"
	. "github.com/mmcloughlin/avo/operand"
	"github.com/mmcloughlin/avo/reg"
)

// generatePackA6 writes PackA6AVX2: the six-row case of kernels.packA, which
// interleaves six rows of A (scaled by α) into a panel of kc steps of six
// values. Scalar code reads the six rows one value at a time; when the row
// stride is a power of two (a 1024-wide matrix) those six streams and the
// panel's stores share cache sets and low address bits, and it runs 2.4×
// slower. Here eight steps go at once: one 8-wide load per row, an 8×8
// transpose (rows 6 and 7 are don't-cares), and eight overlapping 8-wide
// stores 24 bytes apart, each overwriting the previous one's two spare lanes.
func generatePackA6() {
	TEXT("PackA6AVX2", NOSPLIT, "func(dst, a *float32, lda, blocks int, alpha float32)")
	Pragma("noescape")
	Doc("PackA6AVX2 sets dst[6p + r] = alpha·a[r·lda + p] for r < 6 and p < 8·blocks: dst holds",
		"48·blocks values, a 5·lda + 8·blocks. AVX2.")
	dst := Load(Param("dst"), GP64())
	a0 := Load(Param("a"), GP64())
	lda := Load(Param("lda"), GP64())
	n := Load(Param("blocks"), GP64())
	alpha := YMM()
	VBROADCASTSS(paramMem(Param("alpha")), alpha)
	SHLQ(U8(2), lda) // bytes
	a3 := GP64()     // row 3
	LEAQ(Mem{Base: a0, Index: lda, Scale: 2}, a3)
	ADDQ(lda, a3)
	TESTQ(n, n)
	JZ(LabelRef("packa6_done"))

	Label("packa6_loop")
	rows := make([]reg.VecVirtual, 6)
	for i := range rows {
		rows[i] = YMM()
		base, idx := a0, i
		if i >= 3 {
			base, idx = a3, i-3
		}
		m := Mem{Base: base}
		if idx > 0 {
			m = Mem{Base: base, Index: lda, Scale: uint8(idx)}
		}
		VMULPS(m, alpha, rows[i])
	}
	transpose8(rows, func(p int, out reg.VecVirtual) {
		if p < 7 {
			VMOVUPS(out, Mem{Base: dst, Disp: 24 * p})
			return
		}
		Comment("The last step writes exactly its six values.")
		VMOVUPS(out.AsX(), Mem{Base: dst, Disp: 24 * p})
		hi := XMM()
		VEXTRACTF128(U8(1), out, hi)
		VMOVQ(hi, Mem{Base: dst, Disp: 24*p + 16})
	})
	ADDQ(U8(192), dst)
	ADDQ(U8(32), a0)
	ADDQ(U8(32), a3)
	DECQ(n)
	JNZ(LabelRef("packa6_loop"))

	Label("packa6_done")
	VZEROUPPER()
	RET()
}

// generatePackBT8 writes PackBT8AVX2: eight columns of a B panel from eight
// rows of the stored matrix (a transposed B), eight depths at a time by an
// 8×8 transpose: the scalar loop makes eight loads and stores per depth.
func generatePackBT8() {
	TEXT("PackBT8AVX2", NOSPLIT, "func(dst *float32, nr int, src *float32, ld, blocks int)")
	Pragma("noescape")
	Doc("PackBT8AVX2 sets dst[p·nr + j] = src[j·ld + p] for j < 8 and p < 8·blocks (nr and ld",
		"in elements). AVX2.")
	dst := Load(Param("dst"), GP64())
	nr := Load(Param("nr"), GP64())
	src := Load(Param("src"), GP64())
	ld := Load(Param("ld"), GP64())
	n := Load(Param("blocks"), GP64())
	SHLQ(U8(2), nr)
	SHLQ(U8(2), ld)
	ld3 := GP64()
	LEAQ(Mem{Base: ld, Index: ld, Scale: 2}, ld3)
	src4 := GP64() // row 4
	LEAQ(Mem{Base: src, Index: ld, Scale: 4}, src4)
	nr3 := GP64()
	LEAQ(Mem{Base: nr, Index: nr, Scale: 2}, nr3)
	dst4 := GP64() // depth 4 of the block
	LEAQ(Mem{Base: dst, Index: nr, Scale: 4}, dst4)
	step := GP64() // 8 depths: 8·nr bytes
	LEAQ(Mem{Base: nr, Index: nr, Scale: 1}, step)
	SHLQ(U8(2), step)
	TESTQ(n, n)
	JZ(LabelRef("packbt8_done"))

	Label("packbt8_loop")
	rows := make([]reg.VecVirtual, 8)
	for i := range rows {
		rows[i] = YMM()
		base := src
		if i >= 4 {
			base = src4
		}
		VMOVUPS(nth(base, i%4, ld, ld3), rows[i])
	}
	transpose8(rows, func(p int, out reg.VecVirtual) {
		base := dst
		if p >= 4 {
			base = dst4
		}
		VMOVUPS(out, nth(base, p%4, nr, nr3))
	})
	ADDQ(U32(32), src)
	ADDQ(U32(32), src4)
	ADDQ(step, dst)
	ADDQ(step, dst4)
	DECQ(n)
	JNZ(LabelRef("packbt8_loop"))
	Label("packbt8_done")
	VZEROUPPER()
	RET()
}

// transpose8 transposes eight rows of eight floats and hands column p (p =
// 0…7, in order) to emit. With six rows, rows 6 and 7 are don't-cares and
// their lanes of each column are whatever is cheapest.
func transpose8(rows []reg.VecVirtual, emit func(p int, col reg.VecVirtual)) {
	Comment("Transpose: pairs of rows interleaved, then quads, then 128-bit halves.")
	t := make([]reg.VecVirtual, len(rows))
	for i := range len(rows) / 2 {
		t[2*i], t[2*i+1] = YMM(), YMM()
		VUNPCKLPS(rows[2*i+1], rows[2*i], t[2*i])
		VUNPCKHPS(rows[2*i+1], rows[2*i], t[2*i+1])
	}
	u := make([]reg.VecVirtual, 8)
	for h := range 2 { // rows 0…3, rows 4…7
		a, b := t[4*h:4*h+2], t[4*h:4*h+2] // without rows 6 and 7, quads of rows 4, 5 with themselves
		if len(t) >= 4*h+4 {
			b = t[4*h+2 : 4*h+4]
		}
		for i := range 2 {
			u[4*h+2*i], u[4*h+2*i+1] = YMM(), YMM()
			VSHUFPS(U8(0x44), b[i], a[i], u[4*h+2*i])
			VSHUFPS(U8(0xEE), b[i], a[i], u[4*h+2*i+1])
		}
	}
	out := YMM()
	for p := range 8 {
		sel := U8(0x20) // low halves: columns 0…3
		if p >= 4 {
			sel = U8(0x31) // high halves: columns 4…7
		}
		VPERM2F128(sel, u[4+p%4], u[p%4], out)
		emit(p, out)
	}
}

// generatePackA12 writes PackA12AVX2: a whole 12-row panel of kernels.packA
// for the AVX-512 micro-kernel. Eight steps at a time: rows 0–7 by an 8×8
// transpose into the first eight values of each step, rows 8–11 by a 4×8
// one into the last four, so every value is loaded and stored once (two
// overlapping 8-row transposes did rows 4–7 twice).
func generatePackA12() {
	TEXT("PackA12AVX2", NOSPLIT, "func(dst, a *float32, lda, blocks int)")
	Pragma("noescape")
	Doc("PackA12AVX2 sets dst[12p + r] = a[r·lda + p] for r < 12 and p < 8·blocks: dst holds",
		"96·blocks values, a 11·lda + 8·blocks. AVX2.")
	dst := Load(Param("dst"), GP64())
	a0 := Load(Param("a"), GP64())
	ld := Load(Param("lda"), GP64())
	n := Load(Param("blocks"), GP64())
	SHLQ(U8(2), ld) // bytes
	ld3 := GP64()
	LEAQ(Mem{Base: ld, Index: ld, Scale: 2}, ld3)
	a4 := GP64() // row 4
	LEAQ(Mem{Base: a0, Index: ld, Scale: 4}, a4)
	a8 := GP64() // row 8
	LEAQ(Mem{Base: a4, Index: ld, Scale: 4}, a8)
	TESTQ(n, n)
	JZ(LabelRef("packa12_done"))

	Label("packa12_loop")
	Comment("Rows 0–7: the first eight values of each of the eight steps.")
	rows := make([]reg.VecVirtual, 8)
	for i := range rows {
		rows[i] = YMM()
		base := a0
		if i >= 4 {
			base = a4
		}
		VMOVUPS(nth(base, i%4, ld, ld3), rows[i])
	}
	transpose8(rows, func(p int, out reg.VecVirtual) {
		VMOVUPS(out, Mem{Base: dst, Disp: 48 * p})
	})
	Comment("Rows 8–11: interleave pairs, then quads; step p's four values are the low",
		"(p < 4) or high (p ≥ 4) half of quad p mod 4.")
	r := make([]reg.VecVirtual, 4)
	for i := range r {
		r[i] = YMM()
		VMOVUPS(nth(a8, i, ld, ld3), r[i])
	}
	t := make([]reg.VecVirtual, 4)
	for i := range 2 {
		t[2*i], t[2*i+1] = YMM(), YMM()
		VUNPCKLPS(r[2*i+1], r[2*i], t[2*i])
		VUNPCKHPS(r[2*i+1], r[2*i], t[2*i+1])
	}
	for i := range 2 {
		for j, sel := range []uint8{0x44, 0xEE} {
			q := YMM()
			VSHUFPS(U8(sel), t[2+i], t[i], q) // rows 8, 9 from t[i], rows 10, 11 from t[2+i]
			p := 2*i + j                      // the step of the low half
			VMOVUPS(q.AsX(), Mem{Base: dst, Disp: 48*p + 32})
			VEXTRACTF128(U8(1), q, Mem{Base: dst, Disp: 48*(p+4) + 32})
		}
	}
	ADDQ(U32(384), dst)
	ADDQ(U8(32), a0)
	ADDQ(U8(32), a4)
	ADDQ(U8(32), a8)
	DECQ(n)
	JNZ(LabelRef("packa12_loop"))

	Label("packa12_done")
	VZEROUPPER()
	RET()
}

// generateCopyRows writes CopyRowsAVX512: the padded rows of the Winograd
// input transform are the image's rows copied a few columns in, one copy
// per row and channel (960 calls of 112 bytes for a 32-channel 28×28
// layer); one call per channel instead, 16 values at a time with the tail
// under a mask.
func generateCopyRows() {
	TEXT("CopyRowsAVX512", NOSPLIT, "func(dst *float32, dstStride int, src *float32, srcStride, rows, cols int)")
	Pragma("noescape")
	Doc("CopyRowsAVX512 sets dst[r·dstStride + j] = src[r·srcStride + j] for r < rows and j < cols (strides",
		"in elements; the rows must not overlap). AVX-512F.")
	dst := Load(Param("dst"), GP64())
	ds := Load(Param("dstStride"), GP64())
	src := Load(Param("src"), GP64())
	ss := Load(Param("srcStride"), GP64())
	rows := Load(Param("rows"), GP64())
	cols := Load(Param("cols"), GP64())
	SHLQ(U8(2), ds)
	SHLQ(U8(2), ss)
	bits := GP64()
	MOVQ(cols, bits)
	tail := tailMask16(bits)
	SHRQ(U8(4), cols) // whole vectors per row
	TESTQ(rows, rows)
	JZ(LabelRef("copyrows_done"))
	Label("copyrows_row")
	off, n := GP64(), GP64()
	XORQ(off, off)
	MOVQ(cols, n)
	TESTQ(n, n)
	JZ(LabelRef("copyrows_tail"))
	Label("copyrows_vec")
	v := ZMM()
	VMOVUPS(Mem{Base: src, Index: off, Scale: 1}, v)
	VMOVUPS(v, Mem{Base: dst, Index: off, Scale: 1})
	ADDQ(U8(64), off)
	DECQ(n)
	JNZ(LabelRef("copyrows_vec"))
	Label("copyrows_tail")
	w := ZMM()
	VMOVUPS_Z(Mem{Base: src, Index: off, Scale: 1}, tail, w)
	VMOVUPS(w, tail, Mem{Base: dst, Index: off, Scale: 1})
	ADDQ(ds, dst)
	ADDQ(ss, src)
	DECQ(rows)
	JNZ(LabelRef("copyrows_row"))
	Label("copyrows_done")
	VZEROUPPER()
	RET()
}

// generatePackAT writes PackATAVX512: a panel of A packed from A's
// transpose, where the panel's rows at one depth are contiguous (a
// convolution's or a Linear's weight gradient, attention's keys). One
// masked load, one multiply by α and one masked store per depth; rows past
// the edge load as zeros.
func generatePackAT() {
	TEXT("PackATAVX512", NOSPLIT, "func(dst *float32, mr int, src *float32, lda, kc, rows int, alpha float32)")
	Pragma("noescape")
	Doc("PackATAVX512 sets dst[mr·p + r] = alpha·src[p·lda + r] for p < kc and r < rows, and 0 for",
		"rows ≤ r < mr (rows ≤ mr ≤ 16; strides in elements). AVX-512F.")
	dst := Load(Param("dst"), GP64())
	mr := Load(Param("mr"), GP64())
	src := Load(Param("src"), GP64())
	lda := Load(Param("lda"), GP64())
	kc := Load(Param("kc"), GP64())
	rows := Load(Param("rows"), GP64())
	mask := func(n reg.Register) Op { // the low n of 16 lanes
		bits := GP64()
		MOVQ(U32(1), bits)
		SHLXQ(n, bits, bits)
		DECQ(bits)
		k := K()
		KMOVW(bits.As32(), k)
		return k
	}
	load, store := mask(rows), mask(mr)
	SHLQ(U8(2), mr)
	SHLQ(U8(2), lda)
	av := ZMM()
	VBROADCASTSS(paramMem(Param("alpha")), av)
	TESTQ(kc, kc)
	JZ(LabelRef("packat_done"))
	Label("packat_loop")
	v := ZMM()
	VMOVUPS_Z(Mem{Base: src}, load, v)
	VMULPS(av, v, v)
	VMOVUPS(v, store, Mem{Base: dst})
	ADDQ(lda, src)
	ADDQ(mr, dst)
	DECQ(kc)
	JNZ(LabelRef("packat_loop"))
	Label("packat_done")
	VZEROUPPER()
	RET()
}
