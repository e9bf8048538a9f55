package main

import (
	"fmt"
	"math"

	. "github.com/mmcloughlin/avo/build"
	. "github.com/mmcloughlin/avo/operand"
	"github.com/mmcloughlin/avo/reg"
)

// The two data transforms of Winograd F(4×4, 3×3) (kernels/winograd4.go has
// the algorithm and the plain-Go versions), eight tiles of one tile row per
// iteration. Tile t of a row covers input columns 4t…4t+5, so a 128-bit
// lane of a vector loaded at column 8k holds the first four columns of
// tile 2k or 2k+1: a 4×4 transpose within lanes (VUNPCK*) of four such
// vectors gives column j of eight tiles, in the order 0 2 4 6 1 3 5 7, and
// the same transpose of vectors loaded four columns further gives columns
// 4 and 5. The arithmetic is elementwise; VPERMPS puts the tiles back in
// order before they are stored, and the output transform permutes before
// its transpose, which then lands each tile's four values in place.
//
// The constants 2, 4, 5 and 8 are read from memory as whole vectors (FMA
// takes its third operand from memory), so that the transforms have the
// sixteen YMM registers to themselves.

var wino4Data Mem

const (
	wino4Two, wino4Four, wino4Five, wino4Eight = 0, 32, 64, 96
	wino4Perm, wino4Unperm                     = 128, 160 // VPERMPS indices
	wino4Mask                                  = 192      // eight -1s, eight 0s: the store masks of a partial block
	// Gᵀ's factors, for the weight gradient's end (WinoWeightGrad4AVX2).
	wino4Quarter, wino4Sixth, wino4Twelfth, wino4TwentyFourth = 256, 288, 320, 352
)

func declareWino4Consts() {
	wino4Data = GLOBL("wino4consts", RODATA|NOPTR)
	for i, v := range []float32{2, 4, 5, 8} {
		for k := range 8 {
			DATA(32*i+4*k, U32(math.Float32bits(v)))
		}
	}
	for k, v := range []uint32{0, 2, 4, 6, 1, 3, 5, 7} { // tile order → transposed order
		DATA(wino4Perm+4*k, U32(v))
	}
	for k, v := range []uint32{0, 4, 1, 5, 2, 6, 3, 7} { // transposed order → tile order
		DATA(wino4Unperm+4*k, U32(v))
	}
	for k := range 16 { // in address order, as the assembler wants them
		v := uint32(0xffffffff)
		if k >= 8 {
			v = 0
		}
		DATA(wino4Mask+4*k, U32(v))
	}
	for i, v := range []float32{0.25, 1.0 / 6, 1.0 / 12, 1.0 / 24} {
		for k := range 8 {
			DATA(wino4Quarter+32*i+4*k, U32(math.Float32bits(v)))
		}
	}
}

func wino4Const(off int) Mem { return wino4Data.Offset(off) }

// sixRows addresses rows 0…5 of a strided set from base with s, s3 = 3s and
// s5 = 5s (bytes) as index registers.
func sixRows(base reg.Register, i, disp int, s, s3, s5 reg.Register) Mem {
	m := Mem{Base: base, Disp: disp}
	switch i {
	case 1:
		m.Index, m.Scale = s, 1
	case 2:
		m.Index, m.Scale = s, 2
	case 3:
		m.Index, m.Scale = s3, 1
	case 4:
		m.Index, m.Scale = s, 4
	case 5:
		m.Index, m.Scale = s5, 1
	}
	return m
}

// timesThreeFive sets s3 = 3s and s5 = 5s.
func timesThreeFive(s reg.Register) (s3, s5 reg.GPVirtual) {
	s3, s5 = GP64(), GP64()
	LEAQ(Mem{Base: s, Index: s, Scale: 2}, s3)
	LEAQ(Mem{Base: s, Index: s, Scale: 4}, s5)
	return s3, s5
}

// bRow returns row η of Bᵀ·(d0 … d5) (winograd4.go's bVec6), the d_a
// registers or memory.
func bRow(eta int, d func(a int) Op) reg.VecVirtual {
	x := YMM()
	switch eta {
	case 0: // 4d0 - 5d2 + d4
		VMOVUPS(d(4), x)
		VFMADD231PS(wino4Const(wino4Four), load(d(0)), x)
		VFNMADD231PS(wino4Const(wino4Five), load(d(2)), x)
	case 5: // 4d1 - 5d3 + d5
		VMOVUPS(d(5), x)
		VFMADD231PS(wino4Const(wino4Four), load(d(1)), x)
		VFNMADD231PS(wino4Const(wino4Five), load(d(3)), x)
	default:
		a := YMM()
		switch eta {
		case 1: // d3 + d4 - 4(d1 + d2)
			VMOVUPS(d(1), a)
			VADDPS(d(2), a, a)
			VMOVUPS(d(3), x)
			VADDPS(d(4), x, x)
			VFNMADD231PS(wino4Const(wino4Four), a, x)
		case 2: // d4 - d3 + 4(d1 - d2)
			VMOVUPS(d(1), a)
			VSUBPS(d(2), a, a)
			VMOVUPS(d(4), x)
			VSUBPS(d(3), x, x)
			VFMADD231PS(wino4Const(wino4Four), a, x)
		case 3, 4: // d4 - d2 ± 2(d3 - d1)
			VMOVUPS(d(3), a)
			VSUBPS(d(1), a, a)
			VMOVUPS(d(4), x)
			VSUBPS(d(2), x, x)
			if eta == 3 {
				VFMADD231PS(wino4Const(wino4Two), a, x)
			} else {
				VFNMADD231PS(wino4Const(wino4Two), a, x)
			}
		}
	}
	return x
}

// load returns op in a register: op itself, or a fresh one loaded from memory.
func load(op Op) Op {
	if _, ok := op.(Mem); !ok {
		return op
	}
	x := YMM()
	VMOVUPS(op, x)
	return x
}

// aRow returns row i of Aᵀ·(m0 … m5) (winograd4.go's aVec4).
func aRow(i int, m func(a int) Op) reg.VecVirtual {
	x, e := YMM(), YMM()
	VMOVUPS(m(1), x)
	switch i {
	case 0: // m0 + m1 + m2 + m3 + m4
		VADDPS(m(0), x, x)
		VADDPS(m(2), x, x)
		VADDPS(m(3), x, x)
		VADDPS(m(4), x, x)
	case 1: // (m1 - m2) + 2(m3 - m4)
		VSUBPS(m(2), x, x)
		VMOVUPS(m(3), e)
		VSUBPS(m(4), e, e)
		VFMADD231PS(wino4Const(wino4Two), e, x)
	case 2: // (m1 + m2) + 4(m3 + m4)
		VADDPS(m(2), x, x)
		VMOVUPS(m(3), e)
		VADDPS(m(4), e, e)
		VFMADD231PS(wino4Const(wino4Four), e, x)
	case 3: // (m1 - m2) + 8(m3 - m4) + m5
		VSUBPS(m(2), x, x)
		VADDPS(m(5), x, x)
		VMOVUPS(m(3), e)
		VSUBPS(m(4), e, e)
		VFMADD231PS(wino4Const(wino4Eight), e, x)
	}
	return x
}

// transposeLanes transposes the 4×4 blocks of x[0…3] within each 128-bit
// lane; with only2, just the first two rows of the result.
func transposeLanes(x [4]reg.VecVirtual, only2 bool) [4]reg.VecVirtual {
	var t, q [4]reg.VecVirtual
	t[0], t[2] = YMM(), YMM()
	VUNPCKLPS(x[1], x[0], t[0]) // x0₀ x1₀ x0₁ x1₁
	VUNPCKLPS(x[3], x[2], t[2]) // x2₀ x3₀ x2₁ x3₁
	q[0], q[1] = YMM(), YMM()
	VUNPCKLPD(t[2], t[0], q[0])
	VUNPCKHPD(t[2], t[0], q[1])
	if only2 {
		return q
	}
	t[1], t[3] = YMM(), YMM()
	VUNPCKHPS(x[1], x[0], t[1]) // x0₂ x1₂ x0₃ x1₃
	VUNPCKHPS(x[3], x[2], t[3])
	q[2], q[3] = YMM(), YMM()
	VUNPCKLPD(t[3], t[1], q[2])
	VUNPCKHPD(t[3], t[1], q[3])
	return q
}

func generateWinoInput4() {
	TEXT("WinoInput4AVX2", NOSPLIT, "func(v *float32, vs int, in *float32, ins int, blocks int)")
	Pragma("noescape")
	Doc("WinoInput4AVX2 transforms 8·blocks input tiles of one tile row for Winograd F(4×4, 3×3):",
		"with the six padded input rows d_a = in + a·ins (a < 6, each 32·blocks + 4 values) it sets,",
		"for tile t and ξ = 6η + ν, v[ξ·vs + t] = (Bᵀ·d·B)[η][ν] over d_a[4t … 4t+5]. Strides in",
		"elements. AVX2.")
	v := Load(Param("v"), GP64())
	vs := Load(Param("vs"), GP64())
	in := Load(Param("in"), GP64())
	ins := Load(Param("ins"), GP64())
	n := Load(Param("blocks"), GP64())
	SHLQ(U8(2), ins)
	SHLQ(U8(2), vs)
	ins3, ins5 := timesThreeFive(ins)
	vs3, vs5 := timesThreeFive(vs)
	unperm := YMM()
	VMOVDQU(wino4Const(wino4Unperm), unperm)
	TESTQ(n, n)
	JZ(LabelRef("wino4in_done"))

	Label("wino4in_loop")
	vrow := GP64()
	MOVQ(v, vrow)
	for eta := range 6 {
		Comment("Row η of Bᵀ·d at columns 8k (k < 4), transposed: columns 4t…4t+3 of the tiles;",
			"then at 8k + 4: columns 4t+4, 4t+5.")
		column := func(disp int) reg.VecVirtual {
			return bRow(eta, func(a int) Op { return sixRows(in, a, disp, ins, ins3, ins5) })
		}
		var x, y [4]reg.VecVirtual
		for k := range x {
			x[k] = column(32 * k)
		}
		q := transposeLanes(x, false)
		for k := range y {
			y[k] = column(32*k + 16)
		}
		q45 := transposeLanes(y, true)
		cols := [6]reg.VecVirtual{q[0], q[1], q[2], q[3], q45[0], q45[1]}
		Comment("B along x; the tiles back in order; stored.")
		for nu := range 6 {
			w := bRow(nu, func(a int) Op { return cols[a] })
			VPERMPS(w, unperm, w)
			VMOVUPS(w, sixRows(vrow, nu, 0, vs, vs3, vs5))
		}
		if eta < 5 {
			ADDQ(vs3, vrow) // to matrix 6(η+1)
			ADDQ(vs3, vrow)
		}
	}
	ADDQ(U32(128), in)
	ADDQ(U32(32), v)
	DECQ(n)
	JNZ(LabelRef("wino4in_loop"))
	Label("wino4in_done")
	VZEROUPPER()
	RET()
}

func generateWinoOutput4() {
	TEXT("WinoOutput4AVX2", NOSPLIT, "func(y0, y1, y2, y3 *float32, m *float32, ms int, cols int, bias float32)")
	Pragma("noescape")
	Doc("WinoOutput4AVX2 writes the output tiles of one tile row for Winograd F(4×4, 3×3): with",
		"Y = Aᵀ·M·A + bias, M[η][ν] = m[(6η + ν)·ms + t] (ms in elements), it sets y_i[4t + j] = Y[i][j]",
		"for i, j < 4 and 4t + j < cols, eight tiles at a time (the last block's stores masked). AVX2.")
	var y [4]reg.GPVirtual
	for i, name := range []string{"y0", "y1", "y2", "y3"} {
		y[i] = GP64()
		Load(Param(name), y[i])
	}
	m := Load(Param("m"), GP64())
	ms := Load(Param("ms"), GP64())
	n := Load(Param("cols"), GP64())
	bias, perm := YMM(), YMM()
	VBROADCASTSS(paramMem(Param("bias")), bias)
	VMOVDQU(wino4Const(wino4Perm), perm)
	SHLQ(U8(2), ms)
	s6 := GP64() // 6·ms: from row η to row η+1 of M
	LEAQ(Mem{Base: ms, Index: ms, Scale: 2}, s6)
	ADDQ(s6, s6)
	s18, s30 := timesThreeFive(s6)

	// block computes eight tiles and hands row i's four vectors (columns
	// 8k … 8k+7) to store.
	block := func(store func(i, k int, x reg.VecVirtual)) {
		for i := range 4 {
			Comment("Row i of Aᵀ·M, column by column; then A along x, plus the bias.")
			var s [6]reg.VecVirtual
			col := GP64()
			MOVQ(m, col)
			for nu := range s {
				s[nu] = aRow(i, func(eta int) Op { return sixRows(col, eta, 0, s6, s18, s30) })
				if nu < 5 {
					ADDQ(ms, col)
				}
			}
			var o [4]reg.VecVirtual
			for j := range o {
				o[j] = aRow(j, func(a int) Op { return s[a] })
				VADDPS(bias, o[j], o[j])
				VPERMPS(o[j], perm, o[j])
			}
			Comment("Transposed, each vector holds two tiles' four values: columns 8k … 8k+7.")
			for k, x := range transposeLanes(o, false) {
				store(i, k, x)
			}
		}
	}
	blockedRow("wino4out", n, 32, 4, block, func(i, k int) Mem { return Mem{Base: y[i], Disp: 32 * k} }, func() {
		ADDQ(U32(32), m)
		for i := range y {
			ADDQ(U32(128), y[i])
		}
	})
	Label("wino4out_done")
	VZEROUPPER()
	RET()
}

// blockedRow emits an output transform's loop over one row: block (which
// hands each of its vectors k of output row i to a store) while n, the
// columns left, is at least cols, stored plainly at at(i, k), then advance;
// then one last block for the 1 … cols−1 columns left, its stores masked
// (vectors: vectors per output row of a block). It ends at label_done.
func blockedRow(label string, n reg.Register, cols, vectors int, block func(store func(i, k int, x reg.VecVirtual)),
	at func(i, k int) Mem, advance func()) {
	CMPQ(n, U32(cols))
	JLT(LabelRef(label + "_tail"))
	Label(label + "_loop")
	block(func(i, k int, x reg.VecVirtual) { VMOVUPS(x, at(i, k)) })
	advance()
	SUBQ(U32(cols), n)
	CMPQ(n, U32(cols))
	JGE(LabelRef(label + "_loop"))

	Label(label + "_tail")
	TESTQ(n, n)
	JZ(LabelRef(label + "_done"))
	mask := tailMasks(n, vectors)
	block(func(i, k int, x reg.VecVirtual) {
		storeTail(n, k, mask[k], x, at(i, k), fmt.Sprintf("%s_%d_%d", label, i, k))
	})
}

// tailMasks loads the store masks of a partial last block of vectors
// eight floats wide, n (a register) being the columns left: vector k stores
// min(max(n - 8k, 0), 8) lanes.
func tailMasks(n reg.Register, vectors int) []reg.VecVirtual {
	Comment("The last, partial block: vector k stores min(max(cols - 8k, 0), 8) lanes.")
	masks := GP64()
	LEAQ(wino4Const(wino4Mask), masks)
	mask := make([]reg.VecVirtual, vectors)
	for k := range mask {
		t, lim := GP64(), GP64()
		MOVQ(n, t)
		SUBQ(U32(8*k), t)
		XORQ(lim, lim)
		CMPQ(t, lim)
		CMOVQLT(lim, t)
		MOVQ(U32(8), lim)
		CMPQ(t, lim)
		CMOVQGT(lim, t)
		NEGQ(t) // the mask starts 8 - lanes values into the table
		mask[k] = YMM()
		VMOVDQU(Mem{Base: masks, Index: t, Scale: 4, Disp: 32}, mask[k])
	}
	return mask
}

// storeTail stores vector k of a partial last block at at: whole plainly
// (masked stores are slow on AMD's cores), partial masked, past the end
// not at all; label names the jump targets.
func storeTail(n reg.Register, k int, mask, x reg.VecVirtual, at Mem, label string) {
	whole, skip := label+"_whole", label+"_next"
	CMPQ(n, U32(8*(k+1)))
	JGE(LabelRef(whole))
	CMPQ(n, U32(8*k))
	JLE(LabelRef(skip))
	VMASKMOVPS(x, mask, at)
	JMP(LabelRef(skip))
	Label(whole)
	VMOVUPS(x, at)
	Label(skip)
}

// dyRow returns row η of A·(e0 … e3) (winograd4.go's dyVec6), the e_i
// registers or memory.
func dyRow(eta int, e func(i int) Op) reg.VecVirtual {
	x := YMM()
	switch eta {
	case 0:
		VMOVUPS(e(0), x)
	case 5:
		VMOVUPS(e(3), x)
	case 1, 2: // (e0 + e2) ± (e1 + e3)
		t := YMM()
		VMOVUPS(e(0), x)
		VADDPS(e(2), x, x)
		VMOVUPS(e(1), t)
		VADDPS(e(3), t, t)
		if eta == 1 {
			VADDPS(t, x, x)
		} else {
			VSUBPS(t, x, x)
		}
	case 3, 4: // (e0 + 4e2) ± (2e1 + 8e3)
		t := YMM()
		VMOVUPS(e(0), x)
		VFMADD231PS(wino4Const(wino4Four), load(e(2)), x)
		VMOVUPS(e(1), t)
		VADDPS(t, t, t)
		VFMADD231PS(wino4Const(wino4Eight), load(e(3)), t)
		if eta == 3 {
			VADDPS(t, x, x)
		} else {
			VSUBPS(t, x, x)
		}
	}
	return x
}

func generateWinoDy4() {
	TEXT("WinoDy4AVX2", NOSPLIT, "func(y *float32, ys int, r0, r1, r2, r3 *float32, blocks int)")
	Pragma("noescape")
	Doc("WinoDy4AVX2 transforms 8·blocks output-gradient tiles of one tile row for the weight gradient",
		"of Winograd F(4×4, 3×3): with the four rows of dy r_i (each 32·blocks values) it sets, for tile t",
		"and ξ = 6η + ν, y[ξ·ys + t] = (A·dy·Aᵀ)[η][ν] over r_i[4t … 4t+3], A the six rows [1 0 0 0],",
		"[1 1 1 1], [1 -1 1 -1], [1 2 4 8], [1 -2 4 -8], [0 0 0 1] (ys in elements), in the plain-Go order",
		"of operations (kernels.winoDy4Row). AVX2.")
	y := Load(Param("y"), GP64())
	ys := Load(Param("ys"), GP64())
	var r [4]reg.GPVirtual
	for i, name := range []string{"r0", "r1", "r2", "r3"} {
		r[i] = GP64()
		Load(Param(name), r[i])
	}
	n := Load(Param("blocks"), GP64())
	SHLQ(U8(2), ys)
	ys3, ys5 := timesThreeFive(ys)
	unperm := YMM()
	VMOVDQU(wino4Const(wino4Unperm), unperm)
	TESTQ(n, n)
	JZ(LabelRef("wino4dy_done"))

	Label("wino4dy_loop")
	yrow := GP64()
	MOVQ(y, yrow)
	for eta := range 6 {
		Comment("Row η of A·dy at columns 8k (k < 4), transposed: the tiles' four columns;",
			"then A along x, the tiles back in order, stored.")
		var x [4]reg.VecVirtual
		for k := range x {
			x[k] = dyRow(eta, func(i int) Op { return Mem{Base: r[i], Disp: 32 * k} })
		}
		cols := transposeLanes(x, false)
		for nu := range 6 {
			w := dyRow(nu, func(a int) Op { return cols[a] })
			VPERMPS(w, unperm, w)
			VMOVUPS(w, sixRows(yrow, nu, 0, ys, ys3, ys5))
		}
		if eta < 5 {
			ADDQ(ys3, yrow) // to matrix 6(η+1)
			ADDQ(ys3, yrow)
		}
	}
	for i := range r {
		ADDQ(U32(128), r[i])
	}
	ADDQ(U32(32), y)
	DECQ(n)
	JNZ(LabelRef("wino4dy_loop"))
	Label("wino4dy_done")
	VZEROUPPER()
	RET()
}

// gTRow returns row k of Gᵀ·(m0 … m5) (winograd4.go's gTVec3), the m_a
// registers or memory, in gTVec3's order of operations.
func gTRow(k int, m func(a int) Op) reg.VecVirtual {
	x, z := YMM(), YMM()
	switch k {
	case 0: // (¼m0 - ⅙(m1 + m2)) + (m3 + m4)/24
		VMOVUPS(m(1), x)
		VADDPS(m(2), x, x)
		VMULPS(wino4Const(wino4Sixth), x, x)
		y := YMM()
		VMOVUPS(m(0), y)
		VMULPS(wino4Const(wino4Quarter), y, y)
		VSUBPS(x, y, y)
		VMOVUPS(m(3), z)
		VADDPS(m(4), z, z)
		VMULPS(wino4Const(wino4TwentyFourth), z, z)
		VADDPS(z, y, y)
		return y
	case 1: // (m3 - m4)/12 - ⅙(m1 - m2)
		VMOVUPS(m(3), z)
		VSUBPS(m(4), z, z)
		VMULPS(wino4Const(wino4Twelfth), z, z)
		VMOVUPS(m(1), x)
		VSUBPS(m(2), x, x)
		VMULPS(wino4Const(wino4Sixth), x, x)
		VSUBPS(x, z, z)
	default: // (⅙(m3 + m4) - ⅙(m1 + m2)) + m5
		VMOVUPS(m(1), x)
		VADDPS(m(2), x, x)
		VMULPS(wino4Const(wino4Sixth), x, x)
		VMOVUPS(m(3), z)
		VADDPS(m(4), z, z)
		VMULPS(wino4Const(wino4Sixth), z, z)
		VSUBPS(x, z, z)
		VADDPS(m(5), z, z)
	}
	return z
}

func generateWinoWeightGrad4() {
	TEXT("WinoWeightGrad4AVX2", NOSPLIT, "func(dw *float32, ds int, m *float32, ms int, blocks int)")
	Pragma("noescape")
	Doc("WinoWeightGrad4AVX2 ends 8·blocks Winograd F(4×4, 3×3) weight gradients: for kernel t and",
		"ξ = 6η + ν, with M[η][ν] = m[ξ·ms + t], it sets dw[t·ds + 3·ky + kx] = (Gᵀ·M·G)[ky][kx] in the",
		"plain-Go order of operations (kernels.winoWeightGrad4). Strides in elements, ds ≥ 9. AVX2.")
	dw := Load(Param("dw"), GP64())
	ds := Load(Param("ds"), GP64())
	m := Load(Param("m"), GP64())
	ms := Load(Param("ms"), GP64())
	n := Load(Param("blocks"), GP64())
	SHLQ(U8(2), ds)
	SHLQ(U8(2), ms)
	s6 := GP64() // 6·ms: from row η to row η+1 of M
	LEAQ(Mem{Base: ms, Index: ms, Scale: 2}, s6)
	ADDQ(s6, s6)
	s18, s30 := timesThreeFive(s6)
	TESTQ(n, n)
	JZ(LabelRef("wino4wg_done"))

	Label("wino4wg_loop")
	// One row ky of Gᵀ·M at a time (its six values, column by column, from
	// memory), then that row times G: three of the nine outputs.
	var out [9]reg.VecVirtual
	for ky := range 3 {
		var q [6]reg.VecVirtual
		col := GP64()
		MOVQ(m, col)
		for nu := range q {
			q[nu] = gTRow(ky, func(eta int) Op { return sixRows(col, eta, 0, s6, s18, s30) })
			if nu < 5 {
				ADDQ(ms, col)
			}
		}
		for kx := range 3 {
			out[3*ky+kx] = gTRow(kx, func(a int) Op { return q[a] })
		}
	}
	storeKernels(dw, ds, out)
	ADDQ(U32(32), m)
	DECQ(n)
	JNZ(LabelRef("wino4wg_loop"))
	Label("wino4wg_done")
	VZEROUPPER()
	RET()
}
