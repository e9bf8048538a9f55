package tensor

import (
	"math"
	"slices"
)

// ---------------------------------------------------------------------------
// Neural-network ops: convolution, normalization, softmax, attention,
// upsampling, concatenation, embedding lookup, dropout.
// ---------------------------------------------------------------------------

// Pad4 is a zero padding (top, bottom, left, right).
type Pad4 [4]int

// PadAll pads every side by p.
func PadAll(p int) Pad4 { return Pad4{p, p, p, p} }

// Conv2D is torch.nn.functional.conv2d with zero padding pad (which may be
// asymmetric) and the same stride on both axes.
//
//	x is (N, C, H, W), w is (F, C, KH, KW), b is (F) or nil -> (N, F, OH, OW)
func Conv2D(x, w, b *Tensor, stride int, pad Pad4) *Tensor {
	wantF32("conv2d", x, b)
	wantWeight("conv2d", w)
	sameDevice("conv2d", x, w, b)
	if x.Rank() != 4 || w.Rank() != 4 || x.Dim(1) != w.Dim(1) {
		fail("conv2d", "input %v and weight %v (want (N, C, H, W) and (F, C, KH, KW))", x.shape, w.shape)
	}
	if b != nil && (b.Rank() != 1 || b.Dim(0) != w.Dim(0)) {
		fail("conv2d", "bias %v for weight %v", b.shape, w.shape)
	}
	if stride < 1 || slices.Min(pad[:]) < 0 {
		fail("conv2d", "stride %d and padding %v (want stride ≥ 1, padding ≥ 0)", stride, pad)
	}
	p := ConvParams{
		N: x.Dim(0), C: x.Dim(1), H: x.Dim(2), W: x.Dim(3),
		F: w.Dim(0), KH: w.Dim(2), KW: w.Dim(3), StrideH: stride, StrideW: stride,
		PadTop: pad[0], PadBottom: pad[1], PadLeft: pad[2], PadRight: pad[3],
	}
	p.OH = (p.H+p.PadTop+p.PadBottom-p.KH)/stride + 1
	p.OW = (p.W+p.PadLeft+p.PadRight-p.KW)/stride + 1
	if p.H+p.PadTop+p.PadBottom < p.KH || p.W+p.PadLeft+p.PadRight < p.KW {
		fail("conv2d", "kernel %dx%d larger than padded input %v", p.KH, p.KW, x.shape)
	}
	xc, wc := x.Contiguous(), w.Contiguous()
	y := emptyOut(x.dev, p.N, p.F, p.OH, p.OW)
	var bb Buffer
	if b != nil {
		bb = b.Contiguous().buf
	}
	if y.Numel() > 0 {
		x.dev.Conv2D(y.buf, xc.buf, wc.buf, bb, p)
	}
	if anyNeedsGrad(xc, wc, b) {
		recordConv("conv2d", y, xc, wc, b, p.F,
			func(dx, dy, w Buffer) { y.dev.Conv2DBackwardInput(dx, dy, w, p) },
			func(dw, db, x, dy Buffer) { y.dev.Conv2DBackwardWeight(dw, db, x, dy, p) })
	}
	return y
}

// recordConv records the backward pass of a convolution y = conv(xc, wc) + b
// (b may be nil; f output channels) through the device's two gradient
// passes: the input gradient, and the weight gradient with the bias's.
// Callers call it only when a gradient is wanted (anyNeedsGrad), so that a
// forward without gradients does not build the two closures.
func recordConv(name string, y, xc, wc, b *Tensor, f int, backInput func(dx, dy, w Buffer), backWeight func(dw, db, x, dy Buffer)) {
	xd, wd := xc.Detach(), wc.Detach()
	y.record(name, func(g *Tensor) {
		g = g.Contiguous()
		// The kernels write every value of dx, dw and db (their tests fill
		// them with NaN first), so a recycled buffer needs no clearing.
		if xc.needsGrad() {
			dx := emptyOut(g.dev, xc.shape...)
			if dx.Numel() > 0 {
				backInput(dx.buf, g.buf, wd.buf)
			}
			xc.accumulate(dx)
		}
		if wc.needsGrad() || (b != nil && b.needsGrad()) {
			dw := emptyOut(g.dev, wc.shape...)
			var db *Tensor
			var dbb Buffer
			if b != nil {
				db = emptyOut(g.dev, f)
				dbb = db.buf
			}
			backWeight(dw.buf, dbb, xd.buf, g.buf)
			wc.accumulate(dw)
			if b != nil {
				b.accumulate(db)
			}
		}
	}, xc, wc, b)
}

// norm runs the shared GroupNorm/LayerNorm kernel. inPlace: x's storage
// takes the result when no gradient flows and x is dense (the kernel takes
// each group's statistics before it writes the group).
func norm(name string, x, gamma, beta *Tensor, p NormParams, inPlace bool) *Tensor {
	wantF32(name, x, gamma, beta)
	sameDevice(name, x, gamma, beta)
	xc := x.Contiguous()
	// The statistics, read only by the backward: bare buffers (no tensor
	// headers) that the kernel fills, one per (image, group); none without
	// a backward (54 arrays and their headers a batch-1 tiny-mnist forward).
	record := anyNeedsGrad(xc, gamma, beta)
	y := xc
	if record || !inPlace || xc != x {
		y = emptyOut(x.dev, x.shape...)
	}
	var mean, rstd Buffer
	if record {
		mean, rstd = outBuffer(x.dev, p.N*p.G), outBuffer(x.dev, p.N*p.G)
	}
	var gb, bb Buffer
	if gamma != nil {
		gamma = gamma.Contiguous()
		gb = gamma.buf
	}
	if beta != nil {
		beta = beta.Contiguous()
		bb = beta.buf
	}
	if y.Numel() > 0 {
		x.dev.Norm(y.buf, mean, rstd, xc.buf, gb, bb, p)
	}
	if record {
		xd := xc.Detach()
		y.record(name, func(g *Tensor) {
			g = g.Contiguous()
			// NormBackward writes all of dx, dg and db (its test fills them
			// with NaN first); with no values to normalize it does not run,
			// and dg, db are zeros.
			alloc := emptyOut
			if xd.Numel() == 0 {
				alloc = Zeros
			}
			dx := alloc(g.dev, xd.shape...)
			var dg, db *Tensor
			var dgb, dbb Buffer
			if gamma != nil {
				dg = alloc(g.dev, gamma.shape...)
				dgb = dg.buf
			}
			if beta != nil {
				db = alloc(g.dev, beta.shape...)
				dbb = db.buf
			}
			if dx.Numel() > 0 {
				g.dev.NormBackward(dx.buf, dgb, dbb, g.buf, xd.buf, mean, rstd, gb, p)
			}
			xc.accumulate(dx)
			if gamma != nil {
				gamma.accumulate(dg)
			}
			if beta != nil {
				beta.accumulate(db)
			}
		}, xc, gamma, beta)
	}
	return y
}

// GroupNorm is torch.nn.functional.group_norm: x is (N, C, ...), statistics
// per (sample, group) with the biased variance; gamma and beta are (C) or nil.
func GroupNorm(x *Tensor, groups int, gamma, beta *Tensor, eps float32) *Tensor {
	return norm("group_norm", x, gamma, beta, groupNormParams(x, groups, gamma, beta, eps), false)
}

// GroupNormAct is Activation(act, GroupNorm(x, …)): in inference in one pass
// over the tensor (NormParams.Activate), with the same values; when a
// gradient flows, the two ops recorded one after the other.
func GroupNormAct(x *Tensor, groups int, gamma, beta *Tensor, eps float32, act string) *Tensor {
	return groupNormAct(x, groups, gamma, beta, eps, act, false)
}

// GroupNormActInPlace is GroupNormAct for an x that the caller holds alone
// and does not use again (a convolution's fresh output, as
// ActivationInPlace): when no gradient flows and x is dense, x's buffer
// takes the result, and x is returned — no fresh tensor, and the pass reads
// and writes the same cache lines. Otherwise it is GroupNormAct.
func GroupNormActInPlace(x *Tensor, groups int, gamma, beta *Tensor, eps float32, act string) *Tensor {
	return groupNormAct(x, groups, gamma, beta, eps, act, true)
}

func groupNormAct(x *Tensor, groups int, gamma, beta *Tensor, eps float32, act string, inPlace bool) *Tensor {
	op := activationOp(act)
	if anyNeedsGrad(x, gamma, beta) {
		return ActivationInPlace(act, GroupNorm(x, groups, gamma, beta, eps))
	}
	p := groupNormParams(x, groups, gamma, beta, eps)
	p.Activate, p.Act = true, op
	return norm("group_norm", x, gamma, beta, p, inPlace)
}

// groupNormParams checks a group norm's operands and lays x out as (N,
// groups, C/groups, spatial).
func groupNormParams(x *Tensor, groups int, gamma, beta *Tensor, eps float32) NormParams {
	if x.Rank() < 2 || groups < 1 || x.Dim(1)%groups != 0 {
		fail("group_norm", "%d groups for input %v (want (N, C, ...) with C divisible by groups)", groups, x.shape)
	}
	c := x.Dim(1)
	for _, t := range []*Tensor{gamma, beta} {
		if t != nil && (t.Rank() != 1 || t.Dim(0) != c) {
			fail("group_norm", "affine parameter %v for %d channels", t.shape, c)
		}
	}
	return NormParams{N: x.Dim(0), G: groups, CG: c / groups, S: numel(x.shape[2:]), Eps: eps}
}

// LayerNorm normalizes over the last axis (D); gamma and beta are (D) or nil.
func LayerNorm(x, gamma, beta *Tensor, eps float32) *Tensor {
	if x.Rank() < 1 {
		fail("layer_norm", "want at least one axis")
	}
	d := x.Dim(-1)
	for _, t := range []*Tensor{gamma, beta} {
		if t != nil && (t.Rank() != 1 || t.Dim(0) != d) {
			fail("layer_norm", "affine parameter %v for last axis %d", t.shape, d)
		}
	}
	return norm("layer_norm", x, gamma, beta, NormParams{N: x.Numel() / max(d, 1), G: 1, CG: d, S: 1, Eps: eps}, false)
}

// Softmax is taken over the last axis.
func Softmax(x *Tensor) *Tensor {
	wantF32("softmax", x)
	if x.Rank() < 1 {
		fail("softmax", "want at least one axis")
	}
	xc := x.Contiguous()
	p := SoftmaxParams{Rows: x.Numel() / max(x.Dim(-1), 1), Cols: x.Dim(-1)}
	y := emptyOut(x.dev, x.shape...)
	if y.Numel() > 0 {
		x.dev.Softmax(y.buf, xc.buf, p)
	}
	if xc.needsGrad() {
		yd := y.Detach()
		y.record("softmax", func(g *Tensor) {
			g = g.Contiguous()
			dx := Empty(g.dev, F32, g.shape...)
			if dx.Numel() > 0 {
				g.dev.SoftmaxBackward(dx.buf, yd.buf, g.buf, p)
			}
			xc.accumulate(dx)
		}, xc)
	}
	return y
}

// Attention is multi-head scaled-dot-product attention on token-major
// tensors: q is (B, Lq, heads·D), k and v are (B, Lk, heads·D); head h uses
// channels [h·D, (h+1)·D). The result is (B, Lq, heads·D):
//
//	o_h = softmax(q_h·k_hᵀ/√D)·v_h
func Attention(q, k, v *Tensor, heads int) *Tensor {
	return attention("attention", q, k, v, heads, false)
}

// AttentionChannels is Attention on channel-major tensors, the layout of
// an NCHW image: q is (B, heads·D, Lq), k and v are (B, heads·D, Lk), the
// result (B, heads·D, Lq) — or each has several token axes after the
// channels, (B, heads·D, H, W), flattened in row-major order (the result
// then has q's shape). A U-Net's attention block runs on its image this
// way with no transposes or reshapes in or out.
func AttentionChannels(q, k, v *Tensor, heads int) *Tensor {
	return attention("attention_channels", q, k, v, heads, true)
}

func attention(op string, q, k, v *Tensor, heads int, channelMajor bool) *Tensor {
	wantF32(op, q, k, v)
	sameDevice(op, q, k, v)
	c, lq, lk := 2, 1, 1 // the axes of channels and of tokens
	want := "(B, L, heads·D) each"
	if channelMajor {
		c, lq, lk = 1, 2, 2
		want = "(B, heads·D, L) or (B, heads·D, H, W) each"
	}
	rankOK := q.Rank() == 3 && k.Rank() == 3
	if channelMajor {
		rankOK = q.Rank() >= 3 && k.Rank() >= 3
	}
	if !rankOK || !slices.Equal(k.shape, v.shape) || q.Dim(0) != k.Dim(0) ||
		q.Dim(c) != k.Dim(c) || heads < 1 || q.Dim(c)%heads != 0 {
		fail(op, "q %v, k %v, v %v with %d heads (want %s)", q.shape, k.shape, v.shape, heads, want)
	}
	d := q.Dim(c) / heads
	tokens := func(t *Tensor, axis int) int { // the product of the token axes
		if !channelMajor {
			return t.Dim(axis)
		}
		return numel(t.shape[2:])
	}
	p := AttentionParams{B: q.Dim(0), Heads: heads, Lq: tokens(q, lq), Lk: tokens(k, lk), D: d,
		Scale: float32(1 / math.Sqrt(float64(d))), ChannelMajor: channelMajor}
	qc, kc, vc := q.Contiguous(), k.Contiguous(), v.Contiguous()
	o := emptyOut(q.dev, q.shape...)
	grad := anyNeedsGrad(qc, kc, vc)
	var probs *Tensor
	var pb Buffer // nil without a gradient to take: the device may then work in tiles
	if grad {
		probs = Empty(q.dev, F32, p.B, heads, p.Lq, p.Lk)
		pb = probs.buf
	}
	if o.Numel() > 0 && p.Lk > 0 {
		q.dev.Attention(o.buf, pb, qc.buf, kc.buf, vc.buf, p)
	}
	if grad {
		qd, kd, vd := qc.Detach(), kc.Detach(), vc.Detach()
		o.record(op, func(g *Tensor) {
			g = g.Contiguous()
			dq, dk, dv := Empty(g.dev, F32, qd.shape...), Empty(g.dev, F32, kd.shape...), Empty(g.dev, F32, vd.shape...)
			if g.Numel() > 0 && p.Lk > 0 {
				g.dev.AttentionBackward(dq.buf, dk.buf, dv.buf, g.buf, qd.buf, kd.buf, vd.buf, probs.buf, p)
			}
			Release(probs) // read by this backward only
			qc.accumulate(dq)
			kc.accumulate(dk)
			vc.accumulate(dv)
		}, qc, kc, vc)
	}
	return o
}

// Upsample2x is nearest-neighbour upsampling by 2 of (N, C, H, W) input.
func Upsample2x(x *Tensor) *Tensor {
	wantF32("upsample2x", x)
	if x.Rank() != 4 {
		fail("upsample2x", "input %v (want (N, C, H, W))", x.shape)
	}
	p := UpsampleParams{N: x.Dim(0), C: x.Dim(1), H: x.Dim(2), W: x.Dim(3)}
	xc := x.Contiguous()
	y := emptyOut(x.dev, p.N, p.C, 2*p.H, 2*p.W)
	if y.Numel() > 0 {
		x.dev.Upsample2x(y.buf, xc.buf, p)
	}
	if xc.needsGrad() {
		y.record("upsample2x", func(g *Tensor) {
			g = g.Contiguous()
			dx := Empty(g.dev, F32, xc.shape...)
			if dx.Numel() > 0 {
				g.dev.Upsample2xBackward(dx.buf, g.buf, p)
			}
			xc.accumulate(dx)
		}, xc)
	}
	return y
}

// Concat joins tensors along axis; all other axes must match.
func Concat(axis int, ts ...*Tensor) *Tensor {
	if len(ts) == 0 {
		fail("concat", "no tensors")
	}
	wantF32("concat", ts...)
	sameDevice("concat", ts...)
	axis = ts[0].axis("concat", axis)
	var dims [8]int // the result's shape, on the stack where it fits
	shape := append(dims[:0], ts[0].shape...)
	shape[axis] = 0
	for _, t := range ts {
		if t.Rank() != len(shape) {
			fail("concat", "ranks differ: %v and %v", ts[0].shape, t.shape)
		}
		for i := range shape {
			if i != axis && t.shape[i] != shape[i] {
				fail("concat", "shapes %v and %v differ off axis %d", ts[0].shape, t.shape, axis)
			}
		}
		shape[axis] += t.shape[axis]
	}
	out := emptyOut(ts[0].dev, shape...)
	at := 0
	for _, t := range ts {
		if t.Numel() > 0 {
			// out's part from at on along axis (out.Narrow's view, without its header)
			part := Strided{Buf: out.buf, Off: out.off + at*out.strides[axis], Strides: out.strides}
			copyView(out.dev, part, t.strided(), t.shape)
		}
		at += t.shape[axis]
	}
	if anyNeedsGrad(ts...) {
		parts := slices.Clone(ts)
		out.record("concat", func(g *Tensor) {
			at := 0
			for _, t := range parts {
				t.accumulate(g.Narrow(axis, at, t.shape[axis]))
				at += t.shape[axis]
			}
		}, parts...)
	}
	return out
}

// Split cuts t along axis into pieces of the given sizes (views).
func Split(t *Tensor, axis int, sizes ...int) []*Tensor {
	axis = t.axis("split", axis)
	total := 0
	for _, s := range sizes {
		total += s
	}
	if total != t.shape[axis] {
		fail("split", "sizes %v do not add up to axis %d of %v", sizes, axis, t.shape)
	}
	out := make([]*Tensor, len(sizes))
	at := 0
	for i, s := range sizes {
		out[i] = t.Narrow(axis, at, s)
		at += s
	}
	return out
}

// Embedding looks up rows of table (Num, Dim) at the int64 indices idx; the
// result has shape idx.shape + (Dim). Indices must lie in [0, Num).
func Embedding(idx, table *Tensor) *Tensor {
	wantF32("embedding", table)
	sameDevice("embedding", idx, table)
	if idx.dtype != I64 || !idx.IsDense() || table.Rank() != 2 {
		fail("embedding", "want dense int64 indices and a (Num, Dim) table, have %s and %v", idx, table.shape)
	}
	p := GatherParams{Rows: idx.Numel(), Num: table.Dim(0), Dim: table.Dim(1)}
	tc := table.Contiguous()
	out := Empty(table.dev, F32, append(slices.Clone(idx.shape), p.Dim)...)
	if out.Numel() > 0 {
		table.dev.Gather(out.buf, tc.buf, idx.buf, p)
	}
	if tc.needsGrad() {
		out.record("embedding", func(g *Tensor) {
			g = g.Contiguous()
			dt := Zeros(g.dev, tc.shape...)
			if g.Numel() > 0 {
				g.dev.ScatterAdd(dt.buf, idx.buf, g.buf, p)
			}
			tc.accumulate(dt)
		}, tc)
	}
	return out
}

// Dropout zeroes each element with probability p and scales the rest by
// 1/(1-p). The mask is a pure function of (seed, element index), so the same
// seed gives the same mask on every device. p = 0 returns x itself.
func Dropout(x *Tensor, p float32, seed uint64) *Tensor {
	if p == 0 {
		return x
	}
	if p < 0 || p >= 1 {
		fail("dropout", "probability %g (want 0 ≤ p < 1)", p)
	}
	wantF32("dropout", x)
	dp := DropoutParams{P: p, Seed: seed}
	xc := x.Contiguous()
	y := Empty(x.dev, F32, x.shape...)
	if n := y.Numel(); n > 0 {
		x.dev.Dropout(y.buf, xc.buf, n, dp)
	}
	if xc.needsGrad() {
		y.record("dropout", func(g *Tensor) {
			g = g.Contiguous()
			dx := Empty(g.dev, F32, g.shape...)
			if n := dx.Numel(); n > 0 {
				g.dev.Dropout(dx.buf, g.buf, n, dp)
			}
			xc.accumulate(dx)
		}, xc)
	}
	return y
}
