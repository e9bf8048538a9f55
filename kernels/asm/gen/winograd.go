package main

import (
	. "github.com/mmcloughlin/avo/build"
	. "github.com/mmcloughlin/avo/operand"
	"github.com/mmcloughlin/avo/reg"
)

// The two data transforms of Winograd F(2×2, 3×3) (kernels/winograd.go has
// the algorithm and the plain-Go versions), eight tiles of one tile row per
// iteration. Tile t of a row covers input columns 2t…2t+3, so the values a
// tile needs sit at even and odd positions: a 16-value block is split into
// its evens and odds with VSHUFPS, which works within 128-bit lanes and
// leaves the eight tiles in the order 0 1 4 5 2 3 6 7; the arithmetic is
// elementwise, so only the results are put back in order (VPERMPD).

// winoRows returns four pointers base, base+s, base+2s, base+3s (s in bytes).
func winoRows(base, s reg.Register) [4]reg.GPVirtual {
	var r [4]reg.GPVirtual
	for i := range r {
		r[i] = GP64()
		if i == 0 {
			MOVQ(base, r[0])
			continue
		}
		LEAQ(Mem{Base: r[i-1], Index: s, Scale: 1}, r[i])
	}
	return r
}

// sixteen prepares the addressing of 16 matrices ξ = 4η + ν, s elements
// apart, from base: s becomes bytes, r[η] points at matrix 4η and s3 = 3·s,
// so that matrix ξ is nth(r[ξ/4], ξ%4, s, s3).
func sixteen(base, s reg.Register) (r [4]reg.GPVirtual, s3 reg.GPVirtual) {
	SHLQ(U8(2), s)
	s4 := GP64()
	MOVQ(s, s4)
	SHLQ(U8(2), s4)
	r = winoRows(base, s4)
	s3 = GP64()
	LEAQ(Mem{Base: s, Index: s, Scale: 2}, s3)
	return r, s3
}

// nth is row i < 4 of a strided set from base: base + i·s, with s3 = 3·s
// (s and s3 in bytes), as one addressing mode.
func nth(base reg.Register, i int, s, s3 reg.Register) Mem {
	m := Mem{Base: base}
	switch i {
	case 1:
		m.Index, m.Scale = s, 1
	case 2:
		m.Index, m.Scale = s, 2
	case 3:
		m.Index, m.Scale = s3, 1
	}
	return m
}

func generateWinoInput() {
	TEXT("WinoInputAVX2", NOSPLIT, "func(v *float32, vs int, in *float32, ins int, blocks int)")
	Pragma("noescape")
	Doc("WinoInputAVX2 transforms 8·blocks input tiles of one tile row: with the four padded input",
		"rows d_a = in + a·ins (a < 4, each 16·blocks + 2 values) it sets, for tile t and ξ = 4η + ν,",
		"v[ξ·vs + t] = (Bᵀ·d·B)[η][ν] over d_a[2t … 2t+3]. Strides in elements. AVX2.")
	v := Load(Param("v"), GP64())
	vs := Load(Param("vs"), GP64())
	in := Load(Param("in"), GP64())
	ins := Load(Param("ins"), GP64())
	n := Load(Param("blocks"), GP64())
	SHLQ(U8(2), ins)
	vr, vs3 := sixteen(v, vs)
	r := winoRows(in, ins)
	TESTQ(n, n)
	JZ(LabelRef("winoin_done"))

	Label("winoin_loop")
	// Bᵀ along y: row η of Bᵀ·d is d_a op d_b.
	type rowOp struct {
		a, b int
		op   func(ops ...Op)
	}
	ops := [4]rowOp{{0, 2, VSUBPS}, {1, 2, VADDPS}, {2, 1, VSUBPS}, {1, 3, VSUBPS}}
	for eta, ro := range ops {
		Comment("Row η of Bᵀ·d at columns 2t…2t+15 (lo, hi) and 2t+2…2t+17 (lo2, hi2).")
		var x [4]reg.VecVirtual
		for i, disp := range []int{0, 32, 8, 40} {
			x[i] = YMM()
			VMOVUPS(Mem{Base: r[ro.a], Disp: disp}, x[i])
			ro.op(Mem{Base: r[ro.b], Disp: disp}, x[i], x[i]) // x = d_a op d_b
		}
		Comment("q0…q3 = values 2t, 2t+1, 2t+2, 2t+3 of each tile (lanes in 0 1 4 5 2 3 6 7 order).")
		q := [4]reg.VecVirtual{YMM(), YMM(), YMM(), YMM()}
		VSHUFPS(U8(0x88), x[1], x[0], q[0])
		VSHUFPS(U8(0xDD), x[1], x[0], q[1])
		VSHUFPS(U8(0x88), x[3], x[2], q[2])
		VSHUFPS(U8(0xDD), x[3], x[2], q[3])
		Comment("B along x: q0 - q2, q1 + q2, q2 - q1, q1 - q3; back in order, stored.")
		w := [4]reg.VecVirtual{YMM(), YMM(), YMM(), YMM()}
		VSUBPS(q[2], q[0], w[0])
		VADDPS(q[2], q[1], w[1])
		VSUBPS(q[1], q[2], w[2])
		VSUBPS(q[3], q[1], w[3])
		for nu := range 4 {
			VPERMPD(U8(0xD8), w[nu], w[nu])
			VMOVUPS(w[nu], nth(vr[eta], nu, vs, vs3))
		}
	}
	for i := range 4 {
		ADDQ(U32(64), r[i])
		ADDQ(U32(32), vr[i])
	}
	DECQ(n)
	JNZ(LabelRef("winoin_loop"))
	Label("winoin_done")
	VZEROUPPER()
	RET()
}

func generateWinoOutput() {
	TEXT("WinoOutputAVX2", NOSPLIT, "func(top, bot, m *float32, ms int, cols int, bias float32)")
	Pragma("noescape")
	Doc("WinoOutputAVX2 writes the output tiles of one tile row: with Y = Aᵀ·M·A + bias,",
		"M[η][ν] = m[(4η + ν)·ms + t] (ms in elements), it sets top[2t + j] = Y[0][j] and",
		"bot[2t + j] = Y[1][j] for j < 2 and 2t + j < cols, eight tiles at a time (the last",
		"block's stores masked; it reads M for all eight tiles). AVX2.")
	top := Load(Param("top"), GP64())
	bot := Load(Param("bot"), GP64())
	m := Load(Param("m"), GP64())
	ms := Load(Param("ms"), GP64())
	n := Load(Param("cols"), GP64())
	bias := YMM()
	VBROADCASTSS(paramMem(Param("bias")), bias)
	mr, ms3 := sixteen(m, ms)

	// block computes eight tiles and hands row i's two vectors (columns
	// 8k … 8k+7 of top, i = 0, or bot) to store.
	block := func(store func(i, k int, x reg.VecVirtual)) {
		Comment("Aᵀ along y: s0[ν] = M[0][ν] + M[1][ν] + M[2][ν], s1[ν] = M[1][ν] - M[2][ν] - M[3][ν].")
		var s0, s1 [4]reg.VecVirtual
		for nu := range 4 {
			at := func(eta int) Mem { return nth(mr[eta], nu, ms, ms3) }
			s0[nu], s1[nu] = YMM(), YMM()
			VMOVUPS(at(1), s1[nu])
			VADDPS(at(0), s1[nu], s0[nu]) // M0 + M1 (the same sum as M1 + M0)
			VADDPS(at(2), s0[nu], s0[nu])
			VSUBPS(at(2), s1[nu], s1[nu])
			VSUBPS(at(3), s1[nu], s1[nu])
		}
		Comment("A along x, plus the bias; then the two columns of each tile interleaved.")
		for i, s := range [2][4]reg.VecVirtual{s0, s1} {
			y0, y1 := YMM(), YMM()
			VADDPS(s[1], s[0], y0)
			VADDPS(s[2], y0, y0)
			VADDPS(bias, y0, y0)
			VSUBPS(s[2], s[1], y1)
			VSUBPS(s[3], y1, y1)
			VADDPS(bias, y1, y1)
			lo, hi := YMM(), YMM()
			VUNPCKLPS(y1, y0, lo)
			VUNPCKHPS(y1, y0, hi)
			o0, o1 := YMM(), YMM()
			VPERM2F128(U8(0x20), hi, lo, o0)
			VPERM2F128(U8(0x31), hi, lo, o1)
			store(i, 0, o0)
			store(i, 1, o1)
		}
	}
	out := func(i int) reg.Register {
		if i == 1 {
			return bot
		}
		return top
	}
	blockedRow("winoout", n, 16, 2, block, func(i, k int) Mem { return Mem{Base: out(i), Disp: 32 * k} }, func() {
		for i := range 4 {
			ADDQ(U32(32), mr[i])
		}
		ADDQ(U32(64), top)
		ADDQ(U32(64), bot)
	})
	Label("winoout_done")
	VZEROUPPER()
	RET()
}

func generateWinoDy() {
	TEXT("WinoDyAVX2", NOSPLIT, "func(y *float32, ys int, top, bot *float32, blocks int)")
	Pragma("noescape")
	Doc("WinoDyAVX2 transforms 8·blocks output-gradient tiles of one tile row for the weight",
		"gradient: with the tile's rows e = top[2t…2t+1], o = bot[2t…2t+1] it sets, for ξ = 4η + ν,",
		"y[ξ·ys + t] = (Â·dy·Âᵀ)[η][ν], Â = [1 0; 1 1; 1 -1; 0 1] (ys in elements). AVX2.")
	y := Load(Param("y"), GP64())
	ys := Load(Param("ys"), GP64())
	top := Load(Param("top"), GP64())
	bot := Load(Param("bot"), GP64())
	n := Load(Param("blocks"), GP64())
	yr, ys3 := sixteen(y, ys)
	TESTQ(n, n)
	JZ(LabelRef("winody_done"))

	Label("winody_loop")
	Comment("The tiles' left (even) and right (odd) columns of both rows, in tile order.")
	var in [4]reg.VecVirtual // top, top+32, bot, bot+32
	for i := range in {
		in[i] = YMM()
		base := top
		if i >= 2 {
			base = bot
		}
		VMOVUPS(Mem{Base: base, Disp: 32 * (i % 2)}, in[i])
	}
	te, to, be, bo := YMM(), YMM(), YMM(), YMM()
	VSHUFPS(U8(0x88), in[1], in[0], te)
	VSHUFPS(U8(0xDD), in[1], in[0], to)
	VSHUFPS(U8(0x88), in[3], in[2], be)
	VSHUFPS(U8(0xDD), in[3], in[2], bo)
	for _, v := range []reg.VecVirtual{te, to, be, bo} {
		VPERMPD(U8(0xD8), v, v)
	}
	Comment("Â along y: rows η = top, top + bot, top - bot, bot; then along x the same.")
	rows := func(t, b reg.VecVirtual) [4]reg.VecVirtual {
		s, d := YMM(), YMM()
		VADDPS(b, t, s)
		VSUBPS(b, t, d)
		return [4]reg.VecVirtual{t, s, d, b}
	}
	even, odd := rows(te, be), rows(to, bo)
	for eta := range 4 {
		x0, x1 := even[eta], odd[eta]
		s, d := YMM(), YMM()
		VADDPS(x1, x0, s)
		VSUBPS(x1, x0, d)
		for nu, v := range [4]reg.VecVirtual{x0, s, d, x1} {
			VMOVUPS(v, nth(yr[eta], nu, ys, ys3))
		}
	}
	for i := range 4 {
		ADDQ(U32(32), yr[i])
	}
	ADDQ(U32(64), top)
	ADDQ(U32(64), bot)
	DECQ(n)
	JNZ(LabelRef("winody_loop"))
	Label("winody_done")
	VZEROUPPER()
	RET()
}

func generateWinoWeightGrad() {
	TEXT("WinoWeightGradAVX2", NOSPLIT, "func(dw *float32, ds int, m *float32, ms int, blocks int)")
	Pragma("noescape")
	Doc("WinoWeightGradAVX2 ends 8·blocks Winograd weight gradients: for kernel t and ξ = 4η + ν,",
		"with M[η][ν] = m[ξ·ms + t], it sets dw[t·ds + 3·ky + kx] = (Ĝᵀ·M·Ĝ)[ky][kx],",
		"Ĝᵀ = [1 ½ ½ 0; 0 ½ -½ 0; 0 ½ ½ -1], in the plain-Go order of operations",
		"(kernels.winoWeightGrad). Strides in elements, ds ≥ 9. AVX2.")
	dw := Load(Param("dw"), GP64())
	ds := Load(Param("ds"), GP64())
	m := Load(Param("m"), GP64())
	ms := Load(Param("ms"), GP64())
	n := Load(Param("blocks"), GP64())
	SHLQ(U8(2), ds)
	mr, ms3 := sixteen(m, ms)
	half := YMM()
	h := GP32()
	MOVL(U32(0x3f000000), h)
	VMOVD(h, half.AsX())
	VBROADCASTSS(half.AsX(), half)
	TESTQ(n, n)
	JZ(LabelRef("winowg_done"))

	Label("winowg_loop")
	load := func(eta, nu int) reg.VecVirtual {
		v := YMM()
		VMOVUPS(nth(mr[eta], nu, ms, ms3), v)
		return v
	}
	// One row ky of Ĝᵀ·M at a time (its four values from two or three rows
	// of M), then that row times Ĝ: three of the nine outputs.
	var out [9]reg.VecVirtual
	for ky := range 3 {
		var q [4]reg.VecVirtual
		for nu := range 4 {
			q[nu] = YMM()
			m1, m2 := load(1, nu), load(2, nu)
			switch ky {
			case 0: // m0 + ½(m1 + m2)
				VADDPS(m2, m1, q[nu])
				VMULPS(half, q[nu], q[nu])
				VADDPS(q[nu], load(0, nu), q[nu])
			case 1: // ½(m1 - m2)
				VSUBPS(m2, m1, q[nu])
				VMULPS(half, q[nu], q[nu])
			case 2: // ½(m1 + m2) - m3
				VADDPS(m2, m1, q[nu])
				VMULPS(half, q[nu], q[nu])
				VSUBPS(load(3, nu), q[nu], q[nu])
			}
		}
		s, d := YMM(), YMM()
		VADDPS(q[2], q[1], s)
		VMULPS(half, s, s)
		VSUBPS(q[2], q[1], d)
		out[3*ky], out[3*ky+1], out[3*ky+2] = YMM(), d, YMM()
		VADDPS(s, q[0], out[3*ky])
		VMULPS(half, d, d)
		VSUBPS(q[3], s, out[3*ky+2])
	}
	storeKernels(dw, ds, out)
	for i := range 4 {
		ADDQ(U32(32), mr[i])
	}
	DECQ(n)
	JNZ(LabelRef("winowg_loop"))
	Label("winowg_done")
	VZEROUPPER()
	RET()
}

// storeKernels stores eight kernels' nine values, out[q] holding value q of
// kernels 0…7 in its lanes: kernel t's at dw + t·ds (ds in bytes); dw is
// left 8·ds further on.
func storeKernels(dw, ds reg.Register, out [9]reg.VecVirtual) {
	Comment("Kernel t's last value, lane t of out[8], where its row of nine ends.")
	p := GP64()
	MOVQ(dw, p)
	hi := XMM()
	VEXTRACTF128(U8(1), out[8], hi)
	for t := range 8 {
		src := out[8].AsX()
		if t >= 4 {
			src = hi
		}
		dst := Mem{Base: p, Disp: 32}
		if t%4 == 0 {
			VMOVSS(src, dst)
		} else {
			VEXTRACTPS(U8(t%4), src, dst)
		}
		if t < 7 {
			ADDQ(ds, p)
		}
	}
	Comment("out[0…7] transposed: row t is kernel t's first eight values.")
	var tl [8]reg.VecVirtual
	for i := 0; i < 8; i += 2 {
		tl[i], tl[i+1] = YMM(), YMM()
		VUNPCKLPS(out[i+1], out[i], tl[i])
		VUNPCKHPS(out[i+1], out[i], tl[i+1])
	}
	var u [8]reg.VecVirtual
	for g := 0; g < 8; g += 4 { // u[g…g+3]: lanes 0/4, 1/5, 2/6, 3/7 of outputs g…g+3
		for i, pair := range [4][2]int{{0, 0x44}, {0, 0xEE}, {1, 0x44}, {1, 0xEE}} {
			u[g+i] = YMM()
			VSHUFPS(U8(byte(pair[1])), tl[g+2+pair[0]], tl[g+pair[0]], u[g+i])
		}
	}
	for t := range 8 {
		row := YMM()
		imm := byte(0x20)
		if t >= 4 {
			imm = 0x31
		}
		VPERM2F128(U8(imm), u[4+t%4], u[t%4], row)
		VMOVUPS(row, Mem{Base: dw})
		ADDQ(ds, dw)
	}
}
