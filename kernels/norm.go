package kernels

import (
	"math"
	"sync"

	"github.com/godiffuse/godiffuse/kernels/asm"
	"github.com/godiffuse/godiffuse/tensor"
)

// ---------------------------------------------------------------------------
// Group / layer normalization. x is viewed as (N, G, CG, S); one group is the
// CG·S values of (n, g), channel c = g·CG + cg.
//
//	mean = Σ x / (CG·S),   var = Σ (x - mean)² / (CG·S)   (biased)
//	rstd = 1/√(var + eps),  x̂ = (x - mean)·rstd,  y = x̂·γ[c] + β[c]
//
// Backward, with ĝ = dy·γ[c] and means over the group:
//
//	dx = rstd·(ĝ - mean(ĝ) - x̂·mean(ĝ·x̂)),  dγ[c] = Σ dy·x̂,  dβ[c] = Σ dy
//
// Statistics are accumulated in float64, the forward ones in one pass
// (moments64).
// ---------------------------------------------------------------------------

// Norm implements tensor.Device.
func (d *Device) Norm(y, mean, rstd, x, gamma, beta tensor.Buffer, p tensor.NormParams) {
	j := normJob{ys: f32(y), ms: f32(mean), rs: f32(rstd), xs: f32(x), gs: f32(gamma), bs: f32(beta), p: p}
	groups, grain := p.N*p.G, max(1, normGrain/max(p.CG*p.S, 1))
	if d.onePart(groups, grain) {
		d.normRange(&j, 0, groups)
		return
	}
	d.normParts(j, groups, grain)
}

// normGrain is the fewest values of a Norm part: an eighth of elemGrain,
// since a normalization (its statistics, then the affine map and often a
// SiLU) spends more per value than an elementwise op. At batch 1 the
// groups of a 28×28 or 14×14 image then split over two threads; with
// elemGrain they did not, and tiny-mnist's forward ran 1.04–1.06× as fast
// split (bench/RESULTS.md, 2026-12-06 evening).
const normGrain = elemGrain / 8

// normJob is one Norm call's operands and device: pooled for the split
// calls, whose parts all read it (copied into a closure it was a heap
// object of ~200 bytes at every split call).
type normJob struct {
	d                      *Device
	ys, ms, rs, xs, gs, bs []float32
	p                      tensor.NormParams
}

var normJobs = sync.Pool{New: func() any { return new(normJob) }}

// normParts is Norm's split of the groups over the threads, a function of
// its own so that the one-thread calls take nothing from the pool.
func (d *Device) normParts(j normJob, groups, grain int) {
	pj := normJobs.Get().(*normJob)
	*pj = j
	pj.d = d
	d.parallelFor(groups, grain, pj.run)
	*pj = normJob{}
	normJobs.Put(pj)
}

// run normalizes the groups [lo, hi).
func (j *normJob) run(lo, hi int) { j.d.normRange(j, lo, hi) }

// normRange normalizes (and activates) the groups [lo, hi) of images × groups.
func (d *Device) normRange(j *normJob, lo, hi int) {
	ys, ms, rs, xs, gs, bs, p := j.ys, j.ms, j.rs, j.xs, j.gs, j.bs, j.p
	gsize := p.CG * p.S
	for ng := lo; ng < hi; ng++ {
		xg := xs[ng*gsize : (ng+1)*gsize]
		mu, variance := d.moments64(xg)
		r := 1 / math.Sqrt(variance+float64(p.Eps))
		if ms != nil { // nil: inference keeps no statistics
			ms[ng], rs[ng] = float32(mu), float32(r)
		}
		g := ng % p.G
		yg := ys[ng*gsize : (ng+1)*gsize]
		// channel c maps x to x·a + b with a = rstd·γ_c, b = β_c − mean·rstd·γ_c (float64, then float32)
		coefs := func(c int) (float32, float32) {
			scale, shift := r, -mu*r
			if gs != nil {
				scale *= float64(gs[c])
				shift *= float64(gs[c])
			}
			if bs != nil {
				shift += float64(bs[c])
			}
			return float32(scale), float32(shift)
		}
		if p.S == 1 { // layer norm: one value per channel, in a plain loop (not a call per value)
			for cg, xv := range xg {
				a, b := coefs(g*p.CG + cg)
				yg[cg] = xv*a + b
			}
			if p.Activate {
				d.unaryRange(p.Act, yg, yg, tensor.UnaryParams{})
			}
			continue
		}
		if p.Activate && p.S < normShortRow {
			// Short rows (the 7×7 and 14×14 levels): the affine map row
			// by row, then the activation over the whole group at once
			// (the same values: TestAffineSiLUMatchesUnfused), instead
			// of a fused call per row whose vector loop hardly starts
			// before its tail.
			for cg := range p.CG {
				a, b := coefs(g*p.CG + cg)
				d.affine(yg[cg*p.S:(cg+1)*p.S], xg[cg*p.S:(cg+1)*p.S], a, b)
			}
			d.unaryRange(p.Act, yg, yg, tensor.UnaryParams{})
			continue
		}
		for cg := range p.CG {
			a, b := coefs(g*p.CG + cg)
			row, xrow := yg[cg*p.S:(cg+1)*p.S], xg[cg*p.S:(cg+1)*p.S]
			if p.Activate && p.Act == tensor.OpSiLU {
				d.affineSiLU(row, xrow, a, b)
				continue
			}
			d.affine(row, xrow, a, b)
			if p.Activate { // while the row is in cache
				d.unaryRange(p.Act, row, row, tensor.UnaryParams{})
			}
		}
	}
}

// normShortRow is the row length below which Norm applies its activation
// to a whole group at once rather than row by row (one 48-channel 7×7 group
// norm with SiLU on one thread: 4.4 → 1.8 µs, 14×14 6.4 → 3.5 µs; Zen 5,
// 2026-12-04 afternoon).
const normShortRow = 256

// NormBackward implements tensor.Device. Every sum it needs comes from two
// sums per (image, channel) row, Σdy and Σdy·x (float64; a product of two
// float32s is exact there):
//
//	Σ ĝ = Σ_c γ_c·Σdy,  Σ ĝ·x̂ = rstd·Σ_c γ_c·(Σdy·x − mean·Σdy),
//	dβ_c = Σ_n Σdy,     dγ_c = Σ_n rstd·(Σdy·x − mean·Σdy)
//
// and dx is then a·dy + b·(x − mean) + c per channel.
func (d *Device) NormBackward(dx, dgamma, dbeta, dy, x, mean, rstd, gamma tensor.Buffer, p tensor.NormParams) {
	dxs, dgs, dbs, dys, xs, ms, rs, gs := f32(dx), f32(dgamma), f32(dbeta), f32(dy), f32(x), f32(mean), f32(rstd), f32(gamma)
	C := p.G * p.CG
	sdy, sdyx := make([]float64, p.N*C), make([]float64, p.N*C) // per (n, c) row
	d.parallelFor(p.N*C, max(1, elemGrain/max(p.S, 1)), func(lo, hi int) {
		for row := lo; row < hi; row++ {
			sdy[row], sdyx[row] = d.sumDot64(dys[row*p.S:(row+1)*p.S], xs[row*p.S:(row+1)*p.S])
		}
	})
	gamAt := func(c int) float64 {
		if gs == nil {
			return 1
		}
		return float64(gs[c])
	}
	gsize := p.CG * p.S
	d.parallelFor(p.N*p.G, max(1, elemGrain/max(gsize, 1)), func(lo, hi int) {
		for ng := lo; ng < hi; ng++ {
			g := ng % p.G
			mu, r := float64(ms[ng]), float64(rs[ng])
			var sg, sgx float64 // Σ ĝ and Σ ĝ·x̂
			for cg := range p.CG {
				c, row := g*p.CG+cg, ng*p.CG+cg
				sg += gamAt(c) * sdy[row]
				sgx += gamAt(c) * (sdyx[row] - mu*sdy[row])
			}
			mg, mgx := sg/float64(gsize), r*sgx/float64(gsize)
			// dx = r·(dy·γ − mg − (x − mean)·r·mgx)
			b, cc, mu32 := float32(-r*r*mgx), float32(-r*mg), float32(mu)
			for cg := range p.CG {
				a := float32(r * gamAt(g*p.CG+cg))
				base := ng*gsize + cg*p.S
				if p.S == 1 { // layer norm: the row's formula inline, not a call per value
					dxs[base] = a*dys[base] + b*(xs[base]-mu32) + cc
					continue
				}
				out, dyr, xr := dxs[base:base+p.S], dys[base:base+p.S], xs[base:base+p.S]
				d.normGradRow(out, dyr, xr, &[4]float32{a, b, cc, mu32})
			}
		}
	})
	for c := range C {
		g := c / p.CG
		var sdg, sdb float64
		for n := range p.N {
			ng, row := n*p.G+g, n*C+c
			sdb += sdy[row]
			sdg += float64(rs[ng]) * (sdyx[row] - float64(ms[ng])*sdy[row])
		}
		if dgs != nil {
			dgs[c] = float32(sdg)
		}
		if dbs != nil {
			dbs[c] = float32(sdb)
		}
	}
}

// sum64 is Σx in float64, four independent chains so that the adds overlap.
func sum64(x []float32) float64 {
	var s0, s1, s2, s3 float64
	i := 0
	for ; i+4 <= len(x); i += 4 {
		v := x[i : i+4 : i+4]
		s0 += float64(v[0])
		s1 += float64(v[1])
		s2 += float64(v[2])
		s3 += float64(v[3])
	}
	for ; i < len(x); i++ {
		s0 += float64(x[i])
	}
	return (s0 + s1) + (s2 + s3)
}

// moments64 returns the mean and the biased variance of x (not empty) in
// float64, in one pass over the values shifted by the first one: with
// d = x − x₀, mean = x₀ + Σd/n and var = (Σd² − (Σd)²/n)/n. The shift keeps
// the two sums from cancelling as Σx² − (Σx)²/n does when the mean is large
// against the spread (x₀ is one of the values, so d is of the spread's
// size). The assembly takes 32 (AVX-512), then 16 (AVX2) values at a time,
// momentsGo the rest.
func (d *Device) moments64(x []float32) (mean, variance float64) {
	k := float64(x[0])
	var s, ss float64
	i := 0
	if d.wide() {
		s, ss = asm.MomentsAVX512(x, k)
		i = len(x) / 32 * 32
	}
	if d.simd() && len(x)-i >= 16 { // a 16-value row of a 4×4 image has no 32 for the wide form
		ts, tss := asm.MomentsAVX2(x[i:], k)
		s, ss = s+ts, ss+tss
		i += (len(x) - i) / 16 * 16
	}
	ts, tss := momentsGo(x[i:], k)
	s, ss = s+ts, ss+tss
	n := float64(len(x))
	return k + s/n, max(0, ss-s*s/n) / n
}

// momentsGo is the plain-Go form of MomentsAVX2, four chains of each sum:
// Σ(x − k) and Σ(x − k)² in float64.
func momentsGo(x []float32, k float64) (s, ss float64) {
	var s0, s1, s2, s3, q0, q1, q2, q3 float64
	i := 0
	for ; i+4 <= len(x); i += 4 {
		v := x[i : i+4 : i+4]
		d0, d1, d2, d3 := float64(v[0])-k, float64(v[1])-k, float64(v[2])-k, float64(v[3])-k
		s0, s1, s2, s3 = s0+d0, s1+d1, s2+d2, s3+d3
		q0, q1, q2, q3 = q0+d0*d0, q1+d1*d1, q2+d2*d2, q3+d3*d3
	}
	for ; i < len(x); i++ {
		d := float64(x[i]) - k
		s0 += d
		q0 += d * d
	}
	return (s0 + s1) + (s2 + s3), (q0 + q1) + (q2 + q3)
}

// sumDot64 returns Σy and Σy·x in float64: SumDotAVX512 32 values at a
// time, then SumDotAVX2 16, then two chains each.
func (d *Device) sumDot64(y, x []float32) (sy, syx float64) {
	x = x[:len(y)]
	i := 0
	if d.wide() {
		sy, syx = asm.SumDotAVX512(y, x)
		i = len(y) / 32 * 32
	}
	if d.simd() && len(y)-i >= 16 {
		ty, tyx := asm.SumDotAVX2(y[i:], x[i:])
		sy, syx = sy+ty, syx+tyx
		i += (len(y) - i) / 16 * 16
	}
	var a0, a1, b0, b1 float64
	for ; i+2 <= len(y); i += 2 {
		y0, y1 := float64(y[i]), float64(y[i+1])
		a0 += y0
		a1 += y1
		b0 += y0 * float64(x[i])
		b1 += y1 * float64(x[i+1])
	}
	for ; i < len(y); i++ {
		a0 += float64(y[i])
		b0 += float64(y[i]) * float64(x[i])
	}
	return sy + (a0 + a1), syx + (b0 + b1)
}

// affine sets dst[i] = src[i]·a + b: a product then a sum at every level
// (Go fuses them only when built for GOAMD64=v3 or above).
func (d *Device) affine(dst, src []float32, a, b float32) {
	// AVX2 only: a 16-lane form measured no faster (the pass is memory-bound).
	k := 0
	if d.simd() {
		asm.AffineAVX2(dst, src, a, b)
		k = len(src) / 8 * 8
	}
	for i := k; i < len(src); i++ {
		dst[i] = float32(src[i]*a) + b // the conversion keeps the product rounded (no fused multiply-add)
	}
}

// affineSiLU is affine then the SiLU of the result, in one vector pass where
// the level has one (AffineSiLUAVX512, AffineSiLUAVX2: the same bits).
func (d *Device) affineSiLU(dst, src []float32, a, b float32) {
	k := d.vecSplit(len(src), func() { asm.AffineSiLUAVX512(dst, src, a, b) }, func(lo int) { asm.AffineSiLUAVX2(dst[lo:], src[lo:], a, b) })
	tail := dst[k:len(src)]
	d.affine(tail, src[k:], a, b)
	d.unaryRange(tensor.OpSiLU, tail, tail, tensor.UnaryParams{})
}

// normGradRow sets dx[i] = a·dy[i] + b·(x[i] − mean) + c, k = {a, b, c, mean},
// with the same operations at every level.
func (d *Device) normGradRow(dx, dy, x []float32, k *[4]float32) {
	dy, x = dy[:len(dx)], x[:len(dx)]
	j := 0
	if d.simd() {
		asm.NormGradAVX2(dx, dy, x, k)
		j = len(dx) / 8 * 8
	}
	a, b, c, mu := k[0], k[1], k[2], k[3]
	for i := j; i < len(dx); i++ {
		dx[i] = a*dy[i] + b*(x[i]-mu) + c
	}
}
