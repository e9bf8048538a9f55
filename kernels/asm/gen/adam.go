package main

import (
	. "github.com/mmcloughlin/avo/build"
	. "github.com/mmcloughlin/avo/operand"
	"github.com/mmcloughlin/avo/reg"
)

// Offsets in AdamAVX2's constant block (see generateAdam).
const (
	adamGradScale = iota
	adamDecay
	adamBeta1
	adamOneMinusBeta1
	adamBeta2
	adamOneMinusBeta2
	adamBias2Sqrt
	adamEps
	adamStepSize
	adamConsts
)

// generateAdam writes AdamAVX2: the AdamW update of the scalar loop in
// kernels.AdamStep (without L2), eight parameters at a time, with the same
// operations in the same order — separate multiplies and adds, no fused
// multiply-add, a correctly rounded square root and division — so that it
// gives the same bits:
//
//	g = grad·gradScale;  p = p·(1 − lr·wd)
//	m = m·β1 + g·(1−β1);  v = v·β2 + ((1−β2)·g)·g
//	p = p − (stepSize·m) / (√v / √(1−β2^t) + eps)
func generateAdam() {
	TEXT("AdamAVX2", NOSPLIT, "func(p, g, m, v []float32, c *[9]float32)")
	Pragma("noescape")
	Doc("AdamAVX2 applies one AdamW step to p[i], m[i], v[i] with gradient g[i] for i < len(p) rounded",
		"down to a multiple of 8 (the caller finishes the tail). c holds gradScale, 1 − lr·wd, β1, 1 − β1,",
		"β2, 1 − β2, √(1 − β2^t), eps and the step size. Same bits as the scalar loop. AVX2.")
	p := Load(Param("p").Base(), GP64())
	g := Load(Param("g").Base(), GP64())
	m := Load(Param("m").Base(), GP64())
	v := Load(Param("v").Base(), GP64())
	n := Load(Param("p").Len(), GP64())
	c := Load(Param("c"), GP64())
	SHRQ(U8(3), n)
	JZ(LabelRef("adam_done"))

	Comment("The nine constants, broadcast once.")
	k := make([]reg.VecVirtual, adamConsts)
	for i := range k {
		k[i] = YMM()
		VBROADCASTSS(Mem{Base: c, Disp: 4 * i}, k[i])
	}

	Label("adam_loop")
	gv, pv, mv, vv, t, u := YMM(), YMM(), YMM(), YMM(), YMM(), YMM()
	VMOVUPS(Mem{Base: g}, gv)
	VMULPS(k[adamGradScale], gv, gv)
	VMOVUPS(Mem{Base: p}, pv)
	VMULPS(k[adamDecay], pv, pv)
	Comment("m = m·β1 + g·(1−β1)")
	VMOVUPS(Mem{Base: m}, mv)
	VMULPS(k[adamBeta1], mv, mv)
	VMULPS(k[adamOneMinusBeta1], gv, t)
	VADDPS(t, mv, mv)
	VMOVUPS(mv, Mem{Base: m})
	Comment("v = v·β2 + ((1−β2)·g)·g")
	VMOVUPS(Mem{Base: v}, vv)
	VMULPS(k[adamBeta2], vv, vv)
	VMULPS(k[adamOneMinusBeta2], gv, t)
	VMULPS(gv, t, t)
	VADDPS(t, vv, vv)
	VMOVUPS(vv, Mem{Base: v})
	Comment("p = p − (stepSize·m) / (√v / √(1−β2^t) + eps)")
	VSQRTPS(vv, u)
	VDIVPS(k[adamBias2Sqrt], u, u)
	VADDPS(k[adamEps], u, u)
	VMULPS(k[adamStepSize], mv, t)
	VDIVPS(u, t, t)
	VSUBPS(t, pv, pv)
	VMOVUPS(pv, Mem{Base: p})
	for _, r := range []reg.Register{p, g, m, v} {
		ADDQ(U8(32), r)
	}
	DECQ(n)
	JNZ(LabelRef("adam_loop"))

	Label("adam_done")
	VZEROUPPER()
	RET()
}
