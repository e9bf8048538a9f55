package main

import (
	. "github.com/mmcloughlin/avo/build"
	. "github.com/mmcloughlin/avo/operand"
)

// generateHalf writes HalfToFloatAVX2: IEEE half-precision bit patterns to
// float32, eight at a time with F16C's VCVTPH2PS (exact: every half value is
// a float32 value, subnormals, infinities and NaN included).
func generateHalf() {
	TEXT("HalfToFloatAVX2", NOSPLIT, "func(dst []float32, src []uint16)")
	Pragma("noescape")
	Doc("HalfToFloatAVX2 sets dst[i] to the float32 value of the half-precision bits src[i], for i < len(src)",
		"rounded down to a multiple of 8 (the caller finishes the tail). F16C.")
	d := Load(Param("dst").Base(), GP64())
	s := Load(Param("src").Base(), GP64())
	n := Load(Param("src").Len(), GP64())
	SHRQ(U8(3), n)
	JZ(LabelRef("half_done"))
	Label("half_loop")
	v := YMM()
	VCVTPH2PS(Mem{Base: s}, v)
	VMOVUPS(v, Mem{Base: d})
	ADDQ(U8(16), s)
	ADDQ(U8(32), d)
	DECQ(n)
	JNZ(LabelRef("half_loop"))
	Label("half_done")
	VZEROUPPER()
	RET()
}
