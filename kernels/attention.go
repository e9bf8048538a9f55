package kernels

import (
	"math"
	"sync"

	"github.com/godiffuse/godiffuse/tensor"
)

// ---------------------------------------------------------------------------
// Softmax and multi-head scaled-dot-product attention.
// ---------------------------------------------------------------------------

// softmaxRow writes softmax(x) into y: y_j = e^(x_j - max x) / Σ_k e^(x_k - max x).
func softmaxRow(y, x []float32) {
	m := float32(math.Inf(-1))
	for _, v := range x {
		m = max(m, v)
	}
	var s float64
	for j, v := range x {
		e := math.Exp(float64(v - m))
		y[j] = float32(e)
		s += e
	}
	inv := float32(1 / s)
	for j := range y {
		y[j] *= inv
	}
}

// softmax picks the reference row softmax or, above the generic level, the expf one.
func (d *Device) softmax(y, x []float32) {
	if d.level > Generic {
		d.softmaxRowFast(y, x)
		return
	}
	softmaxRow(y, x)
}

// Softmax implements tensor.Device: softmax over the last axis of (Rows, Cols).
func (d *Device) Softmax(y, x tensor.Buffer, p tensor.SoftmaxParams) {
	ys, xs := f32(y), f32(x)
	d.parallelFor(p.Rows, max(1, elemGrain/max(p.Cols, 1)), func(lo, hi int) {
		for r := lo; r < hi; r++ {
			d.softmax(ys[r*p.Cols:(r+1)*p.Cols], xs[r*p.Cols:(r+1)*p.Cols])
		}
	})
}

// SoftmaxBackward implements tensor.Device: dx_j = y_j·(dy_j - Σ_k dy_k·y_k).
func (d *Device) SoftmaxBackward(dx, y, dy tensor.Buffer, p tensor.SoftmaxParams) {
	dxs, ys, dys := f32(dx), f32(y), f32(dy)
	d.parallelFor(p.Rows, max(1, elemGrain/max(p.Cols, 1)), func(lo, hi int) {
		for r := lo; r < hi; r++ {
			yr, gr, out := ys[r*p.Cols:(r+1)*p.Cols], dys[r*p.Cols:(r+1)*p.Cols], dxs[r*p.Cols:(r+1)*p.Cols]
			var s float64
			for j, v := range yr {
				s += float64(v) * float64(gr[j])
			}
			for j, v := range yr {
				out[j] = float32(float64(v) * (float64(gr[j]) - s))
			}
		}
	})
}

func axpy(alpha float32, x, y []float32) {
	x = x[:len(y)]
	for i := range y {
		y[i] += alpha * x[i]
	}
}

// forHeads runs fn for every (batch, head) pair (or other item of work):
// spread over goroutines with single-threaded GEMMs when there are enough
// pairs, else one pair at a time with parallel GEMMs. scratch is a
// per-goroutine slice of n floats, contents undefined (getScratch).
func (d *Device) forHeads(pairs, n int, fn func(bh int, scratch []float32, threads int)) {
	if pairs >= d.nThreads() {
		d.parallelFor(pairs, 1, func(lo, hi int) {
			s := getScratch(n)
			defer putScratch(s)
			for bh := lo; bh < hi; bh++ {
				fn(bh, s, 1)
			}
		})
		return
	}
	s := getScratch(n)
	defer putScratch(s)
	for bh := range pairs {
		fn(bh, s, d.nThreads())
	}
}

// Attention implements tensor.Device. For each batch b and head h, with
// Q_h = q[b, :, h·D:(h+1)·D] (an Lq×D matrix of row stride Heads·D) and
// likewise K_h, V_h, O_h:
//
//	P_h = softmax_rows(Scale·Q_h·K_hᵀ)  (stored in probs[b, h]),   O_h = P_h·V_h
//
// Both products are GEMMs on the strided head slices; the plainest form of
// the same math is naiveAttention in the tests. Channel-major tensors hold
// Q_hᵀ (D×Lq, row stride Lq) instead: the products then read them as the
// transposed operands, and O_hᵀ = V_hᵀ·P_hᵀ is written as it lies.
func (d *Device) Attention(o, probs, q, k, v tensor.Buffer, p tensor.AttentionParams) {
	if probs == nil {
		d.attentionTiled(f32(o), f32(q), f32(k), f32(v), p)
		return
	}
	os, ps, qs, ks, vs := f32(o), f32(probs), f32(q), f32(k), f32(v)
	d.forHeads(p.B*p.Heads, valuesLen(p, p.Lq), func(bh int, tmp []float32, threads int) {
		qo, ko := headOffsets(p, bh)
		P := ps[bh*p.Lq*p.Lk : (bh+1)*p.Lq*p.Lk]
		d.sgemm(threads, scoresGemm(p, qs[qo:], ks[ko:], 0, p.Lq, P))
		for i := range p.Lq {
			row := P[i*p.Lk : (i+1)*p.Lk]
			d.softmax(row, row)
		}
		d.values(threads, p, P, vs[ko:], 0, p.Lq, os[qo:], tmp)
	})
}

// headOffsets returns where head bh (= b·Heads + h) starts in q and o and
// in k and v.
func headOffsets(p tensor.AttentionParams, bh int) (qo, ko int) {
	if p.ChannelMajor {
		return bh * p.D * p.Lq, bh * p.D * p.Lk
	}
	b, h := bh/p.Heads, bh%p.Heads
	C := p.Heads * p.D
	return b*p.Lq*C + h*p.D, b*p.Lk*C + h*p.D
}

// scoresGemm is S = Scale·Q_h[i0:i0+rows]·K_hᵀ into the rows×Lk matrix s,
// q and k starting at the head.
func scoresGemm(p tensor.AttentionParams, q, k []float32, i0, rows int, s []float32) gemm {
	if p.ChannelMajor { // Q_hᵀ and K_hᵀ are stored: A transposed, B as it lies
		return gemm{M: rows, N: p.Lk, K: p.D, Alpha: p.Scale, TransA: true, A: q[i0:], LdA: p.Lq,
			B: operandB{b: k, ld: p.Lk}, C: s, LdC: p.Lk}
	}
	C := p.Heads * p.D
	return gemm{M: rows, N: p.Lk, K: p.D, Alpha: p.Scale, A: q[i0*C:], LdA: C,
		B: operandB{b: k, ld: C, trans: true}, C: s, LdC: p.Lk}
}

// values computes O_h[i0:i0+rows] = S·V_h for the rows×Lk probabilities s,
// o and v starting at the head. Channel-major, where O_hᵀ's columns i0…
// are to be written, the product goes token-major into tmp (rows·D floats)
// and is transposed into place: V_hᵀ·Sᵀ instead would pack all of S
// transposed, which measured slower with heads of 16 channels.
func (d *Device) values(threads int, p tensor.AttentionParams, s, v []float32, i0, rows int, o, tmp []float32) {
	if p.ChannelMajor {
		d.sgemm(threads, gemm{M: rows, N: p.D, K: p.Lk, Alpha: 1, A: s, LdA: p.Lk,
			B: operandB{b: v, ld: p.Lk, trans: true}, C: tmp, LdC: p.D})
		transposeInto(o[i0:], p.Lq, tmp, rows, p.D)
		return
	}
	C := p.Heads * p.D
	d.sgemm(threads, gemm{M: rows, N: p.D, K: p.Lk, Alpha: 1, A: s, LdA: p.Lk, B: operandB{b: v, ld: C}, C: o[i0*C:], LdC: C})
}

// valuesLen is the scratch values needs for rows query rows.
func valuesLen(p tensor.AttentionParams, rows int) int {
	if p.ChannelMajor {
		return rows * p.D
	}
	return 0
}

// attentionTiled is Attention without the probabilities (inference): per
// (batch, head), blocks of query rows go through S = Scale·Q·Kᵀ, the row
// softmax and O = S·V in a block of scratch, so the Lq×Lk score matrix is
// never held whole (64 MiB per head for 4096 tokens). With a micro-kernel
// and at least packedMinKeys keys, Kᵀ and V are packed once per head
// (attentionPacked); otherwise each block calls the GEMM, whose own paths
// (unpacked operands) win on short rows.
func (d *Device) attentionTiled(os, qs, ks, vs []float32, p tensor.AttentionParams) {
	mk, ok := d.microKernel()
	switch {
	case ok && p.ChannelMajor && p.Lk <= columnsMaxKeys:
		d.attentionColumns(mk, os, qs, ks, vs, p)
	case ok && p.Lk >= packedMinKeys:
		d.attentionPacked(mk, os, qs, ks, vs, p)
	default:
		d.attentionBlocks(os, qs, ks, vs, p)
	}
}

// columnsMaxKeys is the most keys attentionColumns takes: its block of
// scores (keys × one panel of queries, 128 KiB at 1,024 keys) should stay
// in L2 between the two products.
const columnsMaxKeys = 1024

// attentionColumns is attentionTiled for channel-major heads (the U-Nets'
// attention on the image), computed transposed, where every operand
// already lies as the micro-kernel wants it. Per head, K_h (Lk×D, stored
// as its transpose) and V_hᵀ (D×Lk, as stored) are packed once as A
// operands; then for each panel of nr queries (columns i0… of Q_hᵀ):
//
//	Sᵀ = Scale·K_h·Q_hᵀ[:, panel]   (Lk×nr: keys down, queries across)
//	softmax down each column of Sᵀ  (lane-wise; 1/sum kept per query)
//	O_hᵀ[:, panel] = V_hᵀ·Sᵀ         (Sᵀ is already a packed B panel)
//	O_hᵀ[:, panel] ·= 1/sum          (D×nr values instead of Lk×nr)
//
// written straight into O_hᵀ. Against attentionBlocks this packs no score
// matrix, transposes no output, and its softmax needs no reduction across
// lanes. BenchmarkAttentionInference, two threads, Zen 5: tiny-mnist's
// three 16-channel heads at batch 1 83–90 → 64 µs, at batch 64 5.7–5.9 →
// 3.5–4.4 ms; ddpm-cifar10-32's one 256-channel head at batch 8 2.11 →
// 1.93–1.97 ms.
func (d *Device) attentionColumns(mk microKernel, os, qs, ks, vs []float32, p tensor.AttentionParams) {
	mr, nr := mk.mr, mk.nr
	heads := p.B * p.Heads
	j := columnsJobs.Get().(*columnsJob)
	*j = columnsJob{d: d, mk: mk, os: os, qs: qs, ks: ks, vs: vs, p: p,
		kLen:   (p.Lk + mr - 1) / mr * mr * p.D, // K_h: Lk rows, D deep
		vLen:   (p.D + mr - 1) / mr * mr * p.Lk, // V_hᵀ: D rows, Lk deep
		panels: (p.Lq + nr - 1) / nr}
	j.kv = getScratch(heads * (j.kLen + j.vLen)) // every value written by packA
	d.parallelFor(heads, 1, j.packHeads)
	d.parallelFor(heads*j.panels, 1, j.queryPanels)
	putScratch(j.kv)
	*j = columnsJob{}
	columnsJobs.Put(j)
}

// columnsJob is one attentionColumns call, from a pool: its parts all read
// it (closures capturing the operands had been heap objects at every call).
type columnsJob struct {
	d                  *Device
	mk                 microKernel
	os, qs, ks, vs, kv []float32
	p                  tensor.AttentionParams
	kLen, vLen, panels int
}

var columnsJobs = sync.Pool{New: func() any { return new(columnsJob) }}

// packHeads packs K_h (scaled) and V_hᵀ of the heads [lo, hi) as A operands.
func (j *columnsJob) packHeads(lo, hi int) {
	p, mr := j.p, j.mk.mr
	for bh := lo; bh < hi; bh++ {
		_, ko := headOffsets(p, bh)
		kp, vp := j.kv[bh*(j.kLen+j.vLen):][:j.kLen], j.kv[bh*(j.kLen+j.vLen)+j.kLen:][:j.vLen]
		packA(kp, j.ks[ko:], p.Lk, true, p.Lk, 0, p.Lk, 0, p.D, mr, p.Scale)
		packA(vp, j.vs[ko:], p.Lk, false, p.D, 0, p.D, 0, p.Lk, mr, 1)
	}
}

// queryPanels computes the panels [lo, hi) of nr queries over every head.
func (j *columnsJob) queryPanels(lo, hi int) {
	p, nr := j.p, j.mk.nr
	// the packed Q panel, Sᵀ, the 1/sums and an edge tile
	scratch := getScratch(nr*p.D + p.Lk*nr + nr + tileLen)
	defer putScratch(scratch)
	for q := lo; q < hi; q++ {
		bh, i0 := q/j.panels, q%j.panels*nr
		cols := min(nr, p.Lq-i0)
		pk := j.mk.forColumns(cols) // the narrow kernel for a last panel it covers
		w := pk.nr
		qo, _ := headOffsets(p, bh)
		kp, vp := j.kv[bh*(j.kLen+j.vLen):][:j.kLen], j.kv[bh*(j.kLen+j.vLen)+j.kLen:][:j.vLen]
		qp, st := scratch[:w*p.D], scratch[nr*p.D:][:p.Lk*w]
		inv, tile := scratch[nr*p.D+p.Lk*nr:][:w], scratch[len(scratch)-tileLen:]
		packB(qp, operandB{b: j.qs[qo:], ld: p.Lq}, 0, p.D, i0, cols, w) // zero past the last query
		runTiles(pk, true, nil, kp, qp, st, w, 0, 0, p.Lk, w, p.D, tile)
		j.d.softmaxColumns(st, p.Lk, w, inv)
		o := j.os[qo+i0:]
		runTiles(pk, true, nil, vp, st, o, p.Lq, 0, 0, p.D, cols, p.Lk, tile)
		for c := range p.D {
			row := o[c*p.Lq:][:cols]
			for i := range row {
				row[i] *= inv[i]
			}
		}
	}
}

// packedMinKeys is where packing Kᵀ and V once per head starts to pay
// (BenchmarkAttentionInference, 2-core Xeon, AVX-512): SD's 64×64
// self-attention (4,096 keys) 2.45 → 1.28 s, 32×32 (1,024) 133 → 85 ms,
// 16×16 (256) 13.4 vs 13.6 ms; with 77 to 256 keys (cross-attention,
// tiny-mnist, ddpm-cifar10-32) the per-block GEMMs were 1.6× faster then,
// when the packed path still took fresh memory at every call. Since
// (2026-12-04, Zen 5, two threads): tiny-mnist's heads at batch 64 4.7 ms
// per block against 5.0 packed, ddpm-cifar10-32's at batch 8 1.93 against
// 2.01 ms, tiny-mnist at batch 1 98 against 92 µs: close, so left as is.
const packedMinKeys = 1024

// attentionBlocks is attentionTiled by one GEMM call per block and product.
// The (batch, head, block of query rows) items are spread over the threads;
// with few heads (batch 1) the blocks are made smaller so that there are at
// least four items per thread (three heads on two threads would leave one
// idle a third of the time).
func (d *Device) attentionBlocks(os, qs, ks, vs []float32, p tensor.AttentionParams) {
	pairs := p.B * p.Heads
	rows := max(1, min(p.Lq, d.tune.AttentionTileBytes/(4*p.Lk)))
	if pairs*((p.Lq+rows-1)/rows) < 4*d.nThreads() { // too few items: smaller blocks
		want := min(p.Lq, (4*d.nThreads()+pairs-1)/pairs)
		rows = (p.Lq + want - 1) / want
	}
	if mk, ok := d.microKernel(); ok && rows > mk.mr {
		// Whole panels of the micro-kernel's rows: only a head's last block
		// then packs a partial one (66-row blocks had packed a 6-row panel
		// each).
		rows = min(p.Lq, (rows+mk.mr-1)/mk.mr*mk.mr)
	}
	blocks := (p.Lq + rows - 1) / rows
	d.forHeads(pairs*blocks, rows*p.Lk+valuesLen(p, rows), func(item int, s []float32, threads int) {
		bh, i0 := item/blocks, item%blocks*rows
		qo, ko := headOffsets(p, bh)
		r := min(rows, p.Lq-i0)
		S := s[:r*p.Lk]
		d.sgemm(threads, scoresGemm(p, qs[qo:], ks[ko:], i0, r, S))
		for i := range r {
			row := S[i*p.Lk : (i+1)*p.Lk]
			d.softmax(row, row)
		}
		d.values(threads, p, S, vs[ko:], i0, r, os[qo:], s[rows*p.Lk:])
	})
}

// attentionPacked is attentionTiled with Kᵀ and V packed once per head into
// the micro-kernel's B panels (packing them again for every block of query
// rows cost more than the products with 40–160-wide heads), then per block:
//
//	pack Scale·Q_blk (mr-row panels)  →  S = Q_blk·Kᵀ   (tiles over the Lk keys)
//	softmax of each row of S
//	pack S by depth blocks of KC keys  →  O_blk = S·V  (accumulated over the blocks)
//
// The heads are spread over the threads (one GEMM thread each) when there
// are enough of them, else each head's query blocks are.
func (d *Device) attentionPacked(mk microKernel, os, qs, ks, vs []float32, p tensor.AttentionParams) {
	C := p.Heads * p.D
	mr, nr := mk.mr, mk.nr
	// How Kᵀ, V and Q are read; channel-major heads are stored transposed.
	kT, v, lq, qT := operandB{ld: C, trans: true}, operandB{ld: C}, C, false
	if p.ChannelMajor {
		kT, v, lq, qT = operandB{ld: p.Lk}, operandB{ld: p.Lk, trans: true}, p.Lq, true
	}
	kPanels := (p.Lk + nr - 1) / nr
	vPanels := (p.D + nr - 1) / nr
	kLen := kPanels * nr * p.D // Kᵀ: D deep, Lk columns
	vLen := vPanels * nr * p.Lk
	rows := max(mr, min((p.Lq+mr-1)/mr*mr, d.tune.AttentionTileBytes/(4*p.Lk)/mr*mr))
	// per worker: S block, packed Q block, one packed depth block of S, a
	// tile and, channel-major, the O block before it is transposed into place
	oLen := valuesLen(p, rows)
	blockLen := rows*p.Lk + rows*p.D + rows*min(packKC, p.Lk) + oLen + tileLen
	heads := p.B * p.Heads
	kv := getScratch(heads * (kLen + vLen)) // every value written by packB
	defer putScratch(kv)
	// pack every head's Kᵀ and V (independent: spread over the threads)
	d.parallelFor(heads, 1, func(lo, hi int) {
		for bh := lo; bh < hi; bh++ {
			_, ko := headOffsets(p, bh)
			kp, vp := kv[bh*(kLen+vLen):][:kLen], kv[bh*(kLen+vLen)+kLen:][:vLen]
			kh, vh := kT, v // this head's
			kh.b, vh.b = ks[ko:], vs[ko:]
			packB(kp, kh, 0, p.D, 0, p.Lk, nr)
			for pc := 0; pc < p.Lk; pc += packKC {
				kc := min(packKC, p.Lk-pc)
				packB(vp[pc*vPanels*nr:], vh, pc, kc, 0, p.D, nr)
			}
		}
	})
	block := func(bh, i0 int, scratch []float32) {
		qo, _ := headOffsets(p, bh)
		kp, vp := kv[bh*(kLen+vLen):][:kLen], kv[bh*(kLen+vLen)+kLen:][:vLen]
		r := min(rows, p.Lq-i0)
		S, qp, sp := scratch[:r*p.Lk], scratch[rows*p.Lk:][:rows*p.D], scratch[rows*p.Lk+rows*p.D:][:rows*min(packKC, p.Lk)]
		tile := scratch[len(scratch)-tileLen:]
		packA(qp, qs[qo:], lq, qT, p.Lq, i0, r, 0, p.D, mr, p.Scale)
		runTiles(mk, true, nil, qp, kp, S, p.Lk, 0, 0, r, p.Lk, p.D, tile)
		for i := range r {
			row := S[i*p.Lk : (i+1)*p.Lk]
			d.softmax(row, row)
		}
		var out []float32 // O_blk, r×D of row stride ldo
		ldo := C
		if p.ChannelMajor {
			out, ldo = scratch[len(scratch)-tileLen-oLen:][:r*p.D], p.D
		} else {
			out = os[qo+i0*C:]
		}
		for pc := 0; pc < p.Lk; pc += packKC {
			kc := min(packKC, p.Lk-pc)
			packA(sp, S, p.Lk, false, r, 0, r, pc, kc, mr, 1)
			runTiles(mk, pc == 0, nil, sp, vp[pc*vPanels*nr:], out, ldo, 0, 0, r, p.D, kc, tile)
		}
		if p.ChannelMajor {
			transposeInto(os[qo+i0:], p.Lq, out, r, p.D)
		}
	}
	blocks := (p.Lq + rows - 1) / rows
	d.parallelFor(heads*blocks, 1, func(lo, hi int) {
		scratch := getScratch(blockLen)
		defer putScratch(scratch)
		for j := lo; j < hi; j++ {
			block(j/blocks, j%blocks*rows, scratch)
		}
	})
}

// AttentionBackward implements tensor.Device. With P = probs and dO the
// output gradient of one head:
//
//	dP = dO·Vᵀ,   dS = P ⊙ (dP - rowsum(P ⊙ dP)),
//	dQ = Scale·dS·K,   dK = Scale·dSᵀ·Q,   dV = Pᵀ·dO
//
// Each (batch, head) owns disjoint channels of dq, dk, dv. Token-major, dK
// and dV are computed transposed (dKᵀ = Scale·Qᵀ·dS, dVᵀ = dOᵀ·P) and then
// transposed into place: that way the Lq×Lk matrices are read row by row,
// unpacked, instead of packed transposed (the D×Lk results are small).
// Channel-major, the transposed dK and dV are the layout itself, and dQ is
// transposed into place.
func (d *Device) AttentionBackward(dq, dk, dv, do, q, k, v, probs tensor.Buffer, p tensor.AttentionParams) {
	dqs, dks, dvs, dos := f32(dq), f32(dk), f32(dv), f32(do)
	qs, ks, vs, ps := f32(q), f32(k), f32(v), f32(probs)
	C := p.Heads * p.D
	tmpLen := p.D * max(p.Lk, p.Lq)
	d.forHeads(p.B*p.Heads, p.Lq*p.Lk+tmpLen, func(bh int, scratch []float32, threads int) {
		dS, tmp := scratch[:p.Lq*p.Lk], scratch[p.Lq*p.Lk:]
		qo, ko := headOffsets(p, bh)
		P := ps[bh*p.Lq*p.Lk : (bh+1)*p.Lq*p.Lk]
		if p.ChannelMajor {
			d.sgemm(threads, gemm{M: p.Lq, N: p.Lk, K: p.D, Alpha: 1, TransA: true, A: dos[qo:], LdA: p.Lq, B: operandB{b: vs[ko:], ld: p.Lk}, C: dS, LdC: p.Lk})
		} else {
			d.sgemm(threads, gemm{M: p.Lq, N: p.Lk, K: p.D, Alpha: 1, A: dos[qo:], LdA: C, B: operandB{b: vs[ko:], ld: C, trans: true}, C: dS, LdC: p.Lk})
		}
		for i := range p.Lq {
			pr, gr := P[i*p.Lk:(i+1)*p.Lk], dS[i*p.Lk:(i+1)*p.Lk]
			var s float32
			for j, pv := range pr {
				s += pv * gr[j]
			}
			for j, pv := range pr {
				gr[j] = pv * (gr[j] - s) * p.Scale
			}
		}
		if p.ChannelMajor {
			// dQ token-major, then transposed (as O in values)
			d.sgemm(threads, gemm{M: p.Lq, N: p.D, K: p.Lk, Alpha: 1, A: dS, LdA: p.Lk, B: operandB{b: ks[ko:], ld: p.Lk, trans: true}, C: tmp, LdC: p.D})
			transposeInto(dqs[qo:], p.Lq, tmp, p.Lq, p.D)
			d.sgemm(threads, gemm{M: p.D, N: p.Lk, K: p.Lq, Alpha: 1, A: qs[qo:], LdA: p.Lq, B: operandB{b: dS, ld: p.Lk}, C: dks[ko:], LdC: p.Lk})
			d.sgemm(threads, gemm{M: p.D, N: p.Lk, K: p.Lq, Alpha: 1, A: dos[qo:], LdA: p.Lq, B: operandB{b: P, ld: p.Lk}, C: dvs[ko:], LdC: p.Lk})
			return
		}
		d.sgemm(threads, gemm{M: p.Lq, N: p.D, K: p.Lk, Alpha: 1, A: dS, LdA: p.Lk, B: operandB{b: ks[ko:], ld: C}, C: dqs[qo:], LdC: C})
		d.sgemm(threads, gemm{M: p.D, N: p.Lk, K: p.Lq, Alpha: 1, TransA: true, A: qs[qo:], LdA: C, B: operandB{b: dS, ld: p.Lk}, C: tmp, LdC: p.Lk})
		transposeInto(dks[ko:], C, tmp, p.D, p.Lk)
		d.sgemm(threads, gemm{M: p.D, N: p.Lk, K: p.Lq, Alpha: 1, TransA: true, A: dos[qo:], LdA: C, B: operandB{b: P, ld: p.Lk}, C: tmp, LdC: p.Lk})
		transposeInto(dvs[ko:], C, tmp, p.D, p.Lk)
	})
}

// transposeInto sets dst[j·ld + i] = src[i·cols + j] for the rows×cols
// matrix src.
func transposeInto(dst []float32, ld int, src []float32, rows, cols int) {
	for j := range cols {
		out := dst[j*ld : j*ld+rows]
		for i := range out {
			out[i] = src[i*cols+j]
		}
	}
}
