package main

import (
	"fmt"
	"strings"

	. "github.com/mmcloughlin/avo/build"
	. "github.com/mmcloughlin/avo/operand"
	. "github.com/mmcloughlin/avo/reg"
)

// tapsBlock is how many vectors of outputs one pass over the taps carries
// in registers.
const tapsBlock = 8

// generateConvTaps writes ConvTapsAVX2 and …AVX512: one output channel of a
// stride-1 convolution as a sum of shifted rows of the padded image,
//
//	y[j] = bias + Σ_t w[t]·x[off[t] + j],
//
// the outputs j in the lanes (kernels/convtaps.go has the algorithm and
// its plain-Go version). A convolution with one to four output channels
// (a U-Net's last layer) or input channels (its first) leaves a GEMM's
// tiles mostly empty; here every lane is an output pixel whatever the
// channels. Outputs go tapsBlock vectors at a time, the last block moved
// back to end at n; a row shorter than a block goes one vector at a time,
// its last n mod lanes under a mask. Every output is the same sequence of
// multiply-adds whichever way it is reached, so the results do not depend
// on how a row is cut (bands of rows per thread).
func generateConvTaps() {
	for _, a := range []isa{isaAVX2, isaAVX512} {
		name := "ConvTaps" + a.suffix
		lower := strings.ToLower(name)
		TEXT(name, NOSPLIT, "func(y *float32, n int, x *float32, off *int, w *float32, taps int, bias float32)")
		Pragma("noescape")
		Doc(fmt.Sprintf("%s sets y[j] = bias + Σ_t w[t]·x[off[t] + j] over the taps t < taps (taps ≥ 1),", name),
			"for j < n: one output channel of a stride-1 convolution by shifted rows. "+a.needs+".")
		y := Load(Param("y"), GP64())
		n := Load(Param("n"), GP64())
		x := Load(Param("x"), GP64())
		off := Load(Param("off"), GP64())
		w := Load(Param("w"), GP64())
		taps := Load(Param("taps"), GP64())
		bias := a.vec()
		VBROADCASTSS(paramMem(Param("bias")), bias)
		stride := 4 * a.lanes

		// block emits one pass over the taps for k vectors of outputs from y
		// and x (under mask on every vector when mask is not nil).
		block := func(label string, k int, mask Op) {
			acc := make([]VecVirtual, k)
			for i := range acc {
				acc[i] = a.vec()
				VMOVAPS(bias, acc[i])
			}
			t, o, wp, op := GP64(), GP64(), GP64(), GP64()
			MOVQ(taps, t)
			MOVQ(w, wp)
			MOVQ(off, op)
			Label(label)
			MOVQ(Mem{Base: op}, o)
			wv := a.vec()
			VBROADCASTSS(Mem{Base: wp}, wv)
			for i := range acc {
				src := Mem{Base: x, Index: o, Scale: 4, Disp: stride * i}
				if mask != nil {
					v := a.vec()
					if a.zmm {
						VMOVUPS_Z(src, mask, v)
					} else {
						VMASKMOVPS(src, mask, v) // lanes off the mask read nothing (and are 0)
					}
					VFMADD231PS(v, wv, acc[i])
				} else {
					VFMADD231PS(src, wv, acc[i])
				}
			}
			ADDQ(U8(8), op)
			ADDQ(U8(4), wp)
			DECQ(t)
			JNZ(LabelRef(label))
			for i, v := range acc {
				switch {
				case mask != nil && a.zmm:
					VMOVUPS(v, mask, Mem{Base: y, Disp: stride * i})
				case mask != nil:
					VMASKMOVPS(v, mask, Mem{Base: y, Disp: stride * i})
				default:
					VMOVUPS(v, Mem{Base: y, Disp: stride * i})
				}
			}
		}

		wide := tapsBlock * a.lanes
		total := GP64()
		MOVQ(n, total)
		Label(lower + "_wide")
		CMPQ(n, U32(wide))
		JB(LabelRef(lower + "_rest"))
		block(lower+"_widetaps", tapsBlock, nil)
		ADDQ(U32(tapsBlock*stride), y)
		ADDQ(U32(tapsBlock*stride), x)
		SUBQ(U32(wide), n)
		JMP(LabelRef(lower + "_wide"))

		Comment("The rest of a row of at least one block: one more block, moved back to end at n.",
			"Its first outputs are computed again, to the same values.")
		Label(lower + "_rest")
		TESTQ(n, n)
		JZ(LabelRef(lower + "_done"))
		CMPQ(total, U32(wide))
		JB(LabelRef(lower + "_one"))
		back := GP64()
		MOVQ(U32(wide), back)
		SUBQ(n, back)
		SHLQ(U8(2), back)
		SUBQ(back, y)
		SUBQ(back, x)
		MOVQ(U32(wide), n)
		JMP(LabelRef(lower + "_wide"))

		Comment("A row shorter than a block: one vector at a time.")

		Label(lower + "_one")
		CMPQ(n, U32(a.lanes))
		JB(LabelRef(lower + "_tail"))
		block(lower+"_onetaps", 1, nil)
		ADDQ(U32(stride), y)
		ADDQ(U32(stride), x)
		SUBQ(U32(a.lanes), n)
		JMP(LabelRef(lower + "_one"))

		Label(lower + "_tail")
		TESTQ(n, n)
		JZ(LabelRef(lower + "_done"))
		if a.zmm {
			block(lower+"_tailtaps", 1, tailMask16(n))
		} else {
			// The first n lanes of wino4consts' eight −1s and eight 0s.
			masks, mask := GP64(), YMM()
			LEAQ(wino4Const(wino4Mask), masks)
			NEGQ(n)
			VMOVDQU(Mem{Base: masks, Index: n, Scale: 4, Disp: 32}, mask)
			block(lower+"_tailtaps", 1, mask)
		}
		Label(lower + "_done")
		VZEROUPPER()
		RET()
	}
}
