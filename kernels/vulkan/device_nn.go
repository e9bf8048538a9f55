//go:build !windows

package vulkan

import (
	"github.com/godiffuse/godiffuse/tensor"
)

// ---------------------------------------------------------------------------
// Convolution, normalization, softmax, attention, upsampling and embedding
// lookups on the GPU (shaders conv.comp, norm.comp, attention.comp,
// misc.comp).
// ---------------------------------------------------------------------------

func (d *Device) orDummy(op string, b tensor.Buffer, n int) (*Buffer, uint32) {
	if b == nil {
		return d.dummy, 0
	}
	return d.f(op, b, n), 1
}

// grid2 spreads n workgroups (one per row, group or channel) over x and y.
func (d *Device) grid2(n int) (int, int) {
	maxX := int(d.c.limits.MaxComputeWorkGroupCount[0])
	if n <= maxX {
		return n, 1
	}
	return maxX, (n + maxX - 1) / maxX
}

// tiled picks the 128×128-tile variant of an implicit-GEMM shader when the
// M×N output is large enough to fill it, and returns its grid.
func tiled(name string, m, n int) (string, int, int) {
	if m >= 128 && n >= 128 {
		return name + "_big", (n + 127) / 128, (m + 127) / 128
	}
	return name, (n + 63) / 64, (m + 63) / 64
}

// convPush is conv.comp's push constants; kChunk is the K slice of one
// grid z under split-K (0: whole K; runSplitK sets it).
func convPush(p tensor.ConvParams, hasBias uint32, kChunk int) []uint32 {
	return []uint32{uint32(p.N), uint32(p.C), uint32(p.H), uint32(p.W), uint32(p.F), uint32(p.KH), uint32(p.KW),
		uint32(p.StrideH), uint32(p.StrideW), uint32(p.PadTop), uint32(p.PadLeft), uint32(p.OH), uint32(p.OW), hasBias,
		uint32(kChunk)}
}

// splitK divides a GEMM's K into slices, one per grid z, when its tiles
// alone would leave a GPU mostly idle (a weight gradient: dw is small, K is
// batch × pixels): enough slices for splitKGroups workgroups in all, each
// slice at least splitKMin long and a multiple of 16 (the tiles' K step).
// From splitKGroups/2 tiles up there is no split: that many already fill
// a large GPU once (two 128×128-tile workgroups per multiprocessor), and
// the 2048² SGEMM measured 12.6 TFLOP/s whole against 11.5 in two slices
// on the H200. It returns the slice count and length (1 and k: no split).
func splitK(tiles, k int) (slices, chunk int) {
	if tiles >= splitKGroups/2 {
		return 1, k
	}
	slices = min((splitKGroups+tiles-1)/tiles, k/splitKMin)
	if slices <= 1 {
		return 1, k
	}
	chunk = ((k+slices-1)/slices + 15) / 16 * 16
	return (k + chunk - 1) / chunk, chunk
}

const (
	// splitKGroups is the workgroups a split-K product aims at: a few per
	// multiprocessor of a large GPU (an H200 has 132).
	splitKGroups = 512
	// splitKMin is the shortest K slice worth its partial sum.
	splitKMin = 1024
)

// Conv2D implements tensor.Device as an implicit GEMM per image.
func (d *Device) Conv2D(y, x, w, b tensor.Buffer, p tensor.ConvParams) {
	yb := d.f("conv2d", y, p.N*p.F*p.OH*p.OW)
	xb := d.f("conv2d", x, p.N*p.C*p.H*p.W)
	wb := d.f("conv2d", w, p.F*p.C*p.KH*p.KW)
	bb, has := d.orDummy("conv2d", b, p.F)
	name, gx, gy := tiled("conv", p.F, p.OH*p.OW)
	d.runSplitK("conv2d", name, yb, []*Buffer{wb, xb, bb}, convPush(p, has, 0), gx, gy, p.N, p.C*p.KH*p.KW, p.N*p.F*p.OH*p.OW)
}

// Conv2DBackwardInput implements tensor.Device.
func (d *Device) Conv2DBackwardInput(dx, dy, w tensor.Buffer, p tensor.ConvParams) {
	dxb := d.f("conv2d backward input", dx, p.N*p.C*p.H*p.W)
	dyb := d.f("conv2d backward input", dy, p.N*p.F*p.OH*p.OW)
	wb := d.f("conv2d backward input", w, p.F*p.C*p.KH*p.KW)
	name, gx, gy := tiled("conv_backward_input", p.C, p.H*p.W)
	d.runSplitK("conv2d backward input", name, dxb, []*Buffer{wb, dyb, d.dummy}, convPush(p, 0, 0), gx, gy, p.N, p.F*p.KH*p.KW, p.N*p.C*p.H*p.W)
}

// runSplitK runs an implicit-GEMM pass (gemm.comp or conv.comp: grid
// gx × gy × z) into out (size values) with the operands in, split over K
// (splitK) where the grid alone would leave a GPU mostly idle: grid z then
// runs z × slices, the slices' partial outputs go to a scratch buffer and
// the reduce shader sums them into out. push ends with kChunk (0: whole K),
// set here.
func (d *Device) runSplitK(op, name string, out *Buffer, in []*Buffer, push []uint32, gx, gy, z, k, size int) {
	slices, chunk := splitK(gx*gy*z, k)
	if slices == 1 {
		d.run(name, append([]*Buffer{out}, in...), push, gx, gy, z)
		return
	}
	parts, err := d.Alloc(tensor.F32, slices*size)
	if err != nil {
		d.record(op, err)
		return
	}
	pb := d.f(op, parts, slices*size)
	push[len(push)-1] = uint32(chunk)
	d.run(name, append([]*Buffer{pb}, in...), push, gx, gy, z*slices)
	d.Reduce(tensor.ReduceSum, out, pb, tensor.ReduceParams{Outer: 1, N: slices, Inner: size})
}

// Conv2DBackwardWeight implements tensor.Device: dw as one GEMM over all
// images (split-K into partial sums, then their sum, where dw alone is too
// few tiles for the GPU), db as two reductions of dy.
func (d *Device) Conv2DBackwardWeight(dw, db, x, dy tensor.Buffer, p tensor.ConvParams) {
	xb := d.f("conv2d backward weight", x, p.N*p.C*p.H*p.W)
	dyb := d.f("conv2d backward weight", dy, p.N*p.F*p.OH*p.OW)
	if dw != nil {
		size := p.F * p.C * p.KH * p.KW
		dwb := d.f("conv2d backward weight", dw, size)
		name, gx, gy := tiled("conv_backward_weight", p.F, p.C*p.KH*p.KW)
		d.runSplitK("conv2d backward weight", name, dwb, []*Buffer{dyb, xb, d.dummy}, convPush(p, 0, 0), gx, gy, 1, p.N*p.OH*p.OW, size)
	}
	if db != nil {
		d.f("conv2d backward weight", db, p.F)
		tmp, err := d.Alloc(tensor.F32, p.N*p.F)
		if err != nil {
			d.record("conv2d backward weight", err)
			return
		}
		d.Reduce(tensor.ReduceSum, tmp, dy, tensor.ReduceParams{Outer: p.N * p.F, N: p.OH * p.OW, Inner: 1})
		d.Reduce(tensor.ReduceSum, db, tmp, tensor.ReduceParams{Outer: 1, N: p.N, Inner: p.F})
	}
}

// normSplit divides each of groups normalization groups of size values
// into parts for as many workgroups (norm_stats, norm_apply) when the groups
// alone would leave a GPU mostly idle: enough parts for about splitKGroups
// workgroups, each at least normPartMin values. It returns 1, size for no
// split.
func normSplit(groups, size int) (parts, chunk int) {
	parts = min((splitKGroups+groups-1)/groups, size/normPartMin)
	if parts <= 1 {
		return 1, size
	}
	chunk = (size + parts - 1) / parts
	return (size + chunk - 1) / chunk, chunk
}

// normPartMin is the fewest values a part of a split normalization group
// takes (32 per thread).
const normPartMin = 8192

// Norm implements tensor.Device.
func (d *Device) Norm(y, mean, rstd, x, gamma, beta tensor.Buffer, p tensor.NormParams) {
	n := p.N * p.G * p.CG * p.S
	yb, xb := d.f("norm", y, n), d.f("norm", x, n)
	if mean == nil { // inference: the shaders write the statistics somewhere all the same
		var err error
		if mean, err = d.Alloc(tensor.F32, p.N*p.G); err == nil {
			rstd, err = d.Alloc(tensor.F32, p.N*p.G)
		}
		if err != nil {
			d.record("norm", err)
			return
		}
	}
	mb, rb := d.f("norm", mean, p.N*p.G), d.f("norm", rstd, p.N*p.G)
	gb, hg := d.orDummy("norm", gamma, p.G*p.CG)
	bb, hb := d.orDummy("norm", beta, p.G*p.CG)
	push := []uint32{uint32(p.N), uint32(p.G), uint32(p.CG), uint32(p.S), f32bits(p.Eps), hg, hb}
	if parts, chunk := normSplit(p.N*p.G, p.CG*p.S); parts > 1 && p.N*p.G <= int(d.c.limits.MaxComputeWorkGroupCount[1]) {
		pieces, err := d.Alloc(tensor.F32, 2*parts*p.N*p.G)
		if err != nil {
			d.record("norm", err)
			return
		}
		pb := d.f("norm", pieces, 2*parts*p.N*p.G)
		d.run("norm_stats", []*Buffer{pb, xb}, []uint32{uint32(p.N), uint32(p.G), uint32(p.CG), uint32(p.S),
			uint32(parts), uint32(chunk)}, parts, p.N*p.G, 1)
		d.run("norm_apply", []*Buffer{yb, mb, rb, xb, gb, bb, pb}, append(push, uint32(parts), uint32(chunk)), parts, p.N*p.G, 1)
	} else {
		gx, gy := d.grid2(p.N * p.G)
		d.run("norm", []*Buffer{yb, mb, rb, xb, gb, bb}, push, gx, gy, 1)
	}
	if p.Activate { // a second dispatch over y (the CPU device fuses it)
		d.Unary(p.Act, y, y, n, tensor.UnaryParams{})
	}
}

// NormBackward implements tensor.Device.
func (d *Device) NormBackward(dx, dgamma, dbeta, dy, x, mean, rstd, gamma tensor.Buffer, p tensor.NormParams) {
	n := p.N * p.G * p.CG * p.S
	dyb, xb := d.f("norm backward", dy, n), d.f("norm backward", x, n)
	mb, rb := d.f("norm backward", mean, p.N*p.G), d.f("norm backward", rstd, p.N*p.G)
	dims := []uint32{uint32(p.N), uint32(p.G), uint32(p.CG), uint32(p.S)}
	if dx != nil {
		dxb := d.f("norm backward", dx, n)
		gb, hg := d.orDummy("norm backward", gamma, p.G*p.CG)
		gx, gy := d.grid2(p.N * p.G)
		d.run("norm_backward", []*Buffer{dxb, dyb, xb, mb, rb, gb}, append(dims, hg), gx, gy, 1)
	}
	if dgamma != nil || dbeta != nil {
		dgb, hdg := d.orDummy("norm backward", dgamma, p.G*p.CG)
		dbb, hdb := d.orDummy("norm backward", dbeta, p.G*p.CG)
		gx, gy := d.grid2(p.G * p.CG)
		d.run("norm_backward_params", []*Buffer{dgb, dbb, dyb, xb, mb, rb}, append(dims, hdg, hdb), gx, gy, 1)
	}
}

// Softmax implements tensor.Device.
func (d *Device) Softmax(y, x tensor.Buffer, p tensor.SoftmaxParams) {
	yb, xb := d.f("softmax", y, p.Rows*p.Cols), d.f("softmax", x, p.Rows*p.Cols)
	gx, gy := d.grid2(p.Rows)
	d.run("softmax", []*Buffer{yb, xb}, []uint32{uint32(p.Rows), uint32(p.Cols)}, gx, gy, 1)
}

// SoftmaxBackward implements tensor.Device.
func (d *Device) SoftmaxBackward(dx, y, dy tensor.Buffer, p tensor.SoftmaxParams) {
	d.softmaxBackward(d.f("softmax backward", dx, p.Rows*p.Cols), d.f("softmax backward", y, p.Rows*p.Cols),
		d.f("softmax backward", dy, p.Rows*p.Cols), p.Rows, p.Cols, 1)
}

func (d *Device) softmaxBackward(dx, y, dy *Buffer, rows, cols int, scale float32) {
	gx, gy := d.grid2(rows)
	d.run("softmax_backward", []*Buffer{dx, y, dy}, []uint32{uint32(rows), uint32(cols), f32bits(scale)}, gx, gy, 1)
}

// Attention implements tensor.Device: for every (batch, head) at once,
// probs = softmax(Scale·Q_h·K_hᵀ) and O_h = probs·V_h, as two strided
// batched GEMMs around a row softmax.
func (d *Device) Attention(o, probs, q, k, v tensor.Buffer, p tensor.AttentionParams) {
	if probs == nil { // inference: the probabilities in a temporary buffer
		tmp, err := d.Alloc(tensor.F32, p.B*p.Heads*p.Lq*p.Lk)
		if err != nil {
			d.record("attention", err)
			return
		}
		probs = tmp
	}
	C := p.Heads * p.D
	ob, qb := d.f("attention", o, p.B*p.Lq*C), d.f("attention", q, p.B*p.Lq*C)
	kb, vb := d.f("attention", k, p.B*p.Lk*C), d.f("attention", v, p.B*p.Lk*C)
	pb := d.f("attention", probs, p.B*p.Heads*p.Lq*p.Lk)
	qs, ks, ps := p.Lq*C, p.Lk*C, p.Heads*p.Lq*p.Lk
	gx, gy := d.grid2(p.B * p.Heads * p.Lq)
	if p.ChannelMajor { // heads stored transposed: Q_hᵀ, K_hᵀ, V_hᵀ; O_hᵀ = V_hᵀ·Pᵀ
		d.gemm(pb, qb, kb, gemmArgs{M: p.Lq, N: p.Lk, K: p.D, TransA: true, Alpha: p.Scale, LdA: p.Lq, LdB: p.Lk, LdC: p.Lk,
			Outer: p.B, Inner: p.Heads, SA0: qs, SB0: ks, SC0: ps, SA1: p.D * p.Lq, SB1: p.D * p.Lk, SC1: p.Lq * p.Lk})
		d.run("softmax", []*Buffer{pb, pb}, []uint32{uint32(p.B * p.Heads * p.Lq), uint32(p.Lk)}, gx, gy, 1)
		d.gemm(ob, vb, pb, gemmArgs{M: p.D, N: p.Lq, K: p.Lk, TransB: true, Alpha: 1, LdA: p.Lk, LdB: p.Lk, LdC: p.Lq,
			Outer: p.B, Inner: p.Heads, SA0: ks, SB0: ps, SC0: qs, SA1: p.D * p.Lk, SB1: p.Lq * p.Lk, SC1: p.D * p.Lq})
		return
	}
	d.gemm(pb, qb, kb, gemmArgs{M: p.Lq, N: p.Lk, K: p.D, TransB: true, Alpha: p.Scale, LdA: C, LdB: C, LdC: p.Lk,
		Outer: p.B, Inner: p.Heads, SA0: qs, SB0: ks, SC0: ps, SA1: p.D, SB1: p.D, SC1: p.Lq * p.Lk})
	d.run("softmax", []*Buffer{pb, pb}, []uint32{uint32(p.B * p.Heads * p.Lq), uint32(p.Lk)}, gx, gy, 1)
	d.gemm(ob, pb, vb, gemmArgs{M: p.Lq, N: p.D, K: p.Lk, Alpha: 1, LdA: p.Lk, LdB: C, LdC: C,
		Outer: p.B, Inner: p.Heads, SA0: ps, SB0: ks, SC0: qs, SA1: p.Lq * p.Lk, SB1: p.D, SC1: p.D})
}

// AttentionBackward implements tensor.Device (see the CPU's formulas):
// dP = dO·Vᵀ, dS = Scale·P ⊙ (dP − rowsum(P ⊙ dP)), dQ = dS·K, dK = dSᵀ·Q,
// dV = Pᵀ·dO, each a strided batched GEMM over (batch, head).
func (d *Device) AttentionBackward(dq, dk, dv, do, q, k, v, probs tensor.Buffer, p tensor.AttentionParams) {
	C := p.Heads * p.D
	op := "attention backward"
	dqb, dob, qb := d.f(op, dq, p.B*p.Lq*C), d.f(op, do, p.B*p.Lq*C), d.f(op, q, p.B*p.Lq*C)
	dkb, dvb := d.f(op, dk, p.B*p.Lk*C), d.f(op, dv, p.B*p.Lk*C)
	kb, vb := d.f(op, k, p.B*p.Lk*C), d.f(op, v, p.B*p.Lk*C)
	pb := d.f(op, probs, p.B*p.Heads*p.Lq*p.Lk)
	tmp, err := d.Alloc(tensor.F32, p.B*p.Heads*p.Lq*p.Lk)
	if err != nil {
		d.record(op, err)
		return
	}
	ds := tmp.(*Buffer)
	qs, ks, ps, pp := p.Lq*C, p.Lk*C, p.Heads*p.Lq*p.Lk, p.Lq*p.Lk
	batch := func(g gemmArgs, sa0, sb0, sc0, sa1, sb1, sc1 int) gemmArgs {
		g.Alpha, g.Outer, g.Inner = 1, p.B, p.Heads
		g.SA0, g.SB0, g.SC0, g.SA1, g.SB1, g.SC1 = sa0, sb0, sc0, sa1, sb1, sc1
		return g
	}
	if p.ChannelMajor { // see Attention: dQᵀ = Kᵀ·dSᵀ, dKᵀ = Qᵀ·dS, dVᵀ = dOᵀ·P (dS carries Scale)
		dq1, dk1 := p.D*p.Lq, p.D*p.Lk
		d.gemm(ds, dob, vb, batch(gemmArgs{M: p.Lq, N: p.Lk, K: p.D, TransA: true, LdA: p.Lq, LdB: p.Lk, LdC: p.Lk}, qs, ks, ps, dq1, dk1, pp))
		d.softmaxBackward(ds, pb, ds, p.B*p.Heads*p.Lq, p.Lk, p.Scale)
		d.gemm(dqb, kb, ds, batch(gemmArgs{M: p.D, N: p.Lq, K: p.Lk, TransB: true, LdA: p.Lk, LdB: p.Lk, LdC: p.Lq}, ks, ps, qs, dk1, pp, dq1))
		d.gemm(dkb, qb, ds, batch(gemmArgs{M: p.D, N: p.Lk, K: p.Lq, LdA: p.Lq, LdB: p.Lk, LdC: p.Lk}, qs, ps, ks, dq1, pp, dk1))
		d.gemm(dvb, dob, pb, batch(gemmArgs{M: p.D, N: p.Lk, K: p.Lq, LdA: p.Lq, LdB: p.Lk, LdC: p.Lk}, qs, ps, ks, dq1, pp, dk1))
		return
	}
	d.gemm(ds, dob, vb, batch(gemmArgs{M: p.Lq, N: p.Lk, K: p.D, TransB: true, LdA: C, LdB: C, LdC: p.Lk}, qs, ks, ps, p.D, p.D, pp))
	d.softmaxBackward(ds, pb, ds, p.B*p.Heads*p.Lq, p.Lk, p.Scale)
	d.gemm(dqb, ds, kb, batch(gemmArgs{M: p.Lq, N: p.D, K: p.Lk, LdA: p.Lk, LdB: C, LdC: C}, ps, ks, qs, pp, p.D, p.D))
	d.gemm(dkb, ds, qb, batch(gemmArgs{M: p.Lk, N: p.D, K: p.Lq, TransA: true, LdA: p.Lk, LdB: C, LdC: C}, ps, qs, ks, pp, p.D, p.D))
	d.gemm(dvb, pb, dob, batch(gemmArgs{M: p.Lk, N: p.D, K: p.Lq, TransA: true, LdA: p.Lk, LdB: C, LdC: C}, ps, qs, ks, pp, p.D, p.D))
}

// Upsample2x implements tensor.Device.
func (d *Device) Upsample2x(y, x tensor.Buffer, p tensor.UpsampleParams) {
	n := p.N * p.C * p.H * p.W
	yb, xb := d.f("upsample", y, 4*n), d.f("upsample", x, n)
	gx, gy := d.grid1(4 * n)
	d.run("upsample", []*Buffer{yb, xb}, []uint32{uint32(p.N), uint32(p.C), uint32(p.H), uint32(p.W)}, gx, gy, 1)
}

// Upsample2xBackward implements tensor.Device.
func (d *Device) Upsample2xBackward(dx, dy tensor.Buffer, p tensor.UpsampleParams) {
	n := p.N * p.C * p.H * p.W
	dxb, dyb := d.f("upsample backward", dx, n), d.f("upsample backward", dy, 4*n)
	gx, gy := d.grid1(n)
	d.run("upsample_backward", []*Buffer{dxb, dyb}, []uint32{uint32(p.N), uint32(p.C), uint32(p.H), uint32(p.W)}, gx, gy, 1)
}

// Gather implements tensor.Device.
func (d *Device) Gather(dst, table, idx tensor.Buffer, p tensor.GatherParams) {
	db, tb := d.f("gather", dst, p.Rows*p.Dim), d.f("gather", table, p.Num*p.Dim)
	ib := d.own("gather", idx, tensor.I64, 0, p.Rows)
	gx, gy := d.grid1(p.Rows * p.Dim)
	d.run("gather", []*Buffer{db, tb, ib}, []uint32{uint32(p.Rows), uint32(p.Num), uint32(p.Dim)}, gx, gy, 1)
}

// ScatterAdd implements tensor.Device.
func (d *Device) ScatterAdd(dtable, idx, src tensor.Buffer, p tensor.GatherParams) {
	db, sb := d.f("scatter add", dtable, p.Num*p.Dim), d.f("scatter add", src, p.Rows*p.Dim)
	ib := d.own("scatter add", idx, tensor.I64, 0, p.Rows)
	gx, gy := d.grid1(p.Num * p.Dim)
	d.run("scatter_add", []*Buffer{db, ib, sb}, []uint32{uint32(p.Rows), uint32(p.Num), uint32(p.Dim)}, gx, gy, 1)
}
