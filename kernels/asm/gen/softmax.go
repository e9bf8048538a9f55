package main

import (
	"fmt"
	"math"
	"strings"

	. "github.com/mmcloughlin/avo/build"
	. "github.com/mmcloughlin/avo/operand"
	. "github.com/mmcloughlin/avo/reg"
)

// The three passes of a softmax row, eight lanes at a time (AVX2): the
// maximum, y = e^(x−m) with the running sum (the exp of ExpAVX2), and the
// scaling by 1/sum. Each covers len rounded down to a multiple of the
// lanes; the caller finishes the tails.
// reduce folds the lanes of v with op into the low lane of a new register.
func reduce(a isa, v VecVirtual, op func(a, b, dst Op)) VecVirtual {
	y := v
	if a.zmm {
		hi := YMM()
		VEXTRACTF64X4(U8(1), v, hi)
		y = YMM()
		op(hi, v.AsY(), y)
	}
	hi, s, t := XMM(), XMM(), XMM()
	VEXTRACTF128(U8(1), y, hi)
	op(hi, y.AsX(), s)
	VMOVHLPS(s, s, t)
	op(t, s, s)
	VMOVSHDUP(s, t)
	op(t, s, s)
	return s
}

func generateSoftmax() {
	for _, a := range []isa{isaAVX2} { // AVX-512: SoftmaxRowAVX512, below
		name := "Max" + a.suffix
		TEXT(name, NOSPLIT, "func(x []float32) float32")
		Pragma("noescape")
		Doc(fmt.Sprintf("%s returns the largest of x[i] for i < len(x) rounded down to a multiple of %d", name, a.lanes),
			fmt.Sprintf("(−Inf when that is none). %s.", map[bool]string{false: "AVX2", true: "AVX-512F"}[a.zmm]))
		m := a.vec()
		inf := GP32()
		MOVL(U32(math.Float32bits(float32(math.Inf(-1)))), inf)
		t := XMM()
		VMOVD(inf, t)
		VBROADCASTSS(t, m)
		vecLoop(strings.ToLower(name), []string{"x"}, a.lanes, func(p []GPVirtual) {
			VMAXPS(Mem{Base: p[0]}, m, m)
		})
		VMOVSS(reduce(a, m, func(a, b, dst Op) { VMAXPS(a, b, dst) }), paramMem(ReturnIndex(0)))
		VZEROUPPER()
		RET()

		name = "ExpShiftSum" + a.suffix
		TEXT(name, NOSPLIT, "func(y, x []float32, m float32) float32")
		Pragma("noescape")
		Doc(fmt.Sprintf("%s sets y[i] = e^(x[i]−m) for i < len(x) rounded down to a multiple of %d and", name, a.lanes),
			"returns their sum (ExpAVX2's exp; y may be x). "+a.needs+".")
		e := a.expRegs()
		mv, sum := a.vec(), a.vec()
		VBROADCASTSS(paramMem(Param("m")), mv)
		zeroVec(sum, a.zmm)
		vecLoopN(strings.ToLower(name), []string{"x", "y"}, a.lanes, a.expChains, func(p []GPVirtual, k int) {
			vs := e.vecs(k)
			for j, v := range vs {
				VMOVUPS(vecAt(p[0], a.lanes, j), v)
				VSUBPS(mv, v, v)
			}
			for j, ev := range e.expN(vs) {
				VMOVUPS(ev, vecAt(p[1], a.lanes, j))
				VADDPS(ev, sum, sum) // in the order of the values, as one at a time
			}
		})
		VMOVSS(reduce(a, sum, func(a, b, dst Op) { VADDPS(a, b, dst) }), paramMem(ReturnIndex(0)))
		VZEROUPPER()
		RET()

		name = "Scale" + a.suffix
		TEXT(name, NOSPLIT, "func(y []float32, s float32)")
		Pragma("noescape")
		Doc(fmt.Sprintf("%s sets y[i] *= s for i < len(y) rounded down to a multiple of %d. %s.", name, a.lanes,
			map[bool]string{false: "AVX2", true: "AVX-512F"}[a.zmm]))
		sv := a.vec()
		VBROADCASTSS(paramMem(Param("s")), sv)
		elementwiseLanes(strings.ToLower(name), []string{"y"}, a.lanes, func(ptr []GPVirtual) {
			w := a.vec()
			VMULPS(Mem{Base: ptr[0]}, sv, w)
			VMOVUPS(w, Mem{Base: ptr[0]})
		})
	}
}

// generateAffine writes AffineAVX2, the per-channel a·x + b of the
// normalizations: a multiply then an add (no fused multiply-add), the
// operations of the scalar loop it replaces (as Go compiles it for its
// default GOAMD64=v1), so it gives the same bits.
func generateAffine() {
	TEXT("AffineAVX2", NOSPLIT, "func(dst, src []float32, a, b float32)")
	Pragma("noescape")
	Doc("AffineAVX2 sets dst[i] = src[i]·a + b (rounded after the product, as Go does) for i < len(src)",
		"rounded down to a multiple of 8 (the caller finishes the tail; dst may be src). AVX.")
	av, bv := YMM(), YMM()
	VBROADCASTSS(paramMem(Param("a")), av)
	VBROADCASTSS(paramMem(Param("b")), bv)
	elementwise("affine", []string{"src", "dst"}, func(ptr []GPVirtual) {
		w := YMM()
		VMULPS(Mem{Base: ptr[0]}, av, w)
		VADDPS(bv, w, w)
		VMOVUPS(w, Mem{Base: ptr[1]})
	})
}

// generateBinary writes the elementwise binary kernels, y = a op b with b a
// slice or one value: each lane's result is the single IEEE operation of the
// scalar loop, so the bits are the same.
func generateBinary() {
	ops := []struct {
		name string
		inst func(ops ...Op)
	}{{"Add", VADDPS}, {"Sub", VSUBPS}, {"Mul", VMULPS}, {"Div", VDIVPS}}
	for _, op := range ops {
		name := op.name + "AVX2"
		TEXT(name, NOSPLIT, "func(y, a, b []float32)")
		Pragma("noescape")
		Doc(name+" sets y[i] = a[i] "+map[string]string{"Add": "+", "Sub": "−", "Mul": "·", "Div": "/"}[op.name]+" b[i] for i < len(y) rounded down to a multiple of 8",
			"(the caller finishes the tail). AVX.")
		elementwise(op.name+"_vv", []string{"y", "a", "b"}, func(p []GPVirtual) {
			v, w := YMM(), YMM()
			VMOVUPS(Mem{Base: p[1]}, v)
			VMOVUPS(Mem{Base: p[2]}, w)
			op.inst(w, v, v) // v = v op w (Go operand order: the source last but one)
			VMOVUPS(v, Mem{Base: p[0]})
		})

		name = op.name + "ScalarAVX2"
		TEXT(name, NOSPLIT, "func(y, a []float32, b float32)")
		Pragma("noescape")
		Doc(name + " is " + op.name + "AVX2 with b one value for every i.")
		bv := YMM()
		VBROADCASTSS(paramMem(Param("b")), bv)
		elementwise(op.name+"_vs", []string{"y", "a"}, func(p []GPVirtual) {
			v := YMM()
			VMOVUPS(Mem{Base: p[1]}, v)
			op.inst(bv, v, v)
			VMOVUPS(v, Mem{Base: p[0]})
		})
	}
}

// generateNormGrad writes NormGradAVX2, the input gradient of the
// normalizations for one channel row: dx = a·dy + b·(x − mean) + c with the
// scalar loop's operations in its order (no fused multiply-add), so the bits
// are the same.
func generateNormGrad() {
	TEXT("NormGradAVX2", NOSPLIT, "func(dx, dy, x []float32, k *[4]float32)")
	Pragma("noescape")
	Doc("NormGradAVX2 sets dx[i] = (a·dy[i] + b·(x[i] − mean)) + c, k = {a, b, c, mean}, for i < len(dx)",
		"rounded down to a multiple of 8 (the caller finishes the tail). AVX.")
	kp := Load(Param("k"), GP64())
	kv := make([]VecVirtual, 4)
	for i := range kv {
		kv[i] = YMM()
		VBROADCASTSS(Mem{Base: kp, Disp: 4 * i}, kv[i])
	}
	elementwise("normgrad", []string{"dx", "dy", "x"}, func(p []GPVirtual) {
		u, v := YMM(), YMM()
		VMULPS(Mem{Base: p[1]}, kv[0], u) // a·dy
		VMOVUPS(Mem{Base: p[2]}, v)
		VSUBPS(kv[3], v, v) // x − mean
		VMULPS(kv[1], v, v) // b·(x − mean)
		VADDPS(v, u, u)
		VADDPS(kv[2], u, u)
		VMOVUPS(u, Mem{Base: p[0]})
	})
}

// generateSoftmaxRow writes SoftmaxRowAVX512: a whole softmax row in one
// call, its last len mod 16 values under a mask. The attention's rows are
// short (196 keys at tiny-mnist's 14×14 level): four calls a row (the max,
// exp and sum, the scaling, and the tail's exp through padded copies) plus
// the Go around them were a third of its softmax time.
func generateSoftmaxRow() {
	a := isaAVX512
	name := "SoftmaxRowAVX512"
	TEXT(name, NOSPLIT, "func(y, x []float32)")
	Pragma("noescape")
	Doc(name+" sets y[i] = e^(x[i]−m)/Σ e^(x[j]−m), m the largest x[j], for i < len(x) (y may be x; ExpAVX512's",
		"exp, the sum over the values in order by lanes). AVX-512F.")
	tail := tailMask16(Load(Param("x").Len(), GP64()))
	ninf := ZMM()
	inf := GP32()
	MOVL(U32(math.Float32bits(float32(math.Inf(-1)))), inf)
	t := XMM()
	VMOVD(inf, t)
	VBROADCASTSS(t, ninf)

	Comment("The largest value: whole vectors, then the tail over −Inf.")
	m := ZMM()
	VMOVAPS(ninf, m)
	p := vecLoop("softmaxrow_max", []string{"x"}, 16, func(p []GPVirtual) {
		VMAXPS(Mem{Base: p[0]}, m, m)
	})
	last := ZMM()
	VMOVAPS(ninf, last)
	VMOVUPS(Mem{Base: p[0]}, tail, last)
	VMAXPS(last, m, m)
	mv := ZMM()
	VBROADCASTSS(reduce(a, m, func(a, b, dst Op) { VMAXPS(a, b, dst) }), mv)

	Comment("y = e^(x−m) and its sum, as ExpShiftSumAVX2 at 16 lanes; the tail's lanes past len add nothing.")
	e := a.expRegs()
	sum := ZMM()
	zeroVec(sum, true)
	p = vecLoopN("softmaxrow_exp", []string{"x", "y"}, 16, a.expChains, func(p []GPVirtual, k int) {
		vs := e.vecs(k)
		for j, v := range vs {
			VMOVUPS(vecAt(p[0], 16, j), v)
			VSUBPS(mv, v, v)
		}
		for j, ev := range e.expN(vs) {
			VMOVUPS(ev, vecAt(p[1], 16, j))
			VADDPS(ev, sum, sum)
		}
	})
	vs := e.vecs(1)
	VMOVAPS(ninf, vs[0])
	VMOVUPS(Mem{Base: p[0]}, tail, vs[0])
	VSUBPS(mv, vs[0], vs[0])
	ev := e.expN(vs)[0]
	VMOVUPS(ev, tail, Mem{Base: p[1]})
	VADDPS(ev, sum, tail, sum)

	Comment("y ·= 1/sum.")
	s := reduce(a, sum, func(a, b, dst Op) { VADDPS(a, b, dst) })
	one, inv := XMM(), ZMM()
	MOVL(U32(math.Float32bits(1)), inf)
	VMOVD(inf, one)
	VDIVSS(s, one, one)
	VBROADCASTSS(one, inv)
	p = vecLoop("softmaxrow_scale", []string{"y"}, 16, func(p []GPVirtual) {
		w := ZMM()
		VMULPS(Mem{Base: p[0]}, inv, w)
		VMOVUPS(w, Mem{Base: p[0]})
	})
	w := ZMM()
	VMOVUPS_Z(Mem{Base: p[0]}, tail, w)
	VMULPS(inv, w, w)
	VMOVUPS(w, tail, Mem{Base: p[0]})
	VZEROUPPER()
	RET()
}

// tailMask16 returns a mask of the low n mod 16 lanes (n: a register, which
// it changes), for the loads and stores of a row's last partial vector.
func tailMask16(n Register) Op {
	ANDQ(U8(15), n)
	bits := GP64()
	MOVQ(U32(1), bits)
	SHLXQ(n, bits, bits) // 1 << (n mod 16)
	DECQ(bits)
	k := K()
	KMOVW(bits.As32(), k)
	return k
}

// generateSoftmaxColumns writes SoftmaxColumnsAVX2 and …AVX512: the softmax
// down the columns of a matrix, one vector of columns per call. The
// channel-major attention computes its scores transposed (keys down,
// queries across), so each query's softmax runs down a column: the maximum
// and the sum are lane-wise, with no reduction across lanes, and the
// exponentials stay where the next product reads them as its packed B
// panel. The 1/sum comes back per column, for the caller to apply to the
// much smaller product instead of to every probability.
func generateSoftmaxColumns() {
	for _, a := range []isa{isaAVX2, isaAVX512} {
		name := "SoftmaxColumns" + a.suffix
		TEXT(name, NOSPLIT, "func(s *float32, rows, ld int, inv *float32)")
		Pragma("noescape")
		Doc(fmt.Sprintf("%s sets, for each of the %d columns j from s (row i at s + i·ld elements, rows ≥ 1),", name, a.lanes),
			"s[i, j] = e^(s[i, j] − m_j) with m_j the column's largest value, and inv[j] = 1/Σ_i s[i, j]",
			"(ExpAVX2's exp, the sum in row order). "+a.needs+".")
		base := Load(Param("s"), GP64())
		rows := Load(Param("rows"), GP64())
		ld := Load(Param("ld"), GP64())
		SHLQ(U8(2), ld) // bytes
		ld3 := GP64()
		LEAQ(Mem{Base: ld, Index: ld, Scale: 2}, ld3)

		Comment("The largest value of each column.")
		inf := GP32()
		MOVL(U32(math.Float32bits(float32(math.Inf(-1)))), inf)
		t := XMM()
		VMOVD(inf, t)
		m := a.vec()
		VBROADCASTSS(t, m)
		p, n := GP64(), GP64()
		MOVQ(base, p)
		MOVQ(rows, n)
		Label(strings.ToLower(name) + "_max")
		VMAXPS(Mem{Base: p}, m, m)
		ADDQ(ld, p)
		DECQ(n)
		JNZ(LabelRef(strings.ToLower(name) + "_max"))

		Comment("s = e^(s−m) and the sum, expChains rows side by side, then one row at a time.")
		e := a.expRegs()
		sum := a.vec()
		zeroVec(sum, a.zmm)
		MOVQ(base, p)
		MOVQ(rows, n)
		at := func(j int) Mem {
			switch j {
			case 0:
				return Mem{Base: p}
			case 3:
				return Mem{Base: p, Index: ld3, Scale: 1}
			}
			return Mem{Base: p, Index: ld, Scale: uint8(j)}
		}
		step := func(k int) {
			vs := e.vecs(k)
			for j, v := range vs {
				VMOVUPS(at(j), v)
				VSUBPS(m, v, v)
			}
			for j, ev := range e.expN(vs) {
				VMOVUPS(ev, at(j))
				VADDPS(ev, sum, sum) // in row order, as one at a time
			}
		}
		chains := a.expChains
		wide, one, done := strings.ToLower(name)+"_wide", strings.ToLower(name)+"_one", strings.ToLower(name)+"_done"
		Label(wide)
		CMPQ(n, U32(chains))
		JB(LabelRef(one))
		step(chains)
		for range chains {
			ADDQ(ld, p)
		}
		SUBQ(U32(chains), n)
		JMP(LabelRef(wide))
		Label(one)
		TESTQ(n, n)
		JZ(LabelRef(done))
		step(1)
		ADDQ(ld, p)
		DECQ(n)
		JMP(LabelRef(one))
		Label(done)

		Comment("inv = 1/sum.")
		one1 := a.vec()
		VBROADCASTSS(expOne(), one1)
		VDIVPS(sum, one1, one1)
		VMOVUPS(one1, Mem{Base: Load(Param("inv"), GP64())})
		VZEROUPPER()
		RET()
	}
}
