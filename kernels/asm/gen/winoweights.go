package main

import (
	"fmt"
	"math"

	. "github.com/mmcloughlin/avo/build"
	. "github.com/mmcloughlin/avo/operand"
	"github.com/mmcloughlin/avo/reg"
)

// The Winograd weight transforms U = G·g·Gᵀ of F(2×2, 3×3) and F(4×4, 3×3)
// (kernels/winograd.go and winograd4.go have the plain-Go versions, which
// set the order of the operations), eight 3×3 kernels at a time: lane l of
// block b takes the kernel at w + off[8b + l] (elements), gathered, so the
// caller lays the eight out as the GEMM's packed panel wants them, and
// writes U[ξ] of it to u[ξ·us + 8b + l].

var winoWData Mem

// Offsets into winowconsts: broadcast scalars.
const (
	winoWHalf = 4 * iota
	winoWQuarter
	winoWNegSixth
	winoWTwentyFourth
	winoWFour
)

func declareWinoWeightConsts() {
	winoWData = GLOBL("winowconsts", RODATA|NOPTR)
	// -1/6 and 1/24 rounded to float32 as Go rounds the untyped constants of
	// gVec6.
	for i, v := range []float32{0.5, 0.25, -1.0 / 6, 1.0 / 24, 4} {
		DATA(4*i, U32(math.Float32bits(v)))
	}
}

func winoWConst(off int) reg.VecVirtual {
	v := YMM()
	VBROADCASTSS(winoWData.Offset(off), v)
	return v
}

// generateWinoWeights emits WinoWeight{2,4}[Flipped]AVX2: tile side m (2 or
// 4); flipped rotates every kernel by 180° (the input gradient's weights).
func generateWinoWeights(m int, flipped bool) {
	name := fmt.Sprintf("WinoWeight%dAVX2", m)
	if flipped {
		name = fmt.Sprintf("WinoWeight%dFlippedAVX2", m)
	}
	n := m + 2 // U is n×n
	TEXT(name, NOSPLIT, "func(u *float32, us int, w *float32, off *int32, blocks int)")
	Pragma("noescape")
	rot := ""
	if flipped {
		rot = " rotated by 180°"
	}
	Doc(fmt.Sprintf("%s transforms 8·blocks 3×3 kernels for Winograd F(%d×%d, 3×3): kernel j (9 values", name, m, m),
		fmt.Sprintf("at w + off[j], elements)%s gives u[ξ·us + j] = (G·g·Gᵀ)[ξ], ξ < %d, in the plain-Go", rot, n*n),
		fmt.Sprintf("order of operations (kernels.%s). us in elements. AVX2.", map[int]string{2: "winoWeightKernel", 4: "winoWeight4Kernel"}[m]))
	u := Load(Param("u"), GP64())
	us := Load(Param("us"), GP64())
	g := Load(Param("w"), GP64())
	off := Load(Param("off"), GP64())
	blocks := Load(Param("blocks"), GP64())
	SHLQ(U8(2), us)
	TESTQ(blocks, blocks)
	JZ(LabelRef(name + "_done"))
	Label(name + "_loop")
	idx := YMM()
	VMOVDQU(Mem{Base: off}, idx)
	// k returns value i of every lane's kernel (after the rotation).
	k := func(i int) reg.VecVirtual {
		if flipped {
			i = 8 - i
		}
		mask, v := YMM(), YMM()
		VPCMPEQD(mask, mask, mask)
		VXORPS(v, v, v)
		VGATHERDPS(mask, Mem{Base: g, Index: idx, Scale: 4, Disp: 4 * i}, v)
		return v
	}
	p := GP64() // u + ξ·us for the next ξ stored
	out := func(v reg.VecVirtual) {
		VMOVUPS(v, Mem{Base: p})
		ADDQ(us, p)
	}
	MOVQ(u, p)
	if m == 2 {
		half := winoWConst(winoWHalf)
		// gRow: x·Gᵀ = x0, ½(x0 + x1 + x2), ½(x0 - x1 + x2), x2.
		gRow := func(x [3]reg.VecVirtual) {
			s, d := YMM(), YMM()
			VADDPS(x[1], x[0], s)
			VADDPS(x[2], s, s)
			VMULPS(half, s, s)
			VSUBPS(x[1], x[0], d)
			VADDPS(x[2], d, d)
			VMULPS(half, d, d)
			out(x[0])
			out(s)
			out(d)
			out(x[2])
		}
		Comment("Rows η of G·g: a, ½(a + b + c), ½(a - b + c), c; each then times Gᵀ.")
		var a, b, c [3]reg.VecVirtual
		for x := range 3 {
			a[x] = k(x)
		}
		gRow(a)
		for x := range 3 {
			b[x], c[x] = k(3+x), k(6+x)
		}
		var r1, r2 [3]reg.VecVirtual
		for x := range 3 {
			r1[x], r2[x] = YMM(), YMM()
			VADDPS(b[x], a[x], r1[x])
			VADDPS(c[x], r1[x], r1[x])
			VMULPS(half, r1[x], r1[x])
			VSUBPS(b[x], a[x], r2[x])
			VADDPS(c[x], r2[x], r2[x])
			VMULPS(half, r2[x], r2[x])
		}
		gRow(r1)
		gRow(r2)
		gRow(c)
	} else {
		quarter, negSixth := winoWConst(winoWQuarter), winoWConst(winoWNegSixth)
		twentyFourth, four := winoWConst(winoWTwentyFourth), winoWConst(winoWFour)
		// gVec6 (g0, g1, g2) → its six values, each handed to put.
		gVec6 := func(g0, g1, g2 reg.VecVirtual, put func(i int, v reg.VecVirtual)) {
			even, t := YMM(), YMM()
			VADDPS(g2, g0, even)
			VMULPS(quarter, g0, t)
			put(0, t)
			s := YMM()
			VADDPS(g1, even, s)
			VMULPS(negSixth, s, s)
			put(1, s)
			d := YMM()
			VSUBPS(g1, even, d)
			VMULPS(negSixth, d, d)
			put(2, d)
			base, two := YMM(), YMM()
			VMULPS(four, g2, base)
			VADDPS(base, g0, base) // g0 + 4·g2
			VADDPS(g1, g1, two)    // 2·g1, exact
			p, q := YMM(), YMM()
			VADDPS(two, base, p)
			VMULPS(twentyFourth, p, p)
			put(3, p)
			VSUBPS(two, base, q)
			VMULPS(twentyFourth, q, q)
			put(4, q)
			put(5, g2)
		}
		Comment("G along y, column x by column: gy[η][x] parked in u's slot 6η + x, which",
			"only row η's outputs overwrite, after reading it.")
		for x := range 3 {
			gVec6(k(x), k(3+x), k(6+x), func(eta int, v reg.VecVirtual) {
				VMOVUPS(v, Mem{Base: p})
				if eta < 5 {
					for range 6 {
						ADDQ(us, p)
					}
				}
			})
			MOVQ(u, p)
			for range x + 1 {
				ADDQ(us, p)
			}
		}
		Comment("G along x, row η by row: u[6η + ν].")
		MOVQ(u, p)
		for range 6 {
			var row [3]reg.VecVirtual
			q := GP64()
			MOVQ(p, q)
			for x := range row {
				row[x] = YMM()
				VMOVUPS(Mem{Base: q}, row[x])
				if x < 2 {
					ADDQ(us, q)
				}
			}
			gVec6(row[0], row[1], row[2], func(_ int, v reg.VecVirtual) { out(v) })
		}
	}
	ADDQ(U32(32), u)
	ADDQ(U32(32), off)
	DECQ(blocks)
	JNZ(LabelRef(name + "_loop"))
	Label(name + "_done")
	VZEROUPPER()
	RET()
}
