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
// form. The volume is laid out plane-major, (D+2, C, H, W) with a zero
// plane at each end, so that the planes z+kz-1 for z = 0 … D-1 are one
// contiguous batch of D images: each kz is a single call on a slice of the
// same buffer. The input gradient is the same sum with the flipped weights
// and planes z+1-kz; the weight gradient of kz pairs the planes z+kz-1 of x
// with the planes z of dy.
// ---------------------------------------------------------------------------

// planeConv is the 2-D convolution of one plane: a batch of D images.
func planeConv(p tensor.Conv3DParams) tensor.ConvParams {
	return tensor.ConvParams{N: p.D, C: p.C, H: p.H, W: p.W, F: p.F, KH: p.KH, KW: p.KW, StrideH: p.StrideH, StrideW: p.StrideW,
		PadTop: p.PadH, PadBottom: p.PadH, PadLeft: p.PadW, PadRight: p.PadW, OH: p.OH, OW: p.OW}
}

// toPlanes writes volume v (C, D, H, W) as planes (D+2, C, H, W) with zero
// planes first and last.
func toPlanes(dst, v []float32, c, d, hw int) {
	clear(dst[:c*hw])
	clear(dst[(d+1)*c*hw:][:c*hw])
	for ch := range c {
		for z := range d {
			copy(dst[((z+1)*c+ch)*hw:][:hw], v[(ch*d+z)*hw:][:hw])
		}
	}
}

// fromPlanes writes planes (D, C, H, W) back as a volume (C, D, H, W),
// adding bias[c] when bias is not nil.
func fromPlanes(v, planes []float32, c, d, hw int, bias []float32) {
	for ch := range c {
		var b float32
		if bias != nil {
			b = bias[ch]
		}
		for z := range d {
			dst, src := v[(ch*d+z)*hw:][:hw], planes[(z*c+ch)*hw:][:hw]
			for i, x := range src {
				dst[i] = x + b
			}
		}
	}
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

// conv3DWinograd computes y = conv(x, w) + b (b may be nil) volume by
// volume; with flipped it computes the input gradient of p instead (x is
// dy, y is dx, w still p's weights).
func (d *Device) conv3DWinograd(ys, xs, ws, bs []float32, p tensor.Conv3DParams, flipped bool) {
	q := planeConv(p)
	inC, outC := p.C, p.F
	if flipped {
		q, _ = flippedConv(q)
		inC, outC = p.F, p.C
	}
	hw := p.H * p.W
	vol := p.D * hw
	planes := make([]float32, (p.D+2)*inC*hw)
	acc, tmp := make([]float32, p.D*outC*hw), make([]float32, p.D*outC*hw)
	slices := [3][]float32{depthSlice(ws, p, 0), depthSlice(ws, p, 1), depthSlice(ws, p, 2)}
	for n := range p.N {
		toPlanes(planes, xs[n*inC*vol:][:inC*vol], inC, p.D, hw)
		for kz := range 3 {
			first := kz // forward: planes z+kz-1, i.e. padded index z+kz
			if flipped {
				first = 2 - kz // input gradient: planes z+1-kz, padded z+2-kz
			}
			dst := tmp
			if kz == 0 {
				dst = acc
			}
			d.convWinograd(dst, planes[first*inC*hw:][:p.D*inC*hw], slices[kz], nil, q, flipped)
			if kz > 0 {
				addTo(acc, tmp)
			}
		}
		fromPlanes(ys[n*outC*vol:][:outC*vol], acc, outC, p.D, hw, bs)
	}
}

// conv3DWinogradBackwardWeight computes dw = Σ_n Σ_z of the plane weight
// gradients, kz by kz.
func (d *Device) conv3DWinogradBackwardWeight(dws, xs, dys []float32, p tensor.Conv3DParams) {
	q := planeConv(p)
	hw := p.H * p.W
	vol := p.D * hw
	xPlanes := make([]float32, (p.D+2)*p.C*hw)
	dyPlanes := make([]float32, (p.D+2)*p.F*hw)
	taps := p.KH * p.KW
	part := make([]float32, p.F*p.C*taps)
	clear(dws[:p.F*p.C*p.KD*taps])
	for n := range p.N {
		toPlanes(xPlanes, xs[n*p.C*vol:][:p.C*vol], p.C, p.D, hw)
		toPlanes(dyPlanes, dys[n*p.F*vol:][:p.F*vol], p.F, p.D, hw)
		for kz := range 3 {
			d.convWinogradBackwardWeight(part, xPlanes[kz*p.C*hw:][:p.D*p.C*hw], dyPlanes[p.F*hw:][:p.D*p.F*hw], q)
			for fc := range p.F * p.C {
				dst, src := dws[(fc*p.KD+kz)*taps:][:taps], part[fc*taps:][:taps]
				for i, v := range src {
					dst[i] += v
				}
			}
		}
	}
}

func addTo(dst, src []float32) {
	for i, v := range src {
		dst[i] += v
	}
}
