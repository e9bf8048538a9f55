package main

import (
	. "github.com/mmcloughlin/avo/build"
	. "github.com/mmcloughlin/avo/operand"
	. "github.com/mmcloughlin/avo/reg"
)

// generateDownRows emits DownRowsAVX512, the im2col rows of a U-Net's
// downsampler (3 wide, stride 2, one column of padding on the left): each
// input row gives the three rows of taps kx = 0, 1, 2 of one output row,
// its odd columns shifted by one, its even columns and its odd columns —
// one load of 32 values (and one from a column earlier) and three
// two-table permutes per 16 outputs, where the Go loop moved them one by one.
func generateDownRows() {
	data := GLOBL("downperm", RODATA|NOPTR)
	for k := range 32 { // in address order, as the assembler wants them
		DATA(4*k, U32(uint32(2*(k%16)+k/16))) // the even columns of 32, then the odd ones
	}
	TEXT("DownRowsAVX512", NOSPLIT, "func(d0, d1, d2 *float32, ds int, src *float32, ss, rows int, load, shifted uint32, store uint16)")
	Pragma("noescape")
	Doc("DownRowsAVX512 sets, for r < rows and the lanes j of store (at most 16), with x_r = src + r·ss:",
		"d0[r·ds + j] = x_r[2j − 1], d1[r·ds + j] = x_r[2j], d2[r·ds + j] = x_r[2j + 1], reading only the",
		"lanes of load (x_r[i], i < 32) and of shifted (x_r[i − 1]); a lane off its mask reads 0. Strides",
		"in elements. AVX-512F.")
	d := [3]GPVirtual{}
	for i, name := range []string{"d0", "d1", "d2"} {
		d[i] = Load(Param(name), GP64()).(GPVirtual)
	}
	ds := Load(Param("ds"), GP64())
	src := Load(Param("src"), GP64())
	ss := Load(Param("ss"), GP64())
	rows := Load(Param("rows"), GP64())
	SHLQ(U8(2), ds)
	SHLQ(U8(2), ss)
	kl0, kl1, km0, km1, kst := K(), K(), K(), K(), K()
	bits := GP64()
	Load(Param("load"), bits.As32())
	KMOVW(bits.As32(), kl0)
	SHRL(U8(16), bits.As32())
	KMOVW(bits.As32(), kl1)
	Load(Param("shifted"), bits.As32())
	KMOVW(bits.As32(), km0)
	SHRL(U8(16), bits.As32())
	KMOVW(bits.As32(), km1)
	Load(Param("store"), bits.As16())
	KMOVW(bits.As32(), kst)
	even, odd := ZMM(), ZMM()
	VMOVDQU32(data.Offset(0), even)
	VMOVDQU32(data.Offset(64), odd)
	TESTQ(rows, rows)
	JZ(LabelRef("downrows_done"))
	Label("downrows_row")
	l0, l1, m0, m1 := ZMM(), ZMM(), ZMM(), ZMM()
	VMOVUPS_Z(Mem{Base: src}, kl0, l0)
	VMOVUPS_Z(Mem{Base: src, Disp: 64}, kl1, l1)
	VMOVUPS_Z(Mem{Base: src, Disp: -4}, km0, m0)
	VMOVUPS_Z(Mem{Base: src, Disp: 60}, km1, m1)
	for i, pick := range []struct {
		idx    VecVirtual
		lo, hi VecVirtual
	}{{even, m0, m1}, {even, l0, l1}, {odd, l0, l1}} {
		t := ZMM()
		VMOVAPS(pick.idx, t)
		VPERMI2PS(pick.hi, pick.lo, t) // t[j] = (lo:hi)[idx[j]]
		VMOVUPS(t, kst, Mem{Base: d[i]})
		ADDQ(ds, d[i])
	}
	ADDQ(ss, src)
	DECQ(rows)
	JNZ(LabelRef("downrows_row"))
	Label("downrows_done")
	VZEROUPPER()
	RET()
}
