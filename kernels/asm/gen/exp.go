package main

import (
	"fmt"
	"math"
	"strings"

	. "github.com/mmcloughlin/avo/build"
	. "github.com/mmcloughlin/avo/operand"
	. "github.com/mmcloughlin/avo/reg"
)

// The vector exp, with the same algorithm as the scalar expf in package
// kernels:
//
//	t = clamp(x, -103.97, 88.72)      (NaN passes through)
//	n = round(t·log2 e),  r = t - n·ln2hi - n·ln2lo
//	p = 1 + r + r²/2 + … + r⁷/7!      (Horner, fused multiply-adds)
//	e^x = p · 2^⌊n/2⌋ · 2^(n-⌊n/2⌋)   (two exponent scalings, so subnormals and n = 128 work)
//
// ExpAVX2 applies it to a slice; SiLUAVX2 and SiLUGradAVX2 build on it.

var expVals = []float32{-103.97208, 88.72283, 1.4426950408889634, 0.693145751953125, 1.428606765330187e-06,
	1.0 / 5040, 1.0 / 720, 1.0 / 120, 1.0 / 24, 1.0 / 6, 0.5, 1}

// expData is the constant block, declared once for all the kernels.
var expData Mem

func declareExpConsts() {
	expData = GLOBL("expconsts", RODATA|NOPTR)
	for i, v := range expVals {
		// As bits: avo prints F32(1) as $(1), which the Go assembler reads as the integer 1.
		DATA(4*i, U32(math.Float32bits(v)))
	}
	DATA(4*len(expVals), U32(127))
}

func expConst(i int) Mem { return expData.Offset(4 * i) }

// expOne is the address of the constant 1.0.
func expOne() Mem { return expConst(len(expVals) - 1) }

// expRegs holds the constants the exp keeps in registers, and the width of
// its vectors: eight lanes (YMM, AVX2) or sixteen (ZMM, AVX-512F).
type expRegs struct {
	lo, hi, log2e, ln2hi, ln2lo, bias VecVirtual
	vec                               func() VecVirtual
	zmm                               bool
}

func loadExpRegs() expRegs { return loadExpRegsOf(YMM, false) }

// loadExpRegsOf is loadExpRegs for vectors made by vec (zmm: ZMM).
func loadExpRegsOf(vec func() VecVirtual, zmm bool) expRegs {
	Comment("Constants of the exp that stay in registers.")
	e := expRegs{vec(), vec(), vec(), vec(), vec(), vec(), vec, zmm}
	VBROADCASTSS(expConst(0), e.lo)
	VBROADCASTSS(expConst(1), e.hi)
	VBROADCASTSS(expConst(2), e.log2e)
	VBROADCASTSS(expConst(3), e.ln2hi)
	VBROADCASTSS(expConst(4), e.ln2lo)
	VPBROADCASTD(expConst(len(expVals)), e.bias)
	return e
}

// exp emits p = e^t for the lanes of t (t is overwritten) and returns p.
func (e expRegs) exp(t VecVirtual) VecVirtual { return e.expN([]VecVirtual{t})[0] }

// expN emits p = e^t for every vector of ts (overwritten) and returns the
// ps. The vectors go through each step together: one vector's exp is a
// chain of ~20 dependent operations, longer than the scheduler can cover
// with the next iteration's, so independent chains side by side keep the
// units busy. Each constant is broadcast once per step for all of them.
// Both widths run the same operations on every lane (VRNDSCALEPS with
// immediate 0 rounds as VROUNDPS does), so they give the same bits.
func (e expRegs) expN(ts []VecVirtual) []VecVirtual {
	each := func(f func(i int)) {
		for i := range ts {
			f(i)
		}
	}
	nf, p := e.vecs(len(ts)), e.vecs(len(ts))
	k := e.vec()
	Comment("Clamp, keeping NaN (MAXPS/MINPS return their first Go operand when it is NaN).")
	each(func(i int) { VMAXPS(ts[i], e.lo, ts[i]) })
	each(func(i int) { VMINPS(ts[i], e.hi, ts[i]) })
	Comment("n = round(t·log2e); r = t - n·ln2 in two parts (t becomes r).")
	each(func(i int) { VMULPS(e.log2e, ts[i], nf[i]) })
	each(func(i int) {
		if e.zmm {
			VRNDSCALEPS(U8(0), nf[i], nf[i])
		} else {
			VROUNDPS(U8(0), nf[i], nf[i])
		}
	})
	each(func(i int) { VFNMADD231PS(nf[i], e.ln2hi, ts[i]) })
	each(func(i int) { VFNMADD231PS(nf[i], e.ln2lo, ts[i]) })
	Comment("p = Σ r^k/k!, Horner from 1/7!.")
	each(func(i int) { VBROADCASTSS(expConst(5), p[i]) })
	for c := 6; c <= len(expVals); c++ {
		if c < len(expVals) {
			VBROADCASTSS(expConst(c), k)
		} else {
			VBROADCASTSS(expOne(), k)
		}
		each(func(i int) { VFMADD213PS(k, ts[i], p[i]) })
	}
	if e.zmm {
		// p·2^n rounded once, as the two exact-then-rounding multiplies
		// below give it (subnormal results, and n = 128, included).
		Comment("Scale by 2^n (VSCALEFPS: one rounding, as the two steps of the AVX2 form).")
		each(func(i int) { VSCALEFPS(nf[i], p[i], p[i]) })
		return p
	}
	Comment("Scale by 2^n as 2^(n>>1) · 2^(n - n>>1), building each factor's exponent bits.")
	ni, n1 := e.vecs(len(ts)), e.vecs(len(ts))
	each(func(i int) { VCVTPS2DQ(nf[i], ni[i]) })
	each(func(i int) { VPSRAD(U8(1), ni[i], n1[i]) })
	each(func(i int) { VPSUBD(n1[i], ni[i], ni[i]) })
	each(func(i int) { VPADDD(e.bias, n1[i], n1[i]) })
	each(func(i int) { VPSLLD(U8(23), n1[i], n1[i]) })
	each(func(i int) { VPADDD(e.bias, ni[i], ni[i]) })
	each(func(i int) { VPSLLD(U8(23), ni[i], ni[i]) })
	each(func(i int) { VMULPS(n1[i], p[i], p[i]) })
	each(func(i int) { VMULPS(ni[i], p[i], p[i]) })
	return p
}

// vecs returns n new vector registers of e's width.
func (e expRegs) vecs(n int) []VecVirtual {
	v := make([]VecVirtual, n)
	for i := range v {
		v[i] = e.vec()
	}
	return v
}

// zeroVec emits v = 0: VXORPS, or VPXORD on ZMM (VXORPS there needs
// AVX-512DQ, and the AVX-512 kernels ask only for AVX-512F).
func zeroVec(v VecVirtual, zmm bool) {
	if zmm {
		VPXORD(v, v, v)
	} else {
		VXORPS(v, v, v)
	}
}

// sigmoidN emits s = 1/(1 + e^-x) for the lanes of each x (the xs are kept).
func (e expRegs) sigmoidN(xs []VecVirtual) []VecVirtual {
	ts := e.vecs(len(xs))
	Comment("σ(x) = 1/(1 + e^-x)")
	for i, x := range xs {
		zeroVec(ts[i], e.zmm)
		VSUBPS(x, ts[i], ts[i])
	}
	ps := e.expN(ts)
	one := e.vec()
	VBROADCASTSS(expOne(), one)
	for _, p := range ps {
		VADDPS(one, p, p)
	}
	for _, p := range ps {
		VDIVPS(p, one, p)
	}
	return ps
}

// elementwise emits the loop of a kernel over len(first) rounded down to a
// multiple of 8 of the given slices; body gets the current pointers.
func elementwise(name string, params []string, body func(ptrs []GPVirtual)) {
	elementwiseLanes(name, params, 8, body)
}

// elementwiseLanes is elementwise with vectors of 8 or 16 float32 lanes.
func elementwiseLanes(name string, params []string, lanes int, body func(ptrs []GPVirtual)) {
	vecLoop(name, params, lanes, body)
	VZEROUPPER()
	RET()
}

// vecLoop emits a loop over len(first) rounded down to a multiple of lanes
// values of the float32 slices params: body gets their current pointers
// and handles lanes values of each; the caller emits what follows the loop.
func vecLoop(name string, params []string, lanes int, body func(ptrs []GPVirtual)) []GPVirtual {
	ptrs := make([]GPVirtual, len(params))
	for i, p := range params {
		ptrs[i] = Load(Param(p).Base(), GP64()).(GPVirtual)
	}
	n := Load(Param(params[0]).Len(), GP64())
	SHRQ(U8(map[int]uint8{8: 3, 16: 4}[lanes]), n)
	JZ(LabelRef(name + "_done"))
	Label(name + "_loop")
	body(ptrs)
	for _, p := range ptrs {
		ADDQ(U8(4*lanes), p)
	}
	DECQ(n)
	JNZ(LabelRef(name + "_loop"))
	Label(name + "_done")
	return ptrs
}

// vecLoopN is vecLoop handling unroll vectors of each slice per iteration
// while that many are left, then one at a time: body(ptrs, k) handles k
// vectors at each pointer, vector j at byte offset 4·lanes·j.
func vecLoopN(name string, params []string, lanes, unroll int, body func(ptrs []GPVirtual, k int)) []GPVirtual {
	ptrs := make([]GPVirtual, len(params))
	for i, p := range params {
		ptrs[i] = Load(Param(p).Base(), GP64()).(GPVirtual)
	}
	n := Load(Param(params[0]).Len(), GP64())
	SHRQ(U8(map[int]uint8{8: 3, 16: 4}[lanes]), n)
	if unroll > 1 {
		Label(name + "_wide")
		CMPQ(n, U32(unroll))
		JB(LabelRef(name + "_one"))
		body(ptrs, unroll)
		for _, p := range ptrs {
			ADDQ(U32(4*lanes*unroll), p)
		}
		SUBQ(U32(unroll), n)
		JMP(LabelRef(name + "_wide"))
	}
	Label(name + "_one")
	TESTQ(n, n)
	JZ(LabelRef(name + "_done"))
	body(ptrs, 1)
	for _, p := range ptrs {
		ADDQ(U8(4*lanes), p)
	}
	DECQ(n)
	JMP(LabelRef(name + "_one"))
	Label(name + "_done")
	return ptrs
}

// vecAt is vector j of the slice at p.
func vecAt(p GPVirtual, lanes, j int) Mem { return Mem{Base: p, Disp: 4 * lanes * j} }

// isa names a vector width the exp kernels come in: the suffix of their
// names, the instruction sets they need, and the lanes of a register.
type isa struct {
	suffix, needs string
	lanes         int
	vec           func() VecVirtual
	zmm           bool
	// expChains is how many vectors the exp-based kernels carry through
	// each step side by side (expN): as many as the registers hold.
	expChains int
}

var (
	isaAVX2   = isa{"AVX2", "AVX2+FMA", 8, YMM, false, 2}
	isaAVX512 = isa{"AVX512", "AVX-512F", 16, ZMM, true, 4}
)

func (a isa) expRegs() expRegs { return loadExpRegsOf(a.vec, a.zmm) }

func generateExp() {
	for _, a := range []isa{isaAVX2, isaAVX512} {
		name := "Exp" + a.suffix
		TEXT(name, NOSPLIT, "func(dst, src []float32)")
		Pragma("noescape")
		Doc(fmt.Sprintf("%s sets dst[i] = e^src[i] for i < len(src) rounded down to a multiple of %d", name, a.lanes),
			"(the caller finishes the tail). Within 2 ulp of math.Exp on [-87, 88]; saturates outside. "+a.needs+".")
		e := a.expRegs()
		vecLoopN(strings.ToLower(name), []string{"src", "dst"}, a.lanes, a.expChains, func(p []GPVirtual, k int) {
			ts := e.vecs(k)
			for j, t := range ts {
				VMOVUPS(vecAt(p[0], a.lanes, j), t)
			}
			for j, v := range e.expN(ts) {
				VMOVUPS(v, vecAt(p[1], a.lanes, j))
			}
		})
		VZEROUPPER()
		RET()
	}
}

// generateSiLU writes the fused SiLU kernels: one pass instead of four
// (negate, exp, 1/(1+e), multiply), with the operations of that sequence in
// the same order, so the results keep the same bits.
// siluLoop emits the body and return of a kernel func(dst, src …) that
// stores x·σ(x) to dst, x being what load puts in a register from a vector
// of src.
func siluLoop(name string, a isa, e expRegs, load func(m Mem, x VecVirtual)) {
	vecLoopN(strings.ToLower(name), []string{"src", "dst"}, a.lanes, a.expChains, func(p []GPVirtual, k int) {
		xs := e.vecs(k)
		for j, x := range xs {
			load(vecAt(p[0], a.lanes, j), x)
		}
		for j, s := range e.sigmoidN(xs) {
			VMULPS(xs[j], s, s)
			VMOVUPS(s, vecAt(p[1], a.lanes, j))
		}
	})
	VZEROUPPER()
	RET()
}

func generateSiLU() {
	for _, a := range []isa{isaAVX2, isaAVX512} {
		name := "SiLU" + a.suffix
		TEXT(name, NOSPLIT, "func(dst, src []float32)")
		Pragma("noescape")
		Doc(fmt.Sprintf("%s sets dst[i] = src[i]·σ(src[i]) for i < len(src) rounded down to a multiple of %d", name, a.lanes),
			"(the caller finishes the tail), σ(x) = 1/(1 + e^-x) with ExpAVX2's exp. "+a.needs+".")
		e := a.expRegs()
		siluLoop(name, a, e, func(m Mem, x VecVirtual) { VMOVUPS(m, x) })

		name = "AffineSiLU" + a.suffix
		TEXT(name, NOSPLIT, "func(dst, src []float32, a, b float32)")
		Pragma("noescape")
		Doc(fmt.Sprintf("%s sets dst[i] = y·σ(y), y = src[i]·a + b, for i < len(src) rounded down to a multiple", name),
			fmt.Sprintf("of %d (the caller finishes the tail; dst may be src): a normalization's affine map and SiLU", a.lanes),
			"in one pass, with the bits of AffineAVX2 then "+"SiLU"+a.suffix+". "+a.needs+".")
		e = a.expRegs()
		av, bv := a.vec(), a.vec()
		VBROADCASTSS(paramMem(Param("a")), av)
		VBROADCASTSS(paramMem(Param("b")), bv)
		siluLoop(name, a, e, func(m Mem, x VecVirtual) {
			VMULPS(m, av, x)
			VADDPS(bv, x, x)
		})

		name = "SiLUGrad" + a.suffix
		TEXT(name, NOSPLIT, "func(dx, x, dy []float32)")
		Pragma("noescape")
		Doc(fmt.Sprintf("%s sets dx[i] = dy[i]·σ·(1 + x[i]·(1 − σ)), σ = σ(x[i]), for i < len(x) rounded", name),
			fmt.Sprintf("down to a multiple of %d (the caller finishes the tail). %s.", a.lanes, a.needs))
		e = a.expRegs()
		vecLoopN(strings.ToLower(name), []string{"x", "dy", "dx"}, a.lanes, a.expChains, func(p []GPVirtual, k int) {
			xs := e.vecs(k)
			for j, x := range xs {
				VMOVUPS(vecAt(p[0], a.lanes, j), x)
			}
			ss := e.sigmoidN(xs)
			Comment("dx = (dy·σ)·(1 + x·(1 − σ))")
			one := a.vec()
			VBROADCASTSS(expOne(), one)
			for j, s := range ss {
				g := a.vec()
				VSUBPS(s, one, g)
				VMULPS(g, xs[j], g)
				VADDPS(g, one, g)
				VMULPS(vecAt(p[1], a.lanes, j), s, s)
				VMULPS(g, s, s)
				VMOVUPS(s, vecAt(p[2], a.lanes, j))
			}
		})
		VZEROUPPER()
		RET()
	}
}
