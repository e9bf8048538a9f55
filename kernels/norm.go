package kernels

import (
	"math"

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
// Statistics are accumulated in float64.
// ---------------------------------------------------------------------------

// Norm implements tensor.Device.
func (d *Device) Norm(y, mean, rstd, x, gamma, beta tensor.Buffer, p tensor.NormParams) {
	ys, ms, rs, xs, gs, bs := f32(y), f32(mean), f32(rstd), f32(x), f32(gamma), f32(beta)
	gsize := p.CG * p.S
	d.parallelFor(p.N*p.G, max(1, elemGrain/max(gsize, 1)), func(lo, hi int) {
		for ng := lo; ng < hi; ng++ {
			xg := xs[ng*gsize : (ng+1)*gsize]
			var s float64
			for _, v := range xg {
				s += float64(v)
			}
			mu := s / float64(gsize)
			var ss float64
			for _, v := range xg {
				dv := float64(v) - mu
				ss += dv * dv
			}
			r := 1 / math.Sqrt(ss/float64(gsize)+float64(p.Eps))
			ms[ng], rs[ng] = float32(mu), float32(r)
			g := ng % p.G
			yg := ys[ng*gsize : (ng+1)*gsize]
			for cg := range p.CG {
				c := g*p.CG + cg
				scale, shift := r, -mu*r
				if gs != nil {
					scale *= float64(gs[c])
					shift *= float64(gs[c])
				}
				if bs != nil {
					shift += float64(bs[c])
				}
				a, b := float32(scale), float32(shift)
				row := xg[cg*p.S : (cg+1)*p.S]
				out := yg[cg*p.S : (cg+1)*p.S]
				for i, v := range row {
					out[i] = v*a + b
				}
			}
		}
	})
}

// NormBackward implements tensor.Device.
func (d *Device) NormBackward(dx, dgamma, dbeta, dy, x, mean, rstd, gamma tensor.Buffer, p tensor.NormParams) {
	dxs, dgs, dbs, dys, xs, ms, rs, gs := f32(dx), f32(dgamma), f32(dbeta), f32(dy), f32(x), f32(mean), f32(rstd), f32(gamma)
	gsize := p.CG * p.S
	d.parallelFor(p.N*p.G, max(1, elemGrain/max(gsize, 1)), func(lo, hi int) {
		for ng := lo; ng < hi; ng++ {
			g := ng % p.G
			mu, r := float64(ms[ng]), float64(rs[ng])
			var sg, sgx float64 // Σ ĝ and Σ ĝ·x̂
			for cg := range p.CG {
				gam := 1.0
				if gs != nil {
					gam = float64(gs[g*p.CG+cg])
				}
				base := ng*gsize + cg*p.S
				for i := range p.S {
					gh := float64(dys[base+i]) * gam
					sg += gh
					sgx += gh * (float64(xs[base+i]) - mu) * r
				}
			}
			mg, mgx := sg/float64(gsize), sgx/float64(gsize)
			for cg := range p.CG {
				gam := 1.0
				if gs != nil {
					gam = float64(gs[g*p.CG+cg])
				}
				base := ng*gsize + cg*p.S
				for i := range p.S {
					xh := (float64(xs[base+i]) - mu) * r
					dxs[base+i] = float32(r * (float64(dys[base+i])*gam - mg - xh*mgx))
				}
			}
		}
	})
	if dgs == nil && dbs == nil {
		return
	}
	C := p.G * p.CG
	d.parallelFor(C, 1, func(lo, hi int) {
		for c := lo; c < hi; c++ {
			g, cg := c/p.CG, c%p.CG
			var sdg, sdb float64
			for n := range p.N {
				ng := n*p.G + g
				mu, r := float64(ms[ng]), float64(rs[ng])
				base := ng*gsize + cg*p.S
				for i := range p.S {
					dyv := float64(dys[base+i])
					sdb += dyv
					sdg += dyv * (float64(xs[base+i]) - mu) * r
				}
			}
			if dgs != nil {
				dgs[c] = float32(sdg)
			}
			if dbs != nil {
				dbs[c] = float32(sdb)
			}
		}
	})
}
