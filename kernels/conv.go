package kernels

import (
	"github.com/godiffuse/godiffuse/kernels/asm"
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

// im2col fills col (C·KH·KW × OH·OW) from one image x (C × H × W); wide:
// with the AVX-512 kernels where they apply.
func im2col(col, x []float32, p tensor.ConvParams, wide bool) { im2colPlanes(col, x, p, p.H*p.W, wide) }

// im2colPlanes is im2col for an image whose channels lie plane floats apart
// (a band of rows of a taller image: see rowBand).
func im2colPlanes(col, x []float32, p tensor.ConvParams, plane int, wide bool) {
	ohw := p.OH * p.OW
	if p.StrideW == 2 && p.KW == 3 && p.PadLeft == 1 && 2*p.OW-1 <= p.W {
		if wide {
			im2colDownWide(col, x, p, plane)
			return
		}
		im2colDown(col, x, p, plane)
		return
	}
	for c := range p.C {
		xc := x[c*plane:][:p.H*p.W]
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

// im2colDown is im2colPlanes for the U-Nets' downsamplers (3 wide, stride
// 2, one column of padding on the left, none read on the right): the three
// rows of taps kx = 0, 1, 2 filled together from each input row, where
// the general loop's per-row bookkeeping cost more than its seven values
// (a 48-channel 14×14 downsampler at batch 1, frozen weights, one thread:
// im2col 20 → 14 µs, the convolution 39–43 → 34 µs; Zen 5, 2026-12-06).
func im2colDown(col, x []float32, p tensor.ConvParams, plane int) {
	ohw, ow, h, w := p.OH*p.OW, p.OW, p.H, p.W
	for c := range p.C {
		xc := x[c*plane:][:h*w]
		for ky := range p.KH {
			base := (c*p.KH + ky) * 3 * ohw
			r0, r1, r2 := col[base:][:ohw], col[base+ohw:][:ohw], col[base+2*ohw:][:ohw]
			for oy := range p.OH {
				d0, d1, d2 := r0[oy*ow:][:ow], r1[oy*ow:][:ow], r2[oy*ow:][:ow]
				iy := oy*p.StrideH + ky - p.PadTop
				if iy < 0 || iy >= h {
					clear(d0)
					clear(d1)
					clear(d2)
					continue
				}
				src := xc[iy*w:][:w]
				d0[0] = 0 // ix = -1: the padding
				for ox := 1; ox < ow; ox++ {
					d0[ox] = src[2*ox-1]
				}
				for ox := range ow {
					d1[ox] = src[2*ox]
				}
				for ox := range ow {
					if 2*ox+1 < w {
						d2[ox] = src[2*ox+1]
					} else {
						d2[ox] = 0
					}
				}
			}
		}
	}
}

// im2colDownWide is im2colDown by asm.DownRowsAVX512: for each channel and
// row of taps ky, the output rows whose input row lies in the image in
// calls of 16 output columns (the rows above and below it cleared). A
// 32-channel 28×28 downsampler's im2col took 57 % of the convolution in
// the Go loop (bench/RESULTS.md, 2026-12-06 evening).
func im2colDownWide(col, x []float32, p tensor.ConvParams, plane int) {
	ohw, ow, h, w := p.OH*p.OW, p.OW, p.H, p.W
	for ky := range p.KH {
		// output rows [lo, hi) read input rows 2·oy + ky − PadTop in [0, h)
		lo, hi := max(0, (p.PadTop-ky+1)/2), 0
		if last := h - 1 - ky + p.PadTop; last >= 0 { // 2·oy ≤ last
			hi = min(p.OH, last/2+1)
		}
		hi = max(hi, lo)
		for c := range p.C {
			base := (c*p.KH + ky) * 3 * ohw
			r := col[base:][:3*ohw]
			for kx := range 3 { // the output rows whose input row is padding
				row := r[kx*ohw:][:ohw]
				clear(row[:lo*ow])
				clear(row[hi*ow:])
			}
			if hi <= lo {
				continue
			}
			src := x[c*plane+(2*lo+ky-p.PadTop)*w:][:(hi-lo-1)*2*w+w]
			for b := 0; 16*b < ow; b++ {
				n, first := min(16, ow-16*b), 32*b
				store := uint16(1<<n - 1)
				load := uint32(1<<min(32, w-first) - 1)
				shifted := uint32(1<<min(32, w-first+1) - 1)
				if b == 0 {
					shifted &^= 1 // column −1: the padding
				}
				o := lo*ow + 16*b
				asm.DownRowsAVX512(&r[o], &r[ohw+o], &r[2*ohw+o], ow, &src[first], 2*w, hi-lo, load, shifted, store)
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

// colPool holds the per-image column buffers of forImages: sized by the
// layer and the batch (a training step's are tens of MB), so the collector
// may take them back, unlike the bounded arrays of packArrays.
var colPool = sync.Pool{New: func() any { return new([]float32) }}

func getCol(n int) *[]float32 {
	p := colPool.Get().(*[]float32)
	if cap(*p) < n {
		*p = make([]float32, n)
	}
	*p = (*p)[:n]
	return p
}

// forImages runs fn(n, scratch, threads) for every image, spreading images
// over goroutines; scratch is a per-goroutine slice of colLen floats.
func (d *Device) forImages(nImg, colLen int, fn func(n int, scratch []float32, threads int)) {
	workers := min(d.nThreads(), nImg)
	if workers <= 1 {
		buf := getCol(colLen)
		defer colPool.Put(buf)
		for n := range nImg {
			fn(n, *buf, d.nThreads())
		}
		return
	}
	runParts(workers, func(w int) {
		buf := getCol(colLen)
		defer colPool.Put(buf)
		for n := w; n < nImg; n += workers {
			fn(n, *buf, 1)
		}
	})
}

// ---------------------------------------------------------------------------
// Stride-1 convolution without im2col ("shifted rows").
//
// Pad the image once into xp (C × Hp × Wp, Hp = PT+H+PB, Wp = PL+W+PR) and
// index the outputs by j = oy·Wp + ox, as if the output were Wp wide. Then
// row (c, ky, kx) of the im2col matrix is the window of xp that starts at
//
//	off(c, ky, kx) = c·Hp·Wp + ky·Wp + kx,   col(c·KH·KW + ky·KW + kx, j) = xp[off + j]
//
// so the GEMM reads B straight from xp (operandB.off): the unpacked-B
// micro-kernels load each row of a 16-column panel from its offset, and the
// im2col matrix, KH·KW times the image, is never written nor packed. The
// price is KW-1 wasted output columns per row (j with ox ≥ OW), which is why
// only outputs at least Tuning.ShiftMinWidth wide take this path.
//
// The weight gradient, when the im2col matrix is larger than dy (C·KH·KW ≥
// F), computes dwᵀ = col·dyᵀ with the unpacked-A micro-kernels reading the
// rows of col from xp the same way, six at a time. The input gradient is the
// same kind of convolution of dy with the weights flipped and C, F swapped
// (flippedConv), which replaces col2im where dy can be read unpacked.
// ---------------------------------------------------------------------------

// shiftPlan holds the padded geometry and the row offsets of one convolution.
type shiftPlan struct {
	hp, wp int
	n      int   // output positions j: (OH-1)·Wp + OW (the last row's waste is left out)
	off    []int // per row of the im2col matrix
}

// newShiftPlan's offsets come from a pool (a fresh slice per call was 5 %
// of the bytes a batch-1 forward allocated): release hands them back.
func newShiftPlan(p tensor.ConvParams) (s shiftPlan, release func()) {
	s = shiftPlan{hp: p.PadTop + p.H + p.PadBottom, wp: p.PadLeft + p.W + p.PadRight, n: shiftN(p)}
	offs := getOffsets(p.C * p.KH * p.KW)
	s.off = tapOffsets((*offs)[:0], p, s.hp, s.wp)
	return s, func() { offsetPool.Put(offs) }
}

// tapOffsets appends to dst the offset c·hp·wp + ky·wp + kx of every tap
// (c, ky, kx), in that order, in a padded image of C planes hp × wp.
func tapOffsets(dst []int, p tensor.ConvParams, hp, wp int) []int {
	for c := range p.C {
		for ky := range p.KH {
			for kx := range p.KW {
				dst = append(dst, (c*hp+ky)*wp+kx)
			}
		}
	}
	return dst
}

// shiftN is the number of output positions j of the shifted-rows GEMM.
func shiftN(p tensor.ConvParams) int { return (p.OH-1)*(p.PadLeft+p.W+p.PadRight) + p.OW }

// pad writes image x (C × H × W) into xp (C × Hp × Wp) with zero borders.
func (s shiftPlan) pad(xp, x []float32, p tensor.ConvParams, wide bool) {
	padRows(xp, x, p, 0, s.hp, s.wp, wide)
}

// padRows writes the padded rows r0 … r0+hp-1 of image x (C × H × W) into
// xp (C × hp × wp): zero where they fall in the padding (or past the image,
// for a band of rows shorter than the others). wide: the rows copied by
// asm.CopyRowsAVX512, a call per channel (a memmove call per row was a third
// of tiny-mnist's last convolution).
func padRows(xp, x []float32, p tensor.ConvParams, r0, hp, wp int, wide bool) {
	lo, hi := max(r0, p.PadTop), min(r0+hp, p.PadTop+p.H) // padded rows holding image rows
	for c := range p.C {
		xc := xp[c*hp*wp:][:hp*wp]
		if hi <= lo {
			clear(xc)
			continue
		}
		clear(xc[:(lo-r0)*wp])
		clear(xc[(hi-r0)*wp:])
		for py := lo; py < hi; py++ {
			row := xc[(py-r0)*wp:][:wp]
			for i := range p.PadLeft {
				row[i] = 0
			}
			for i := p.PadLeft + p.W; i < wp; i++ {
				row[i] = 0
			}
		}
		src := x[(c*p.H+lo-p.PadTop)*p.W:][:(hi-lo)*p.W]
		if wide && p.W > 0 {
			asm.CopyRowsAVX512(&xc[(lo-r0)*wp+p.PadLeft], wp, &src[0], p.W, hi-lo, p.W)
			continue
		}
		for i := range hi - lo {
			copy(xc[(lo-r0+i)*wp+p.PadLeft:][:p.W], src[i*p.W:][:p.W])
		}
	}
}

// convShifted runs y = conv(x, w) + b for every image by shifted rows; b may be nil.
func (d *Device) convShifted(ys, xs []float32, wA gemmA, bs []float32, p tensor.ConvParams) {
	s, release := newShiftPlan(p)
	defer release()
	ohw, chw, padLen := p.OH*p.OW, p.C*p.H*p.W, p.C*s.hp*s.wp
	ckk, nr := p.C*p.KH*p.KW, wA.nr()
	d.forImages(p.N, padLen+p.F*s.n, func(n int, scratch []float32, threads int) {
		xp, out := scratch[:padLen], scratch[padLen:]
		s.pad(xp, xs[n*chw:(n+1)*chw], p, d.wide())
		yn := ys[n*p.F*ohw : (n+1)*p.F*ohw]
		// cols computes the columns [j0, j1) of the product (the bias as the
		// tiles' first values), then copies the outputs among them into y,
		// leaving out the padding columns.
		cols := func(j0, j1, threads int) {
			d.sgemmABias(threads, wA, j1-j0, operandB{b: xp, off: s.off}.cols(j0), 0, bs, out[j0:], s.n)
			for oy := j0 / s.wp; oy*s.wp < j1; oy++ {
				a, b := max(j0, oy*s.wp), min(j1, oy*s.wp+p.OW)
				for f := range p.F {
					copy(yn[(f*p.OH+oy)*p.OW+a-oy*s.wp:][:max(0, b-a)], out[f*s.n+a:])
				}
			}
		}
		panels := (s.n + nr - 1) / nr
		if threads <= 1 || d.oneThread(p.F*ckk*ohw) || p.F*ckk*s.n < minSplitMACs || panels < 2 {
			cols(0, s.n, threads)
			return
		}
		// One image on several threads: whole panels of columns each (as
		// the GEMM would split them), so that each copies out what it
		// computed. Split inside the GEMM, the copy read half of the product
		// from the other core (ddpm-cifar10-32's 3→128 at 32×32 at batch 1:
		// 134 µs on two threads, 80 on one; bench/RESULTS.md, 2026-12-06
		// evening).
		parts := min(threads, panels)
		runParts(parts, func(t int) { cols(t*panels/parts*nr, min(s.n, (t+1)*panels/parts*nr), 1) })
	})
}

// flippedConv returns the stride-1 convolution q with q(dy) = the input
// gradient of p: dx[c, y, x] = Σ_{f,ky,kx} w[f, c, ky, kx]·dy[f, y+PT-ky, x+PL-kx]
// is a correlation of dy, padded by K-1-P on each side, with the weights
// flipped in both axes and C, F swapped. It needs stride 1 and P ≤ K-1.
// The rows kernels make this cheaper than col2im: B (dy) is never packed,
// and the KH·KW-times larger column matrix is never written or scattered.
func flippedConv(p tensor.ConvParams) (tensor.ConvParams, bool) {
	q := tensor.ConvParams{N: p.N, C: p.F, H: p.OH, W: p.OW, F: p.C, KH: p.KH, KW: p.KW, StrideH: 1, StrideW: 1,
		PadTop: p.KH - 1 - p.PadTop, PadBottom: p.KH - 1 - p.PadBottom, PadLeft: p.KW - 1 - p.PadLeft, PadRight: p.KW - 1 - p.PadRight,
		OH: p.H, OW: p.W}
	ok := p.StrideH == 1 && p.StrideW == 1 && q.PadTop >= 0 && q.PadBottom >= 0 && q.PadLeft >= 0 && q.PadRight >= 0
	return q, ok
}

// convShiftedBackwardWeight computes dw = Σ_n dy_n·col_nᵀ with col_n read from
// the padded image, and dy_n spread to rows Wp wide with zeros in the wasted
// columns. Where the level has the unpacked-A kernels it computes dwᵀ =
// col_n·dy_nᵀ instead, reading col_n's rows straight from the image: then
// only dy_n (F rows) is packed, not the C·KH·KW-row column matrix.
func (d *Device) convShiftedBackwardWeight(dws, xs, dys []float32, p tensor.ConvParams) {
	s, release := newShiftPlan(p)
	defer release()
	ckk, ohw, chw, padLen := p.C*p.KH*p.KW, p.OH*p.OW, p.C*p.H*p.W, p.C*s.hp*s.wp
	mk, _ := d.microKernel()
	rowsA := mk.rowsAAdd != nil
	dst := dws
	if rowsA {
		dst = make([]float32, ckk*p.F) // dwᵀ
	}
	d.sumOverImages(dst, p.F*ckk, padLen+p.F*s.n, p.N, ohw, func(n int, acc, scratch []float32, threads int, beta float32) {
		xp, dyp := scratch[:padLen], scratch[padLen:]
		s.pad(xp, xs[n*chw:(n+1)*chw], p, d.wide())
		for f := range p.F {
			row := dyp[f*s.n : (f+1)*s.n]
			for oy := range p.OH {
				seg := row[oy*s.wp:]
				copy(seg[:p.OW], dys[n*p.F*ohw+(f*p.OH+oy)*p.OW:][:p.OW])
				if oy < p.OH-1 {
					clear(seg[p.OW:s.wp])
				}
			}
		}
		if rowsA {
			sgemmRowsAThreads(mk, threads, ckk, p.F, s.n, xp, s.off, operandB{b: dyp, ld: s.n, trans: true}, beta, acc, p.F)
			return
		}
		d.sgemm(threads, gemm{M: p.F, N: ckk, K: s.n, Alpha: 1, A: dyp, LdA: s.n, B: operandB{b: xp, trans: true, off: s.off}, Beta: beta, C: acc, LdC: ckk})
	})
	if rowsA {
		for i := range ckk {
			for f := range p.F {
				dws[f*ckk+i] = dst[i*p.F+f]
			}
		}
	}
}

// sumOverImages sets dst (size floats) to Σ_n of what fn adds for image n:
// fn(n, acc, scratch, threads, beta) computes acc = contribution + beta·acc.
// k is the length of each image's reduction (its output pixels). Images are
// summed into reductionSlots(k) partial sums (see forSlots), added in slot
// order: the result does not depend on the thread count.
func (d *Device) sumOverImages(dst []float32, size, scratchLen, nImg, k int, fn func(n int, acc, scratch []float32, threads int, beta float32)) {
	slots := max(1, min(reductionSlots(k), nImg))
	partial := make([][]float32, slots)
	partial[0] = dst[:size]
	if nImg == 0 {
		clear(partial[0])
		return
	}
	for s := 1; s < slots; s++ {
		partial[s] = getScratch(size) // overwritten by the slot's first image
	}
	threads := d.nThreads()
	scratch := make([][]float32, min(slots, threads))
	forSlots(threads, nImg, slots, func(wk, slot, n, threads int) {
		if scratch[wk] == nil {
			scratch[wk] = make([]float32, scratchLen)
		}
		beta := float32(1)
		if n == slot { // the slot's first image overwrites
			beta = 0
		}
		fn(n, partial[slot], scratch[wk], threads, beta)
	})
	for _, acc := range partial[1:] {
		for i, v := range acc {
			dst[i] += v
		}
		putScratch(acc)
	}
}

// Conv2D computes y = conv(x, w) + b (see tensor.ConvParams).
func (d *Device) Conv2D(y, x, w, b tensor.Buffer, p tensor.ConvParams) {
	ws, release := d.floats(w) // F16 weights are widened
	defer release()
	ys, xs, bs := f32(y), f32(x), f32(b)
	ckk, ohw, hw := p.C*p.KH*p.KW, p.OH*p.OW, p.H*p.W
	path := d.PlanConv2D(p).Forward
	if path == ConvPhases {
		q, _ := as3D(p)
		d.Conv3D(y, x, w, b, q)
		return
	}
	switch path {
	case ConvWinograd:
		d.convWinograd(ys, xs, w, ws, bs, p, false)
		return
	case ConvDirect:
		d.convDirect(ys, xs, w, ws, bs, p)
		return
	case ConvTaps:
		d.convTaps(ys, xs, ws, bs, p)
		return
	}
	wA, releaseW := d.packedWeightsOf(w, ws, p.F, ckk) // packed once for all images, or kept from the last call
	defer releaseW()
	point := path == ConvPointwise
	colLen := ckk * ohw
	if point {
		colLen = 0
	}
	threads := d.nThreads() // once: a Repeat call elsewhere may cap the device meanwhile
	if threads > 1 && p.N == 1 && d.oneThread(p.F*ckk*ohw) {
		d.convImageRows(ys, xs, wA, bs, p, path, 0, p.F)
		return
	}
	if parts := d.convRowParts(wA, p, path); parts > 1 {
		d.convByRows(ys, xs, wA, bs, p, path, parts)
		return
	}
	if path == ConvIm2col && p.N == 1 && threads > 1 && wA.pre != nil && p.OH >= 2*threads {
		d.im2colBands(ys, xs, wA, bs, p)
		return
	}
	if path == ConvShifted {
		d.convShifted(ys, xs, wA, bs, p)
		return
	}
	if p.N == 1 { // one image: no closure to make (see binaryParts)
		col := getCol(colLen)
		defer colPool.Put(col)
		d.convImage(ys, xs, *col, wA, bs, p, point, threads)
		return
	}
	d.forImages(p.N, colLen, func(n int, col []float32, threads int) {
		d.convImage(ys[n*p.F*ohw:(n+1)*p.F*ohw], xs[n*p.C*hw:(n+1)*p.C*hw], col, wA, bs, p, point, threads)
	})
}

// convImage is the pointwise or im2col convolution of one image xs into
// ys, its GEMM on threads threads (col: the im2col scratch, unused when
// pointwise).
func (d *Device) convImage(ys, xs, col []float32, wA gemmA, bs []float32, p tensor.ConvParams, pointwise bool, threads int) {
	ohw := p.OH * p.OW
	src := xs
	if !pointwise {
		im2col(col, xs, p, d.wide())
		src = col
	}
	d.sgemmABias(threads, wA, ohw, operandB{b: src, ld: ohw}, 0, bs, ys, ohw)
}

// Conv2DBackwardInput computes dx = col2im(wᵀ·dy) for every image, or, for
// a stride-1 convolution on the shifted-rows path, as the convolution of dy
// with the flipped weights (see flippedConv).
func (d *Device) Conv2DBackwardInput(dx, dy, w tensor.Buffer, p tensor.ConvParams) {
	ws, release := d.floats(w)
	defer release()
	dxs, dys := f32(dx), f32(dy)
	ckk, ohw, hw := p.C*p.KH*p.KW, p.OH*p.OW, p.H*p.W
	path := d.PlanConv2D(p).BackwardInput
	switch path {
	case ConvPhases:
		q, _ := as3D(p)
		d.Conv3DBackwardInput(dx, dy, w, q)
		return
	case ConvFlippedWinograd:
		q, _ := flippedConv(p)
		d.convWinograd(dxs, dys, w, ws, nil, q, true)
		return
	case ConvFlippedShifted:
		q, _ := flippedConv(p)
		fkk := p.F * p.KH * p.KW
		wf := make([]float32, p.C*fkk)
		for f := range p.F {
			for c := range p.C {
				src := ws[(f*p.C+c)*p.KH*p.KW:][:p.KH*p.KW]
				dst := wf[c*fkk+f*p.KH*p.KW:][:p.KH*p.KW]
				for i, v := range src {
					dst[len(dst)-1-i] = v // ky, kx → KH-1-ky, KW-1-kx
				}
			}
		}
		d.convShifted(dxs, dys, d.newGemmA(false, p.C, fkk, wf, fkk), nil, q)
		return
	}
	wT := d.newGemmA(true, ckk, p.F, ws, ckk) // wᵀ, packed once for all images
	d.forImages(p.N, ckk*ohw, func(n int, col []float32, threads int) {
		dxn := dxs[n*p.C*hw : (n+1)*p.C*hw]
		dyn := dys[n*p.F*ohw : (n+1)*p.F*ohw]
		if path == ConvPointwise {
			d.sgemmA(threads, wT, hw, operandB{b: dyn, ld: hw}, 0, dxn, hw)
			return
		}
		d.sgemmA(threads, wT, ohw, operandB{b: dyn, ld: ohw}, 0, col, ohw)
		clear(dxn)
		col2im(dxn, col, p)
	})
}

// Conv2DBackwardWeight computes dw = Σ_n dy_n·col_nᵀ and db = Σ dy over
// images and pixels.
func (d *Device) Conv2DBackwardWeight(dw, db, x, dy tensor.Buffer, p tensor.ConvParams) {
	dws, dbs, xs, dys := f32(dw), f32(db), f32(x), f32(dy)
	ckk, ohw, hw := p.C*p.KH*p.KW, p.OH*p.OW, p.H*p.W
	switch d.PlanConv2D(p).BackwardWeight {
	case ConvPhases:
		q, _ := as3D(p)
		d.Conv3DBackwardWeight(dw, db, x, dy, q)
		return
	case ConvWinograd:
		d.convWinogradBackwardWeight(dws, xs, dys, p)
	case ConvShifted:
		d.convShiftedBackwardWeight(dws, xs, dys, p)
	case ConvPointwise:
		d.sumOverImages(dws, p.F*ckk, 0, p.N, ohw, func(n int, acc, _ []float32, threads int, beta float32) {
			d.sgemm(threads, gemm{M: p.F, N: ckk, K: ohw, Alpha: 1, A: dys[n*p.F*ohw:], LdA: ohw, B: operandB{b: xs[n*p.C*hw:], ld: hw, trans: true}, Beta: beta, C: acc, LdC: ckk})
		})
	default:
		d.sumOverImages(dws, p.F*ckk, ckk*ohw, p.N, ohw, func(n int, acc, col []float32, threads int, beta float32) {
			im2col(col, xs[n*p.C*hw:(n+1)*p.C*hw], p, d.wide())
			d.sgemm(threads, gemm{M: p.F, N: ckk, K: ohw, Alpha: 1, A: dys[n*p.F*ohw:], LdA: ohw, B: operandB{b: col, ld: ohw, trans: true}, Beta: beta, C: acc, LdC: ckk})
		})
	}
	if dbs != nil {
		// Channels over the cores, at least 64 K values a part.
		d.parallelFor(p.F, 1+(1<<16)/max(1, p.N*ohw), func(lo, hi int) {
			for f := lo; f < hi; f++ {
				var s float64
				for n := range p.N {
					s += sum64(dys[(n*p.F+f)*ohw : (n*p.F+f+1)*ohw])
				}
				dbs[f] = float32(s)
			}
		})
	}
}

// convRowParts is how many threads split a one-image forward convolution by
// output channels (rows of the weights) instead of by columns: 1 (no such
// split) unless its columns are too few to give every thread two panels.
// Then a split by columns leaves threads idle or with a sliver each, and
// every thread streams all the weights for it; split by rows, each streams
// its share, and builds its own copy of the (small) column operand instead
// of reading the one another core wrote: ddpm-cifar10-32's 256-channel 4×4
// convolutions at batch 1 (im2col, 16 columns) ran 1.25× slower on two
// threads than on one split by columns (bench/RESULTS.md, 2026-12-04
// afternoon).
func (d *Device) convRowParts(wA gemmA, p tensor.ConvParams, path ConvPath) int {
	pa, threads := wA.pre, d.nThreads()
	if threads <= 1 || p.N != 1 || pa == nil || pa.icBlocks != 1 {
		return 1
	}
	n := p.OH * p.OW
	if path == ConvShifted {
		n = shiftN(p)
	}
	if (n+pa.mk.nr-1)/pa.mk.nr >= 2*threads {
		return 1
	}
	return min(threads, (p.F+pa.mk.mr-1)/pa.mk.mr/2)
}

// convByRows runs a one-image convolution on parts threads that each own a
// band of output channels, from building the column operand to writing
// their channels of y (convImageRows).
func (d *Device) convByRows(ys, xs []float32, wA gemmA, bs []float32, p tensor.ConvParams, path ConvPath, parts int) {
	mr := wA.pre.mk.mr
	panels := (p.F + mr - 1) / mr
	runParts(parts, func(t int) {
		d.convImageRows(ys, xs, wA, bs, p, path, t*panels/parts*mr, min(p.F, (t+1)*panels/parts*mr))
	})
}

// convImageRows computes output channels [f0, f1) of a one-image
// convolution on the calling goroutine: it builds the column operand
// itself (im2col, or the padded image of the shifted rows; the image itself
// when pointwise) and writes those channels of y.
func (d *Device) convImageRows(ys, xs []float32, wA gemmA, bs []float32, p tensor.ConvParams, path ConvPath, f0, f1 int) {
	ohw := p.OH * p.OW
	w := wA.rows(f0, f1)
	var bias []float32
	if bs != nil {
		bias = bs[f0:f1]
	}
	switch path {
	case ConvPointwise:
		d.sgemmABias(1, w, ohw, operandB{b: xs, ld: ohw}, 0, bias, ys[f0*ohw:], ohw)
	case ConvShifted:
		s, release := newShiftPlan(p)
		defer release()
		padLen := p.C * s.hp * s.wp
		buf := getCol(padLen + (f1-f0)*s.n)
		defer colPool.Put(buf)
		xp, out := (*buf)[:padLen], (*buf)[padLen:]
		s.pad(xp, xs, p, d.wide())
		d.sgemmABias(1, w, s.n, operandB{b: xp, off: s.off}, 0, bias, out, s.n)
		for f := f0; f < f1; f++ {
			for oy := range p.OH {
				copy(ys[(f*p.OH+oy)*p.OW:][:p.OW], out[(f-f0)*s.n+oy*s.wp:][:p.OW])
			}
		}
	default:
		buf := getCol(p.C * p.KH * p.KW * ohw)
		defer colPool.Put(buf)
		im2col(*buf, xs, p, d.wide())
		d.sgemmABias(1, w, ohw, operandB{b: *buf, ld: ohw}, 0, bias, ys[f0*ohw:], ohw)
	}
}

// rowBand is the convolution of output rows [r0, r1) of one image: the
// first input row it reads, lo, and a convolution of the input rows from lo
// with the padding it needs above and below.
func rowBand(p tensor.ConvParams, r0, r1 int) (q tensor.ConvParams, lo int) {
	first, last := r0*p.StrideH-p.PadTop, (r1-1)*p.StrideH-p.PadTop+p.KH // input rows, padding included
	lo, hi := max(0, first), min(p.H, last)
	q = p
	q.H, q.PadTop, q.PadBottom, q.OH = hi-lo, lo-first, last-hi, r1-r0
	return q, lo
}

// im2colBands runs a one-image im2col convolution on the device's threads,
// each owning a band of output rows: it writes the columns of its band and
// multiplies them itself. Splitting the one column matrix's GEMM by columns
// instead had each thread read the part another core had written (a
// 32-channel 28×28 stride-2 convolution ran 124 µs on two threads against
// 67 on one; Zen 5, 2026-12-04 afternoon).
func (d *Device) im2colBands(ys, xs []float32, wA gemmA, bs []float32, p tensor.ConvParams) {
	parts := min(d.nThreads(), p.OH/2)
	ohw, ckk := p.OH*p.OW, p.C*p.KH*p.KW
	runParts(parts, func(t int) {
		r0, r1 := t*p.OH/parts, (t+1)*p.OH/parts
		q, lo := rowBand(p, r0, r1)
		n := q.OH * q.OW
		buf := getCol(ckk * n)
		defer colPool.Put(buf)
		im2colPlanes(*buf, xs[lo*p.W:], q, p.H*p.W, d.wide())
		sgemmPrepacked(wA.pre, wA.row0, wA.m, 1, n, ohw, operandB{b: *buf, ld: n}, 0, bs, ys[r0*p.OW:], ohw)
	})
}
