package kernels

import (
	"sync"

	"github.com/godiffuse/godiffuse/tensor"
)

// ---------------------------------------------------------------------------
// Conv2D by im2col + GEMM.
//
// For one image, im2col lays the receptive fields out as a (C·KH·KW, OH·OW)
// matrix `col`:
//
//	col[(c·KH + ky)·KW + kx][oy·OW + ox] = x[c][oy·SH + ky - PT][ox·SW + kx - PL]   (0 outside)
//
// so that, with w viewed as (F, C·KH·KW),
//
//	forward:          y_n  = w · col_n + b
//	backward input:   dcol = wᵀ · dy_n,  dx_n = col2im(dcol)   (col2im adds overlapping taps)
//	backward weight:  dw   = Σ_n dy_n · col_nᵀ,   db = Σ_n Σ_pixels dy_n
//
// A 1×1 stride-1 unpadded convolution skips im2col (col_n is x_n itself).
// Images are spread over goroutines; with a single image the GEMM itself runs
// in parallel.
// ---------------------------------------------------------------------------

func isPointwise(p tensor.ConvParams) bool {
	return p.KH == 1 && p.KW == 1 && p.StrideH == 1 && p.StrideW == 1 &&
		p.PadTop == 0 && p.PadBottom == 0 && p.PadLeft == 0 && p.PadRight == 0
}

// oxRange returns the output columns [lo, hi) whose input column
// ox·SW + kx - PL falls inside [0, W); the others read the zero padding.
func oxRange(p tensor.ConvParams, kx int) (lo, hi int) {
	off := kx - p.PadLeft // ix = ox·SW + off
	lo = 0
	if off < 0 {
		lo = (-off + p.StrideW - 1) / p.StrideW
	}
	hi = 0
	if p.W-1-off >= 0 {
		hi = (p.W-1-off)/p.StrideW + 1
	}
	return min(lo, p.OW), min(max(hi, 0), p.OW)
}

// im2col fills col (C·KH·KW × OH·OW) from one image x (C × H × W).
func im2col(col, x []float32, p tensor.ConvParams) {
	ohw := p.OH * p.OW
	for c := range p.C {
		xc := x[c*p.H*p.W : (c+1)*p.H*p.W]
		for ky := range p.KH {
			for kx := range p.KW {
				row := col[((c*p.KH+ky)*p.KW+kx)*ohw:][:ohw]
				lo, hi := oxRange(p, kx)
				off := kx - p.PadLeft
				for oy := range p.OH {
					iy := oy*p.StrideH + ky - p.PadTop
					dst := row[oy*p.OW : (oy+1)*p.OW]
					if iy < 0 || iy >= p.H || lo >= hi {
						clear(dst)
						continue
					}
					src := xc[iy*p.W : (iy+1)*p.W]
					clear(dst[:lo])
					clear(dst[hi:])
					if p.StrideW == 1 {
						copy(dst[lo:hi], src[lo+off:hi+off])
					} else {
						for ox := lo; ox < hi; ox++ {
							dst[ox] = src[ox*p.StrideW+off]
						}
					}
				}
			}
		}
	}
}

// col2im adds col (C·KH·KW × OH·OW) into one image dx (C × H × W).
func col2im(dx, col []float32, p tensor.ConvParams) {
	ohw := p.OH * p.OW
	for c := range p.C {
		xc := dx[c*p.H*p.W : (c+1)*p.H*p.W]
		for ky := range p.KH {
			for kx := range p.KW {
				row := col[((c*p.KH+ky)*p.KW+kx)*ohw:][:ohw]
				lo, hi := oxRange(p, kx)
				off := kx - p.PadLeft
				for oy := range p.OH {
					iy := oy*p.StrideH + ky - p.PadTop
					if iy < 0 || iy >= p.H || lo >= hi {
						continue
					}
					dst := xc[iy*p.W : (iy+1)*p.W]
					src := row[oy*p.OW : (oy+1)*p.OW]
					if p.StrideW == 1 {
						d, s := dst[lo+off:hi+off], src[lo:hi]
						for i := range d {
							d[i] += s[i]
						}
					} else {
						for ox := lo; ox < hi; ox++ {
							dst[ox*p.StrideW+off] += src[ox]
						}
					}
				}
			}
		}
	}
}

// forImages runs fn(n, scratch, threads) for every image, spreading images
// over goroutines; scratch is a per-goroutine slice of colLen floats.
func (d *Device) forImages(nImg, colLen int, fn func(n int, scratch []float32, threads int)) {
	workers := min(d.threads, nImg)
	if workers <= 1 {
		scratch := make([]float32, colLen)
		for n := range nImg {
			fn(n, scratch, d.threads)
		}
		return
	}
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			scratch := make([]float32, colLen)
			for n := w; n < nImg; n += workers {
				fn(n, scratch, 1)
			}
		})
	}
	wg.Wait()
}

// Conv2D computes y = conv(x, w) + b (see tensor.ConvParams).
func (d *Device) Conv2D(y, x, w, b tensor.Buffer, p tensor.ConvParams) {
	ys, xs, ws, bs := f32(y), f32(x), f32(w), f32(b)
	ckk, ohw, hw := p.C*p.KH*p.KW, p.OH*p.OW, p.H*p.W
	point := isPointwise(p)
	colLen := ckk * ohw
	if point {
		colLen = 0
	}
	wA := d.newGemmA(false, p.F, ckk, ws, ckk) // packed once for all images
	d.forImages(p.N, colLen, func(n int, col []float32, threads int) {
		yn := ys[n*p.F*ohw : (n+1)*p.F*ohw]
		beta := float32(0)
		if bs != nil {
			for f := range p.F {
				row := yn[f*ohw : (f+1)*ohw]
				for i := range row {
					row[i] = bs[f]
				}
			}
			beta = 1
		}
		src := xs[n*p.C*hw : (n+1)*p.C*hw]
		if !point {
			im2col(col, src, p)
			src = col
		}
		d.sgemmA(threads, wA, false, ohw, src, ohw, beta, yn, ohw)
	})
}

// Conv2DBackwardInput computes dx = col2im(wᵀ·dy) for every image.
func (d *Device) Conv2DBackwardInput(dx, dy, w tensor.Buffer, p tensor.ConvParams) {
	dxs, dys, ws := f32(dx), f32(dy), f32(w)
	ckk, ohw, hw := p.C*p.KH*p.KW, p.OH*p.OW, p.H*p.W
	point := isPointwise(p)
	wT := d.newGemmA(true, ckk, p.F, ws, ckk) // wᵀ, packed once for all images
	d.forImages(p.N, ckk*ohw, func(n int, col []float32, threads int) {
		dxn := dxs[n*p.C*hw : (n+1)*p.C*hw]
		dyn := dys[n*p.F*ohw : (n+1)*p.F*ohw]
		if point {
			d.sgemmA(threads, wT, false, hw, dyn, hw, 0, dxn, hw)
			return
		}
		d.sgemmA(threads, wT, false, ohw, dyn, ohw, 0, col, ohw)
		clear(dxn)
		col2im(dxn, col, p)
	})
}

// Conv2DBackwardWeight computes dw = Σ_n dy_n·col_nᵀ and db = Σ dy over
// images and pixels. Each goroutine sums its images into a private dw.
func (d *Device) Conv2DBackwardWeight(dw, db, x, dy tensor.Buffer, p tensor.ConvParams) {
	dws, dbs, xs, dys := f32(dw), f32(db), f32(x), f32(dy)
	ckk, ohw, hw := p.C*p.KH*p.KW, p.OH*p.OW, p.H*p.W
	point := isPointwise(p)
	workers := max(1, min(d.threads, p.N))
	partial := make([][]float32, workers)
	var wg sync.WaitGroup
	for wk := range workers {
		threads := 1
		if workers == 1 {
			threads = d.threads
		}
		wg.Go(func() {
			acc := dws
			if wk > 0 {
				acc = make([]float32, p.F*ckk)
			}
			partial[wk] = acc
			var col []float32
			if !point {
				col = make([]float32, ckk*ohw)
			}
			beta := float32(0)
			for n := wk; n < p.N; n += workers {
				src := xs[n*p.C*hw : (n+1)*p.C*hw]
				if !point {
					im2col(col, src, p)
					src = col
				}
				d.sgemm(threads, false, true, p.F, ckk, ohw, 1, dys[n*p.F*ohw:], ohw, src, ohw, beta, acc, ckk)
				beta = 1
			}
			if beta == 0 { // no image: this worker contributes zeros
				clear(acc[:p.F*ckk])
			}
		})
	}
	wg.Wait()
	for _, acc := range partial[1:] {
		for i := range p.F * ckk {
			dws[i] += acc[i]
		}
	}
	if dbs != nil {
		for f := range p.F {
			var s float64
			for n := range p.N {
				for _, v := range dys[(n*p.F+f)*ohw : (n*p.F+f+1)*ohw] {
					s += float64(v)
				}
			}
			dbs[f] = float32(s)
		}
	}
}
