package kernels

import "github.com/godiffuse/godiffuse/tensor"

// ---------------------------------------------------------------------------
// 3×3×3 stride-1 convolutions as sums of 2-D Winograd convolutions.
//
// With padding 1 in depth, output plane z of a volume is
//
//	y[:, z] = Σ_kz conv2d(x[:, z+kz-1], w[:, :, kz])        (x[:, -1] = x[:, D] = 0)
//
// a sum of three 2-D 3×3 convolutions, each of which takes Winograd
// F(2×2, 3×3) (winograd.go): 2.25× fewer multiplications than the direct
// form. The sum is taken in the Winograd domain: every plane of x is
// transformed once, each output plane's 16 matrices M[ξ] collect the three
// taps' products U_kz[ξ]·V_{z+kz-1}[ξ], and one output transform follows.
// The transforms read and write the planes where they lie in the (C, D, H,
// W) volumes (winoGeom's strides). The input gradient is the same sum with
// the flipped weights and planes z+1-kz; the weight gradient of kz pairs the
// planes z+kz-1 of x with the planes z of dy.
// ---------------------------------------------------------------------------

// planeConv is the 2-D convolution of one plane: a batch of D images.
func planeConv(p tensor.Conv3DParams) tensor.ConvParams {
	return tensor.ConvParams{N: p.D, C: p.C, H: p.H, W: p.W, F: p.F, KH: p.KH, KW: p.KW, StrideH: p.StrideH, StrideW: p.StrideW,
		PadTop: p.PadH, PadBottom: p.PadH, PadLeft: p.PadW, PadRight: p.PadW, OH: p.OH, OW: p.OW}
}

// depthSlice returns w[:, :, kz] (F, C, KH, KW) of w (F, C, KD, KH, KW).
func depthSlice(w []float32, p tensor.Conv3DParams, kz int) []float32 {
	taps := p.KH * p.KW
	out := make([]float32, p.F*p.C*taps)
	for fc := range p.F * p.C {
		copy(out[fc*taps:][:taps], w[(fc*p.KD+kz)*taps:][:taps])
	}
	return out
}

// conv3DWinograd computes y = conv(x, w) + b (b may be nil); with flipped
// it computes the input gradient of p instead (x is dy, y is dx, w still
// p's weights). Each input plane is transformed once: a chunk of tile rows
// sweeps the depth with the transforms of planes z-1, z, z+1 in a ring, and
// the three depth taps accumulate in the Winograd domain (three GEMMs per
// ξ, the last two with β = 1) before one output transform per plane. The
// planes are read and written in place in the (C, D, H, W) volumes.
func (d *Device) conv3DWinograd(ys, xs []float32, w tensor.Buffer, ws, bs []float32, p tensor.Conv3DParams, flipped bool) {
	q := planeConv(p)
	q.N = p.N // one image per volume: tile row r is row r mod th of volume r / th
	inC, outC := p.C, p.F
	if flipped {
		q, _ = flippedConv(q)
		inC, outC = p.F, p.C
	}
	hw := p.H * p.W
	vol := p.D * hw
	g := newWinoGeom(q, max(1, d.nThreads()), d.tune.WinogradTiles, 2)
	if g.rows == 0 {
		return
	}
	g.xImg, g.xCh, g.yImg, g.yCh = inC*vol, vol, outC*vol, vol
	us, release := d.winogradWeightsOf(w, ws, q.F, q.C, flipped, 3, func(kz int) []float32 { return depthSlice(ws, p, kz) })
	defer release()
	simd := d.winoSIMD()
	vLen := 16 * g.cs
	d.winoChunks(g, d.nThreads(), 3*vLen+16*g.fs+winoPadLen(q, g), func(_ int, buf []float32, threads, r0, r1 int) {
		m, pad := buf[3*vLen:][:16*g.fs], buf[3*vLen+16*g.fs:]
		ring := func(z int) []float32 { return buf[(z%3)*vLen:][:vLen] }
		tiles := (r1 - r0) * g.tw
		cols := (tiles + 15) &^ 15
		transform := func(z int) { // plane z of the input into its ring slot
			v := ring(z)
			winoInput(v, xs[z*hw:], pad, q, g, r0, r1, simd, d.wide())
			if cols > tiles {
				for xi := range 16 {
					clearPadColumns(v[xi*g.cs:], q.C, g.ld, tiles)
				}
			}
		}
		transform(0)
		for z := range p.D {
			if z+1 < p.D {
				transform(z + 1)
			}
			beta := float32(0)
			for kz := range 3 {
				zz := z + kz - 1 // forward: planes z+kz-1
				if flipped {
					zz = z + 1 - kz // input gradient: planes z+1-kz
				}
				if zz < 0 || zz >= p.D {
					continue // the zero padding
				}
				v := ring(zz)
				for xi := range 16 {
					d.sgemmA(threads, us[kz][xi], cols, operandB{b: v[xi*g.cs:], ld: g.ld}, beta, m[xi*g.fs:], g.ld)
				}
				beta = 1
			}
			winoOutput(ys[z*hw:], m, bs, pad, q, g, r0, r1, 0, q.F, simd)
		}
	})
}

// conv3DWinogradBackwardWeight computes dw by Winograd F(3×3, 2×2) in the
// planes (winograd.go): dw[:, :, kz] = Σ_z (plane z of dy) ⋆ (plane z+kz-1
// of x), so each chunk of tile rows sweeps the depth transforming each plane
// of x and of dy once, and every z adds its three taps' 16 GEMMs to the
// chunk's slot (a grouping that does not depend on the thread count).
func (d *Device) conv3DWinogradBackwardWeight(dws, xs, dys []float32, p tensor.Conv3DParams) {
	q := planeConv(p)
	q.N = p.N
	hw := p.H * p.W
	vol := p.D * hw
	g := newWinoGeom(q, 2, d.tune.WinogradTiles, 2) // chunks independent of the thread count
	if g.rows == 0 {
		clear(dws[:p.F*p.C*27])
		return
	}
	g.xImg, g.xCh, g.yImg, g.yCh = p.C*vol, vol, p.F*vol, vol
	simd := d.winoSIMD()
	ws := p.F*p.C + 16 // stride between the matrices W[kz][ξ] (see winoGeom.cs)
	chunks := (g.rows + g.chunk - 1) / g.chunk
	acc := make([][]float32, min(reductionSlots(g.chunk*g.tw), chunks))
	padLen, vLen := winoPadLen(q, g), 16*g.cs
	mk, _ := d.microKernel()
	aLen := prepackedLen(mk, p.F, g.chunk*g.tw)
	scratch := 3*vLen + 16*g.fs + padLen + 2*g.wp + aLen
	threads := d.nThreads()
	bufs := make([][]float32, min(len(acc), threads))
	forSlots(threads, chunks, len(acc), func(wk, slot, ch, threads int) {
		if bufs[wk] == nil {
			bufs[wk] = getScratch(scratch)
		}
		buf := bufs[wk]
		r0, r1 := ch*g.chunk, min(g.rows, (ch+1)*g.chunk)
		ring := func(z int) []float32 { return buf[(z%3)*vLen:][:vLen] }
		y := buf[3*vLen:][:16*g.fs]
		pad, dyRows := buf[3*vLen+16*g.fs:][:padLen], buf[3*vLen+16*g.fs+padLen:][:2*g.wp]
		aBuf := buf[3*vLen+16*g.fs+padLen+2*g.wp:][:aLen]
		if acc[slot] == nil {
			acc[slot] = getScratch(3 * 16 * ws)
			clear(acc[slot])
		}
		winoInput(ring(0), xs, pad, q, g, r0, r1, simd, d.wide())
		for z := range p.D {
			if z+1 < p.D {
				winoInput(ring(z+1), xs[(z+1)*hw:], pad, q, g, r0, r1, simd, d.wide())
			}
			winoDy(y, dys[z*hw:], dyRows, q, g, r0, r1, simd)
			k := (r1 - r0) * g.tw
			for xi := range 16 { // each Y[ξ] packed once for its three taps
				a := gemmA{pre: prepackAIn(mk, false, p.F, k, 1, y[xi*g.fs:], g.ld, aBuf), m: p.F, k: k}
				for kz := range 3 {
					zz := z + kz - 1
					if zz < 0 || zz >= p.D {
						continue // the zero padding
					}
					d.sgemmA(threads, a, p.C, operandB{b: ring(zz)[xi*g.cs:], ld: g.ld, trans: true}, 1, acc[slot][(kz*16+xi)*ws:], p.C)
				}
			}
		}
	})
	for kz := range 3 {
		d.winoWeightGrads(dws[kz*9:], 27, acc, kz*16*ws, ws, p.F*p.C, winoGradEnd2)
	}
	releaseSlots(acc, bufs)
}
