package kernels

import (
	"math"

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

// Softmax implements tensor.Device: softmax over the last axis of (Rows, Cols).
func (d *Device) Softmax(y, x tensor.Buffer, p tensor.SoftmaxParams) {
	ys, xs := f32(y), f32(x)
	d.parallelFor(p.Rows, max(1, elemGrain/max(p.Cols, 1)), func(lo, hi int) {
		for r := lo; r < hi; r++ {
			softmaxRow(ys[r*p.Cols:(r+1)*p.Cols], xs[r*p.Cols:(r+1)*p.Cols])
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

func dot(a, b []float32) float32 {
	b = b[:len(a)]
	var s float32
	for i, v := range a {
		s += v * b[i]
	}
	return s
}

func axpy(alpha float32, x, y []float32) {
	x = x[:len(y)]
	for i := range y {
		y[i] += alpha * x[i]
	}
}

// Attention implements tensor.Device. For each batch b and head h, with
// q_i = q[b, i, h·D:(h+1)·D] and likewise k_j, v_j:
//
//	probs[b,h,i,j] = softmax_j(q_i·k_j·Scale),   o[b, i, h·D:(h+1)·D] = Σ_j probs[b,h,i,j]·v_j
func (d *Device) Attention(o, probs, q, k, v tensor.Buffer, p tensor.AttentionParams) {
	os, ps, qs, ks, vs := f32(o), f32(probs), f32(q), f32(k), f32(v)
	C := p.Heads * p.D
	d.parallelFor(p.B*p.Heads*p.Lq, max(1, elemGrain/max(p.Lk*p.D, 1)), func(lo, hi int) {
		for bhi := lo; bhi < hi; bhi++ {
			bh, i := bhi/p.Lq, bhi%p.Lq
			b, h := bh/p.Heads, bh%p.Heads
			qi := qs[(b*p.Lq+i)*C+h*p.D:][:p.D]
			row := ps[(bh*p.Lq+i)*p.Lk:][:p.Lk]
			for j := range row {
				row[j] = dot(qi, ks[(b*p.Lk+j)*C+h*p.D:][:p.D]) * p.Scale
			}
			softmaxRow(row, row)
			oi := os[(b*p.Lq+i)*C+h*p.D:][:p.D]
			clear(oi)
			for j, pij := range row {
				axpy(pij, vs[(b*p.Lk+j)*C+h*p.D:][:p.D], oi)
			}
		}
	})
}

// AttentionBackward implements tensor.Device. With P = probs and do_i the
// output gradient of query i:
//
//	dP_ij = do_i·v_j,   dS_ij = P_ij·(dP_ij - Σ_k P_ik·dP_ik)
//	dq_i = Scale·Σ_j dS_ij·k_j,   dk_j = Scale·Σ_i dS_ij·q_i,   dv_j = Σ_i P_ij·do_i
//
// Work is split by (batch, head): each owns disjoint channels of dq, dk, dv.
func (d *Device) AttentionBackward(dq, dk, dv, do, q, k, v, probs tensor.Buffer, p tensor.AttentionParams) {
	dqs, dks, dvs, dos := f32(dq), f32(dk), f32(dv), f32(do)
	qs, ks, vs, ps := f32(q), f32(k), f32(v), f32(probs)
	C := p.Heads * p.D
	d.parallelFor(p.B*p.Heads, 1, func(lo, hi int) {
		ds := make([]float32, p.Lk)
		for bh := lo; bh < hi; bh++ {
			b, h := bh/p.Heads, bh%p.Heads
			at := func(s []float32, L, t int) []float32 { return s[(b*L+t)*C+h*p.D:][:p.D] }
			for j := range p.Lk {
				clear(at(dks, p.Lk, j))
				clear(at(dvs, p.Lk, j))
			}
			for i := range p.Lq {
				doi, qi, dqi := at(dos, p.Lq, i), at(qs, p.Lq, i), at(dqs, p.Lq, i)
				row := ps[(bh*p.Lq+i)*p.Lk:][:p.Lk]
				var s float32
				for j, pij := range row {
					dp := dot(doi, at(vs, p.Lk, j))
					ds[j] = dp
					s += pij * dp
				}
				clear(dqi)
				for j, pij := range row {
					g := pij * (ds[j] - s) * p.Scale
					axpy(g, at(ks, p.Lk, j), dqi)
					axpy(g, qi, at(dks, p.Lk, j))
					axpy(pij, doi, at(dvs, p.Lk, j))
				}
			}
		}
	})
}
