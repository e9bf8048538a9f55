package main

import (
	"fmt"

	. "github.com/mmcloughlin/avo/build"
	. "github.com/mmcloughlin/avo/operand"
	"github.com/mmcloughlin/avo/reg"
)

// directShapes are the output tiles (rows × width) of the direct 3×3
// convolution kernels, for the images of at most 7×7 where the kernels beat
// Winograd and im2col (kernels/direct.go): rows·width ≤ 28 accumulators, of
// the 32 vector registers (one more holds the weights, one the scatter
// offsets). A 7×7 image is a tile of 4 rows and one of 3.
var directShapes = []struct{ width, rows int }{{4, 4}, {7, 4}, {7, 3}}

// directName is the kernel of an output tile.
func directName(width, rows int) string { return fmt.Sprintf("ConvDirect3x3AVX512W%dR%d", width, rows) }

// generateConvDirect writes the direct 3×3 convolution kernels
// (kernels/direct.go has the algorithm and its plain-Go version): 16 output
// channels, one per lane, for a rows × width tile of output pixels, each
// pixel an accumulator. For every input channel and tap (ky, kx) the 16
// weights are one vector and every pixel's input value is broadcast from
// the padded image straight into its multiply-add.
func generateConvDirect() {
	for _, s := range directShapes {
		name := directName(s.width, s.rows)
		TEXT(name, NOSPLIT, "func(x *float32, rs, cs, c int, w, bias, y *float32, ys *int32, lanes uint16, rows int)")
		Pragma("noescape")
		Doc(fmt.Sprintf("%s computes 16 output channels of a %d×%d tile of a 3×3 convolution and stores", name, s.rows, s.width),
			"lanes (a mask) of them in the first rows rows of y, lane j from y + ys[j] (elements):",
			"y[ys[j] + r·width + px] = bias[j] + Σ_ch Σ_ky,kx w[ch][3ky+kx][j] · x[ch·cs + (r+ky)·rs + px + kx] for c",
			"input channels of the zero-padded image at x (row stride rs, channel stride cs, in elements). AVX-512F.")
		x := Load(Param("x"), GP64())
		rs := Load(Param("rs"), GP64())
		cs := Load(Param("cs"), GP64())
		c := Load(Param("c"), GP64())
		w := Load(Param("w"), GP64())
		bias := Load(Param("bias"), GP64())
		SHLQ(U8(2), rs)
		SHLQ(U8(2), cs)
		Comment("Pointers to the rows+2 input rows the tile reads.")
		rows := make([]reg.GPVirtual, s.rows+2)
		for j := range rows {
			rows[j] = GP64()
			if j == 0 {
				MOVQ(x, rows[0])
				continue
			}
			LEAQ(Mem{Base: rows[j-1], Index: rs, Scale: 1}, rows[j])
		}
		Comment("Every accumulator starts at the bias.")
		acc := make([][]reg.VecVirtual, s.rows)
		for r := range acc {
			acc[r] = make([]reg.VecVirtual, s.width)
			for px := range acc[r] {
				acc[r][px] = ZMM()
				VMOVUPS(Mem{Base: bias}, acc[r][px])
			}
		}
		TESTQ(c, c)
		JZ(LabelRef(name + "_store"))
		Label(name + "_channel")
		wv := ZMM()
		for ky := range 3 {
			for kx := range 3 {
				VMOVUPS(Mem{Base: w, Disp: 64 * (3*ky + kx)}, wv)
				for r := range s.rows {
					for px := range s.width {
						VFMADD231PS_BCST(Mem{Base: rows[r+ky], Disp: 4 * (px + kx)}, wv, acc[r][px])
					}
				}
			}
		}
		for j := range rows {
			ADDQ(cs, rows[j])
		}
		ADDQ(U32(9*64), w)
		DECQ(c)
		JNZ(LabelRef(name + "_channel"))
		Label(name + "_store")
		Comment("Scatter each pixel's 16 channels into their planes of y; rows past rows are not stored.")
		y := Load(Param("y"), GP64())
		ysp := Load(Param("ys"), GP64())
		offs := ZMM()
		VMOVDQU32(Mem{Base: ysp}, offs)
		lanes := Load(Param("lanes"), GP32())
		valid := Load(Param("rows"), GP64())
		k := K()
		for r := range acc {
			if r > 0 {
				CMPQ(valid, U8(r))
				JLE(LabelRef(name + "_done"))
			}
			for px, a := range acc[r] {
				KMOVW(lanes, k)
				VSCATTERDPS(a, k, Mem{Base: y, Index: offs, Scale: 4, Disp: 4 * (r*s.width + px)})
			}
		}
		Label(name + "_done")
		VZEROUPPER()
		RET()
	}
}
