package kernels

import (
	"github.com/godiffuse/godiffuse/kernels/asm"
	"github.com/godiffuse/godiffuse/tensor"
)

// ---------------------------------------------------------------------------
// Stride-1 convolutions with few output channels, output pixels in the
// lanes.
//
// A U-Net's last layer maps its channels to one to four (32 → 1 in
// tiny-mnist, 128 → 3 in ddpm-cifar10-32). As a GEMM the output channels
// are its rows, and a micro-kernel tile of 12 rows computes 11 of them for
// nothing. Here each output channel is a sum of shifted rows of the padded
// image (the shifted-rows geometry of conv.go):
//
//	y_f[j] = b_f + Σ_t w_f[t]·xp[off[t] + j],   t = (c, ky, kx),   off[t] = c·Hp·Wp + ky·Wp + kx
//
// over the output positions j of the padded width, the lanes of a vector
// holding consecutive outputs (asm.ConvTaps…: eight vectors of them carried
// through all the taps at once). convTapsRow is the plain-Go specification.
// ---------------------------------------------------------------------------

// convTapsRow is the specification: y[j] = bias + Σ_t w[t]·x[off[t]+j] for j < n.
func convTapsRow(y []float32, n int, x []float32, off []int, w []float32, bias float32) {
	for j := range n {
		s := bias
		for t, o := range off {
			s += w[t] * x[o+j]
		}
		y[j] = s
	}
}

// tapsRow is convTapsRow in assembly where the level has it.
func (d *Device) tapsRow(y []float32, n int, x []float32, off []int, w []float32, bias float32) {
	y, w = y[:n], w[:len(off)]
	_ = x[off[len(off)-1]+n-1] // offsets ascend (convTaps' do): the last tap's last value is the furthest read
	switch {
	case d.wide():
		asm.ConvTapsAVX512(&y[0], n, &x[0], &off[0], &w[0], len(off), bias)
	case d.simd():
		asm.ConvTapsAVX2(&y[0], n, &x[0], &off[0], &w[0], len(off), bias)
	default:
		convTapsRow(y, n, x, off, w, bias)
	}
}

// taps reports whether a 2-D convolution takes convTaps: stride 1, at
// most Tuning.TapsMaxF output channels, above the generic level.
func (d *Device) taps(p tensor.ConvParams) bool {
	return d.simd() && p.StrideH == 1 && p.StrideW == 1 && p.F <= d.tune.TapsMaxF
}

// convTaps runs y = conv(x, w) + b (b may be nil) for every image by
// convTapsRow, each image cut into bands of output rows when there are
// fewer images than threads. A part pads its own band (with the rows its
// taps reach below) and computes every output channel there: split by
// output channel instead, the threads read one padded image that one of
// them had written, and ddpm-cifar10-32's last layer at batch 1 ran slower
// on two threads than on one (262 against 145 µs).
func (d *Device) convTaps(ys, xs, ws, bs []float32, p tensor.ConvParams) {
	taps, ohw, chw := p.C*p.KH*p.KW, p.OH*p.OW, p.C*p.H*p.W
	wp := p.PadLeft + p.W + p.PadRight
	one := d.oneThread(p.N * p.F * taps * ohw)
	bands := 1
	if !one && p.N < d.nThreads() {
		bands = min(p.OH, (d.nThreads()+p.N-1)/p.N)
	}
	rows := (p.OH + bands - 1) / bands // output rows of a band
	bands = (p.OH + rows - 1) / rows
	hb := rows + p.KH - 1 // padded rows a band reads
	offs := getOffsets(taps)
	defer offsetPool.Put(offs)
	off := tapOffsets((*offs)[:0], p, hb, wp)
	padLen, outLen := p.C*hb*wp, rows*wp
	grain := 1
	if one {
		grain = p.N * bands
	}
	d.parallelFor(p.N*bands, grain, func(lo, hi int) {
		scratch := getScratch(padLen + outLen)
		defer putScratch(scratch)
		xp, out := scratch[:padLen], scratch[padLen:]
		for it := lo; it < hi; it++ {
			n, r0 := it/bands, it%bands*rows
			r1 := min(p.OH, r0+rows)
			padRows(xp, xs[n*chw:][:chw], p, r0, hb, wp, d.wide())
			m := (r1-r0-1)*wp + p.OW
			for f := range p.F {
				var b float32
				if bs != nil {
					b = bs[f]
				}
				d.tapsRow(out, m, xp, off, ws[f*taps:][:taps], b)
				y := ys[(n*p.F+f)*ohw:][:ohw]
				for oy := r0; oy < r1; oy++ {
					copy(y[oy*p.OW:][:p.OW], out[(oy-r0)*wp:])
				}
			}
		}
	})
}
