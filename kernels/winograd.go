package kernels

import (
	"sync"

	"github.com/godiffuse/godiffuse/kernels/asm"
	"github.com/godiffuse/godiffuse/tensor"
)

// ---------------------------------------------------------------------------
// Winograd F(2×2, 3×3) for stride-1 3×3 convolutions (Lavin & Gray, "Fast
// Algorithms for Convolutional Neural Networks", 2015).
//
// In one dimension, two outputs of a 3-tap correlation,
//
//	y0 = d0·g0 + d1·g1 + d2·g2,   y1 = d1·g0 + d2·g1 + d3·g2,
//
// need six multiplications done directly but only four as
//
//	m0 = (d0 - d2)·g0              m1 = (d1 + d2)·(g0 + g1 + g2)/2
//	m2 = (d2 - d1)·(g0 - g1 + g2)/2   m3 = (d1 - d3)·g2
//	y0 = m0 + m1 + m2,  y1 = m1 - m2 - m3.
//
// In matrix form y = Aᵀ[(G·g) ⊙ (Bᵀ·d)] with
//
//	Bᵀ = | 1  0 -1  0 |   G = | 1    0    0  |   Aᵀ = | 1  1  1  0 |
//	     | 0  1  1  0 |       | ½    ½    ½  |        | 0  1 -1 -1 |
//	     | 0 -1  1  0 |       | ½   -½    ½  |
//	     | 0  1  0 -1 |       | 0    0    1  |
//
// and nested in two dimensions a 2×2 output tile from a 4×4 input tile d is
// Y = Aᵀ[(G g Gᵀ) ⊙ (Bᵀ d B)]A: 16 multiplications instead of 36. Over
// channels the elementwise product becomes a sum, so with the weights
// transformed once, U[ξ] = (G g_{f,c} Gᵀ)[ξ] (an F×C matrix for each of the
// 16 positions ξ of the 4×4 tile), and the input tiles transformed once,
// V[ξ] = (Bᵀ d_{c,t} B)[ξ] (C × tiles), the convolution is 16 independent
// GEMMs M[ξ] = U[ξ]·V[ξ] followed by the output transform Aᵀ M A of every
// tile: 2.25× fewer multiply-adds than the direct convolution, for the
// price of the transforms, which are O(C + F) additions per pixel against
// the GEMMs' O(C·F).
//
// The tiles of all images are processed in chunks of about Tuning.WinogradTiles tiles
// (whole rows of tiles), so that a chunk's V and M stay in the caches;
// chunks are spread over goroutines, each with its own scratch. Outputs past
// an odd OH or OW are computed from zero padding and not written.
//
// The transforms add and subtract values of the same magnitude and multiply
// by ½ only, so in float32 the result differs from the direct sum by a few
// ulps of the largest partial sums (TestConvAgainstNaive holds it to the
// same tolerance as the direct paths).
// ---------------------------------------------------------------------------

// winoGeom is the tiling of one convolution into m×m output tiles (m = 2:
// F(2×2, 3×3) here; m = 4: F(4×4, 3×3), winograd4.go).
type winoGeom struct {
	m      int // output tile side; input tiles are (m+2)×(m+2), (m+2)² matrices
	th, tw int // tiles per image: ⌈OH/m⌉ × ⌈OW/m⌉
	wp     int // width of a padded input row: room for ⌈tw/8⌉ blocks of 8 tiles
	rows   int // rows of tiles in all: N·th
	chunk  int // rows of tiles per chunk
	ld     int // row stride of V and M: a chunk's tiles rounded up to 16, plus 16
	cs, fs int // strides between the n matrices of V and of M
	// Strides of x and y (dy) between images and between channels: dense
	// (N, C, H, W) by default; the planes of a volume set their own
	// (conv3d_winograd.go).
	xImg, xCh, yImg, yCh int
}

func newWinoGeom(p tensor.ConvParams, workers, tiles, m int) winoGeom {
	g := winoGeom{m: m, th: (p.OH + m - 1) / m, tw: (p.OW + m - 1) / m,
		xImg: p.C * p.H * p.W, xCh: p.H * p.W, yImg: p.F * p.OH * p.OW, yCh: p.OH * p.OW}
	g.wp = 8*m*((g.tw+7)/8) + m
	g.rows = p.N * g.th
	if g.tw == 0 {
		g.rows = 0 // no output columns: nothing to do
	}
	target := tiles
	if tiles >= 128 {
		target = max(tiles, 16384/(p.C+p.F))
	}
	g.chunk = max(1, min(target/max(g.tw, 1), (g.rows+workers-1)/workers))
	// The GEMMs run on whole 16-column panels (the columns past a chunk's
	// tiles are cleared, computed and never read), and the assembly
	// transforms on blocks of 8 tiles: a row's last block runs past the row,
	// into the next one (written later) or, after the last row, into the 16
	// spare columns.
	g.ld = (g.chunk*g.tw+15)&^15 + 16
	if g.ld%512 == 0 {
		// Rows a multiple of 2 KiB apart would have the GEMMs pack V
		// (readsBUnpacked) for this chunk size only, and since the chunk
		// size follows the thread count, the sums' grouping with it.
		g.ld += 16
	}
	// One cache line more than the matrix, so that the streams of a
	// transform do not share cache sets when C·ld is a multiple of 4 KiB.
	g.cs, g.fs = p.C*g.ld+16, p.F*g.ld+16
	return g
}

// convWinograd computes y = conv(x, w) + b (b may be nil) for a stride-1
// 3×3 convolution by Winograd F(2×2, 3×3), or F(4×4, 3×3) where
// winogradTile says (winograd4.go); with flipped, w is the weights of the
// convolution whose input gradient this is (winogradWeights).
// w is the buffer of ws, the key of the prepared weights (weightcache.go).
func (d *Device) convWinograd(ys, xs []float32, w tensor.Buffer, ws, bs []float32, p tensor.ConvParams, flipped bool) {
	tile := d.winogradTile(p)
	threads := max(1, d.nThreads())
	if tiles := p.N * ((p.OH + tile - 1) / tile) * ((p.OW + tile - 1) / tile); d.oneThread((tile + 2) * (tile + 2) * p.F * p.C * tiles) {
		threads = 1
	}
	g := newWinoGeom(p, threads, d.tune.WinogradTiles, tile)
	if g.rows == 0 {
		return
	}
	var us []gemmA // U[ξ], one per position of the input tile
	if tile == 4 {
		prepared, release := d.winograd4WeightsOf(w, ws, p.F, p.C, flipped)
		defer release()
		us = prepared
	} else {
		prepared, release := d.winogradWeightsOf(w, ws, p.F, p.C, flipped, 1, func(int) []float32 { return ws })
		defer release()
		us = prepared[0][:]
	}
	n := len(us)
	if parts := d.winoRowParts(us[0], g, threads); parts > 1 {
		g := newWinoGeom(p, 1, g.rows*g.tw, tile) // one chunk of every tile
		j := newWinoJob(d, ys, xs, bs, us, p, g)
		j.rowParts = parts
		j.runParts(parts)
		return
	}
	if threads == 1 || g.chunk >= g.rows { // one worker: no job to hand over
		buf := getScratch(winoScratch(n, p, g))
		defer putScratch(buf)
		for r0 := 0; r0 < g.rows; r0 += g.chunk {
			d.winoChunk(buf, ys, xs, bs, us, p, g, r0, min(g.rows, r0+g.chunk), 0, p.F, threads)
		}
		return
	}
	j := newWinoJob(d, ys, xs, bs, us, p, g)
	j.chunks, j.workers, j.threads = g.spread(threads)
	j.runParts(j.workers)
}

// winoScratch is the scratch of one worker of a Winograd convolution with
// n matrices: V, M and the padded input rows.
func winoScratch(n int, p tensor.ConvParams, g winoGeom) int {
	return n*g.cs + n*g.fs + winoPadLen(p, g)
}

// winoJob is a Winograd convolution split over threads: its operands in one
// pooled object that every part reads. A closure capturing them was a heap
// object of ~450 bytes per call (4 KB a batch-1 tiny-mnist forward).
type winoJob struct {
	d          *Device
	ys, xs, bs []float32
	us         []gemmA
	p          tensor.ConvParams
	g          winoGeom
	// Split by chunks of tile rows: worker wk runs chunks wk, wk+workers, …
	// with its GEMMs on threads threads.
	chunks, workers, threads int
	// Or, when rowParts > 0, by output channels (winoRowParts): part t runs
	// every tile for its band of channels, transforming the input into a V
	// of its own, so that each thread reads only what it wrote (and x).
	rowParts int
}

var winoJobs = sync.Pool{New: func() any { return new(winoJob) }}

func newWinoJob(d *Device, ys, xs, bs []float32, us []gemmA, p tensor.ConvParams, g winoGeom) *winoJob {
	j := winoJobs.Get().(*winoJob)
	*j = winoJob{d: d, ys: ys, xs: xs, bs: bs, us: us, p: p, g: g}
	return j
}

// runParts runs the job's parts, then hands it back to the pool.
func (j *winoJob) runParts(parts int) {
	runParts(parts, j.part)
	*j = winoJob{}
	winoJobs.Put(j)
}

func (j *winoJob) part(t int) {
	buf := getScratch(winoScratch(len(j.us), j.p, j.g))
	defer putScratch(buf)
	if j.rowParts > 0 {
		mr := j.us[0].pre.mk.mr
		panels := (j.p.F + mr - 1) / mr
		f0, f1 := t*panels/j.rowParts*mr, min(j.p.F, (t+1)*panels/j.rowParts*mr)
		j.d.winoChunk(buf, j.ys, j.xs, j.bs, j.us, j.p, j.g, 0, j.g.rows, f0, f1, 1)
		return
	}
	for ch := t; ch < j.chunks; ch += j.workers {
		r0 := ch * j.g.chunk
		j.d.winoChunk(buf, j.ys, j.xs, j.bs, j.us, j.p, j.g, r0, min(j.g.rows, r0+j.g.chunk), 0, j.p.F, j.threads)
	}
}

// winoChunk runs the tile rows [r0, r1) of a Winograd convolution (one
// chunk) for the output channels [f0, f1) in buf (n·(g.cs + g.fs) +
// winoPadLen floats for n = len(us)):
// the input transform into V, the rows of every GEMM M[ξ] = U[ξ]·V[ξ] on
// threads, and the output transform of those channels.
func (d *Device) winoChunk(buf, ys, xs, bs []float32, us []gemmA, p tensor.ConvParams, g winoGeom, r0, r1, f0, f1, threads int) {
	n, simd := len(us), d.winoSIMD()
	v, m, rowBuf := buf[:n*g.cs], buf[n*g.cs:n*(g.cs+g.fs)], buf[n*(g.cs+g.fs):]
	nTiles := (r1 - r0) * g.tw
	winoInput(v, xs, rowBuf, p, g, r0, r1, simd, d.wide())
	cols := (nTiles + 15) &^ 15
	// One tile past a multiple of 16 (an image of 7×7 tiles at batch 1)
	// would cost the GEMMs a panel of 16 columns for one: that column is
	// computed alone (prepackedA.column), the rest as whole panels.
	lone := nTiles%16 == 1 && nTiles > 1 && us[0].pre != nil && us[0].pre.hasColumn() && p.C <= rowsKC && us[0].pre.icBlocks == 1
	if lone {
		cols = nTiles - 1
	}
	// On one thread, with the weights prepacked, the products read V in
	// place: their kernel calls are made here, with V's row offsets
	// computed once for all n (productInPlace).
	inPlace := threads == 1 && us[0].pre != nil && us[0].pre.readsInPlace(cols, g.ld)
	var tile []float32 // micro-kernel scratch; its first 64 the lone column's
	if lone || inPlace {
		tp := tiles.Get().(*[tileLen]float32)
		defer tiles.Put(tp)
		tile = tp[:]
	}
	var off []int
	if inPlace {
		offs := rowOffsetsOf(p.C, 0, g.ld)
		defer offsetPool.Put(offs)
		off = *offs
	}
	for xi := range n {
		if cols > nTiles {
			clearPadColumns(v[xi*g.cs:], p.C, g.ld, nTiles)
		}
		a := us[xi].rows(f0, f1)
		if inPlace {
			a.pre.productInPlace(a.row0, a.m, cols, v[xi*g.cs:], off, m[xi*g.fs+f0*g.ld:], g.ld, tile)
		} else {
			d.sgemmA(threads, a, cols, operandB{b: v[xi*g.cs:], ld: g.ld}, 0, m[xi*g.fs+f0*g.ld:], g.ld)
		}
		if lone {
			a.pre.column(a.row0, a.m, v[xi*g.cs+cols:], g.ld, m[xi*g.fs+f0*g.ld+cols:], g.ld, (*[4 * 16]float32)(tile[:4*16]))
		}
	}
	if g.m == 4 {
		winoOutput4(ys, m, bs, rowBuf, p, g, r0, r1, f0, f1, simd)
	} else {
		winoOutput(ys, m, bs, rowBuf, p, g, r0, r1, f0, f1, simd)
	}
}

// clearPadColumns zeroes the columns [tiles, tiles+16) of the rows rows of
// v (ld apart, ld ≥ tiles+16): the GEMMs' last 16-column panel reads them.
// One fixed-size store a row, inline: a clear of the up to 15 columns
// called the runtime once a row, 36·C times per chunk at F(4×4, 3×3), and
// at batch 1 that was ~4 % of tiny-mnist's forward pass (bench/RESULTS.md,
// 2026-12-06 evening).
func clearPadColumns(v []float32, rows, ld, tiles int) {
	for r := range rows {
		*(*[16]float32)(v[r*ld+tiles:]) = [16]float32{}
	}
}

// winoRowParts is how many threads split a convolution by output channels
// (rows of the U[ξ]) instead of by tiles: 1 (no such split) unless there
// are fewer than 48 tiles per thread and more output channels than tiles.
// Split by tiles, every thread streams all the U[ξ] for its few columns; at
// batch 1 the 8×8 level of a U-Net has 16 tiles against 256 channels, and
// ddpm-cifar10-32's 256-channel 8×8 convolutions ran 0.95× as fast on two
// threads as on one, 1.5× split by channels (BenchmarkWinogradBatch1). At
// 16×16 (64 tiles) the split by tiles is 1.1× faster alone, with the
// weights in the L3 cache, but in the network they come from memory (the
// model's 143 MB do not stay cached) and the split by channels, streaming
// half of them per thread, made the batch-1 forward 1–5 % faster
// (bench/RESULTS.md, 2026-12-04 afternoon).
func (d *Device) winoRowParts(u gemmA, g winoGeom, threads int) int {
	pa := u.pre
	tiles := g.rows * g.tw
	if threads <= 1 || pa == nil || pa.icBlocks != 1 || tiles >= 48*threads || tiles >= u.m {
		return 1
	}
	return min(threads, (u.m+pa.mk.mr-1)/pa.mk.mr/2)
}

func (d *Device) winoSIMD() bool { return d.tune.WinogradAsm && d.simd() }

// spread is how the chunks of tile rows of g go over at most threads
// goroutines: the chunks, the workers, and each worker's GEMM threads.
func (g winoGeom) spread(threads int) (chunks, workers, perWorker int) {
	chunks = (g.rows + g.chunk - 1) / g.chunk
	workers = max(1, min(threads, chunks))
	return chunks, workers, max(1, threads/workers)
}

// winoChunks spreads the chunks of tile rows of g over at most threads
// goroutines, each with scratch floats of its own: worker wk runs fn for
// chunks wk, wk + workers, … in order, its GEMMs on the given number of
// threads. Every worker gets at least one chunk.
func (d *Device) winoChunks(g winoGeom, threads, scratch int, fn func(wk int, buf []float32, threads, r0, r1 int)) {
	chunks, workers, threads := g.spread(threads)
	runParts(workers, func(wk int) {
		buf := getScratch(scratch)
		defer putScratch(buf)
		for ch := wk; ch < chunks; ch += workers {
			r0 := ch * g.chunk
			fn(wk, buf, threads, r0, min(g.rows, r0+g.chunk))
		}
	})
}

// winogradWeights returns the 16 matrices U[ξ] (F×C, U[ξ][f][c] = (G·w[f,c]·Gᵀ)[ξ]),
// written straight into the GEMM's packed layout (the transform is as
// cheap as a copy, and a separate pack would read and write U once more),
// the work split over the device's threads.
// With flipped, the kernel of (f, c) is w's kernel of (c, f) rotated by
// 180° (w is then C×F×3×3): the weights of the input gradient as a
// convolution (see flippedConv). buf holds winoWeightsLen floats.
func (d *Device) winogradWeights(buf, w []float32, f, c int, flipped bool) [16]gemmA {
	return [16]gemmA(d.winoWeightsPacked(buf, w, f, c, flipped, winoWeights2))
}

// winoWeightForm is one tile size's weight transform: its n matrices U[ξ],
// the plain-Go transform of one kernel (the specification), and the
// assembly that transforms eight at a time, of plain and of flipped
// weights.
type winoWeightForm struct {
	n      int
	kernel func(u []float32, us, i int, k *[9]float32) // U[ξ] of k into u[ξ·us + i]
	asm    [2]func(u *float32, us int, g *float32, off *int32, blocks int)
}

var (
	winoWeights2 = winoWeightForm{16, winoWeightKernel, [2]func(*float32, int, *float32, *int32, int){asm.WinoWeight2AVX2, asm.WinoWeight2FlippedAVX2}}
	winoWeights4 = winoWeightForm{36, winoWeight4Kernel, [2]func(*float32, int, *float32, *int32, int){asm.WinoWeight4AVX2, asm.WinoWeight4FlippedAVX2}}
)

// winoWeightsPacked returns the form.n matrices U[ξ] (F×C) of w's kernels,
// written straight into the GEMM's packed layout (the transform is as
// cheap as a copy, and a separate pack would read and write U once more),
// the panels split over the device's threads. buf holds
// winoWeightsLen(mk, f, c, form.n) floats.
func (d *Device) winoWeightsPacked(buf, w []float32, f, c int, flipped bool, form winoWeightForm) []gemmA {
	n := form.n
	us := make([]gemmA, n)
	mk, ok := d.microKernel()
	if !ok { // not reached: Winograd runs only where the level packs
		panic("kernels: Winograd weights without a packed GEMM")
	}
	stride := prepackedLen(mk, f, c) + 16 // a cache line apart (see winoGeom.cs)
	for xi := range us {
		us[xi] = gemmA{pre: prepackedIn(mk, f, c, buf[xi*stride:]), m: f, k: c}
	}
	mr := mk.mr
	panels := (f + mr - 1) / mr
	// Kernel (p, r) of a panel (column pc + p, row f0 + r of U) is w's
	// kernel at first + p·ps + r·rs.
	ps, rs := 9, 9*c
	if flipped {
		ps, rs = 9*f, 9
	}
	simd := d.winoSIMD()
	var offs []int32 // where the assembly gathers kernel p·mr + r of a full panel
	if simd {
		offs = make([]int32, mr*min(c, packKC))
		for j := range offs {
			offs[j] = int32(j/mr*ps + j%mr*rs)
		}
	}
	parts := max(1, min(d.nThreads(), panels))
	runParts(parts, func(part int) {
		for ip := part * panels / parts; ip < (part+1)*panels/parts; ip++ {
			f0 := ip * mr
			rows := min(mr, f-f0)
			for pc := 0; pc < c; pc += packKC {
				kc := min(packKC, c-pc)
				u := buf[prepackedOffset(mk, f, pc, f0, kc):] // the panel in U[0]; U[ξ] stride further
				first := (f0*c + pc) * 9
				if flipped {
					first = (pc*f + f0) * 9
				}
				j := 0
				if simd && rows == mr && mr*kc >= 8 {
					j = mr * kc / 8 * 8
					_, _ = w[first+(kc-1)*ps+(mr-1)*rs+8], u[(n-1)*stride+j-1] // the assembly's reach
					kernel := form.asm[0]
					if flipped {
						kernel = form.asm[1]
					}
					kernel(&u[0], stride, &w[first], &offs[0], j/8)
				}
				for ; j < mr*kc; j++ {
					p, r := j/mr, j%mr
					if r >= rows { // rows past F: zero
						for xi := range n {
							u[xi*stride+j] = 0
						}
						continue
					}
					g := w[first+p*ps+r*rs:][:9:9]
					k := [9]float32(g)
					if flipped { // the kernel rotated by 180°
						for i := range k {
							k[i] = g[8-i]
						}
					}
					form.kernel(u, stride, j, &k)
				}
			}
		}
	})
	return us
}

func winoWeightsLen(mk microKernel, f, c, n int) int { return n * (prepackedLen(mk, f, c) + 16) }

// winogradWeightsOf is winogradWeights of each of the taps kernel(t)
// returns (w's 3×3 kernels; or, t < 3, the depth taps of w's 3×3×3 ones),
// kept across calls while w's contents do not change (weightcache.go);
// release hands back the storage of a transform that was not kept.
func (d *Device) winogradWeightsOf(w tensor.Buffer, ws []float32, f, c int, flipped bool, taps int,
	kernel func(t int) []float32) (us [][16]gemmA, release func()) {
	mk, _ := d.microKernel()
	form := formWinograd
	if flipped {
		form = formWinogradFlipped
	}
	n := winoWeightsLen(mk, f, c, 16)
	return preparedWeights(d, w, ws, form, f, c, taps*n, func(buf []float32) [][16]gemmA {
		us := make([][16]gemmA, taps)
		for t := range us {
			us[t] = d.winogradWeights(buf[t*n:][:n], kernel(t), f, c, flipped)
		}
		return us
	})
}

// winoWeightKernel writes U[ξ] = (G·k·Gᵀ)[ξ] of one 3×3 kernel k (rows a,
// b, c) to u[ξ·us + i]: the rows η = 0…3 of G·k are a, (a+b+c)/2,
// (a-b+c)/2, c, and each row times Gᵀ gives four values the same way.
func winoWeightKernel(u []float32, us, i int, k *[9]float32) {
	a0, a1, a2, b0, b1, b2, c0, c1, c2 := k[0], k[1], k[2], k[3], k[4], k[5], k[6], k[7], k[8]
	gRow(u, us, i, a0, a1, a2)
	gRow(u[4*us:], us, i, 0.5*(a0+b0+c0), 0.5*(a1+b1+c1), 0.5*(a2+b2+c2))
	gRow(u[8*us:], us, i, 0.5*(a0-b0+c0), 0.5*(a1-b1+c1), 0.5*(a2-b2+c2))
	gRow(u[12*us:], us, i, c0, c1, c2)
}

// gRow sets u[ν·us + i] = (x·Gᵀ)[ν] for ν < 4.
func gRow(u []float32, us, i int, x0, x1, x2 float32) {
	u[i] = x0
	u[us+i] = 0.5 * (x0 + x1 + x2)
	u[2*us+i] = 0.5 * (x0 - x1 + x2)
	u[3*us+i] = x2
}

// winoInput writes V[ξ][c][t] = (Bᵀ·d·B)[ξ] for the input tiles d of the
// tile rows [r0, r1) (row r is tile row r mod th of image r / th), t
// counting the chunk's tiles row by row. pad holds winoPadLen floats: the
// padded rows of one channel of one image that the chunk reads.
func winoInput(v, xs, pad []float32, p tensor.ConvParams, g winoGeom, r0, r1 int, simd, wide bool) {
	m := g.m // output tile side: a tile row reads m+2 padded rows, m further on than the last
	// The padding columns of every row are cleared once for the whole
	// chunk: the rows below only ever write their interior (three runtime
	// calls per 28-value row had cost more than the transform itself).
	clear(pad[:min(len(pad), (m*(r1-r0)+2)*g.wp)])
	for c := range p.C {
		for r := r0; r < r1; {
			n, ty0 := r/g.th, r%g.th
			ty1 := min(g.th, ty0+r1-r) // this image's tile rows in the chunk
			xc := xs[n*g.xImg+c*g.xCh:][:p.H*p.W]
			// Padded rows m·ty0 … m·ty1+1, each g.wp wide: those of the
			// image's rows lo … hi−1 copied in (at AVX-512 in one call),
			// those above and below it cleared.
			first, end := m*ty0, m*ty1+2
			lo, hi := max(first, p.PadTop), min(end, p.PadTop+p.H)
			for py := first; py < end; py++ {
				if py < lo || py >= hi {
					clear(pad[(py-first)*g.wp:][:g.wp])
				}
			}
			switch {
			case hi <= lo:
			case wide:
				asm.CopyRowsAVX512(&pad[(lo-first)*g.wp+p.PadLeft], g.wp, &xc[(lo-p.PadTop)*p.W], p.W, hi-lo, p.W)
			default:
				for py := lo; py < hi; py++ {
					iy := py - p.PadTop
					copy(pad[(py-first)*g.wp+p.PadLeft:][:p.W], xc[iy*p.W:(iy+1)*p.W])
				}
			}
			for ty := ty0; ty < ty1; ty++ {
				winoInputTiles(v[c*g.ld+(r+ty-ty0-r0)*g.tw:], pad[m*(ty-ty0)*g.wp:], g, simd)
			}
			r += ty1 - ty0
		}
	}
}

// winoInputTiles transforms the g.tw input tiles of one tile row whose
// padded rows start at in (g.wp apart) into v (matrices g.cs apart).
func winoInputTiles(v, in []float32, g winoGeom, simd bool) {
	blocks := (g.tw + 7) / 8
	switch {
	case g.m == 4 && simd:
		asm.WinoInput4AVX2(&v[0], g.cs, &in[0], g.wp, blocks)
	case g.m == 4:
		winoInput4Row(v, g.cs, in, g.wp, g.tw)
	case simd:
		asm.WinoInputAVX2(&v[0], g.cs, &in[0], g.wp, blocks)
	default:
		winoInputRow(v, g.cs, in, g.wp, g.tw)
	}
}

// winoPadLen is the scratch winoInput and winoOutput (winoOutput4) need.
func winoPadLen(p tensor.ConvParams, g winoGeom) int { return max((g.m*g.chunk+2)*g.wp, 32+p.OW) }

// winoInputRow is the plain-Go WinoInputAVX2 for any number of tiles: with
// the padded input rows d_a = in[a·ins:] it sets v[ξ·vs + t] = (Bᵀ·d·B)[ξ]
// over columns 2t…2t+3, ξ = 4η + ν.
func winoInputRow(v []float32, vs int, in []float32, ins, tiles int) {
	d0, d1, d2, d3 := in[:ins], in[ins:2*ins], in[2*ins:3*ins], in[3*ins:4*ins]
	for t := range tiles {
		var bd [4][4]float32 // Bᵀ·d: rows η, the tile's four columns
		for j := range 4 {
			x := 2*t + j
			bd[0][j] = d0[x] - d2[x]
			bd[1][j] = d1[x] + d2[x]
			bd[2][j] = d2[x] - d1[x]
			bd[3][j] = d1[x] - d3[x]
		}
		for eta, q := range bd {
			v[(4*eta+0)*vs+t] = q[0] - q[2]
			v[(4*eta+1)*vs+t] = q[1] + q[2]
			v[(4*eta+2)*vs+t] = q[2] - q[1]
			v[(4*eta+3)*vs+t] = q[1] - q[3]
		}
	}
}

// winoOutput writes the output tiles Aᵀ·M·A (+ bias) of the tile rows
// [r0, r1) into y, leaving out the row and column past an odd OH, OW.
// scratch holds 32 + OW floats.
func winoOutput(ys, m, bs, scratch []float32, p tensor.ConvParams, g winoGeom, r0, r1, f0, f1 int, simd bool) {
	tailTop, tailBot, past := scratch[:16], scratch[16:32], scratch[32:32+p.OW]
	for f := f0; f < f1; f++ {
		var bias float32
		if bs != nil {
			bias = bs[f]
		}
		n, ty := r0/g.th, r0%g.th // image and tile row of r, stepped along without a division a row
		for r := r0; r < r1; r, ty = r+1, ty+1 {
			if ty == g.th {
				n, ty = n+1, 0
			}
			yf := ys[n*g.yImg+f*g.yCh:][:p.OH*p.OW]
			oy := 2 * ty
			top := yf[oy*p.OW : (oy+1)*p.OW]
			bot := past // past an odd OH: computed, not kept
			if oy+1 < p.OH {
				bot = yf[(oy+1)*p.OW : (oy+2)*p.OW]
			}
			mt := m[f*g.ld+(r-r0)*g.tw:]
			if !simd {
				// Whole tiles, then the half tile of an odd OW.
				whole := p.OW / 2
				winoOutputRow(top, bot, mt, g.fs, whole, bias)
				if whole < g.tw {
					winoOutputRow(tailTop, tailBot, mt[whole:], g.fs, 1, bias)
					top[2*whole], bot[2*whole] = tailTop[0], tailBot[0]
				}
				continue
			}
			asm.WinoOutputAVX2(&top[0], &bot[0], &mt[0], g.fs, p.OW, bias)
		}
	}
}

// winoOutputRow is the plain-Go WinoOutputAVX2 for any number of tiles:
// with M[η][ν] = m[(4η + ν)·ms + t] it sets top[2t + j] = Y[0][j] and
// bot[2t + j] = Y[1][j], Y = Aᵀ·M·A + bias.
func winoOutputRow(top, bot, m []float32, ms, tiles int, bias float32) {
	for t := range tiles {
		// Aᵀ along y: s0 = M0 + M1 + M2, s1 = M1 - M2 - M3 (rows η of the tile).
		var s0, s1 [4]float32
		for nu := range 4 {
			a0, a1, a2, a3 := m[nu*ms+t], m[(4+nu)*ms+t], m[(8+nu)*ms+t], m[(12+nu)*ms+t]
			s0[nu] = a0 + a1 + a2
			s1[nu] = a1 - a2 - a3
		}
		top[2*t] = s0[0] + s0[1] + s0[2] + bias
		top[2*t+1] = s0[1] - s0[2] - s0[3] + bias
		bot[2*t] = s1[0] + s1[1] + s1[2] + bias
		bot[2*t+1] = s1[1] - s1[2] - s1[3] + bias
	}
}

// ---------------------------------------------------------------------------
// The weight gradient by Winograd: F(3×3, 2×2).
//
// dw[f,c] = Σ over images and output pixels of dy[f]·(the 3×3 input window)
// is itself a correlation, of each 4×4 input tile d with its 2×2 tile of dy,
// giving 3×3. Transposing the forward identity y = Aᵀ[(G g) ⊙ (Bᵀ d)] (an
// inner product with dy on both sides) gives, in one dimension,
//
//	dw = Gᵀ[(Bᵀ d) ⊙ (A dy)],
//
// and in two dimensions dw = Gᵀ[(Bᵀ d B) ⊙ (A dy Aᵀ)]G. Summed over tiles
// that is 16 GEMMs W[ξ] (F×C) = Σ_t Y[ξ][f][t]·V[ξ][c][t], with V the input
// transform of the forward pass and Y[ξ] = (A·dy·Aᵀ)[ξ], then one 4×4 → 3×3
// transform per weight kernel. Â = A with its last row negated and Ĝ = G
// with its last row negated give the same product and spare the transform
// of dy a negation: Â = [1 0; 1 1; 1 -1; 0 1].
//
// With 4×4 tiles of dy (F(3×3, 4×4), where winogradTile takes F(4×4, 3×3)
// for the forward pass) the same identity holds with the 6×6 matrices of
// winograd4.go: 36 GEMMs over a quarter of the tiles, 9/16 of the
// multiply-adds, dy transformed by A (6×4, winoDy4Row) and each kernel's
// 6×6 sum by Gᵀ·m·G (winoWeightGrad4).
// ---------------------------------------------------------------------------

// convWinogradBackwardWeight computes dw (F×C×3×3) of a stride-1 3×3
// convolution from x and dy by Winograd F(3×3, 2×2), or F(3×3, 4×4) where
// winogradTile takes 4×4 tiles.
func (d *Device) convWinogradBackwardWeight(dws, xs, dys []float32, p tensor.ConvParams) {
	tile := d.winogradTile(p)
	// Chunks of a size that does not depend on the thread count.
	g := newWinoGeom(p, 2, d.tune.WinogradTiles, tile)
	if g.rows == 0 { // no output pixels: no gradient
		clear(dws[:p.F*p.C*9])
		return
	}
	simd := d.winoSIMD()
	n := (tile + 2) * (tile + 2) // matrices W[ξ]
	ws := p.F*p.C + 16           // stride between them (see winoGeom.cs)
	// Slots of a grouping that does not depend on the thread count (see
	// forSlots): the same sums in the same order anywhere.
	chunks := (g.rows + g.chunk - 1) / g.chunk
	acc := make([][]float32, min(reductionSlots(g.chunk*g.tw), chunks)) // per slot: its chunks' sum
	padLen := winoPadLen(p, g)
	scratch := n*g.cs + n*g.fs + padLen + tile*g.wp
	threads := d.nThreads()
	bufs := make([][]float32, min(len(acc), threads))
	forSlots(threads, chunks, len(acc), func(wk, slot, ch, threads int) {
		if bufs[wk] == nil {
			bufs[wk] = getScratch(scratch)
		}
		buf := bufs[wk]
		r0, r1 := ch*g.chunk, min(g.rows, (ch+1)*g.chunk)
		v, y := buf[:n*g.cs], buf[n*g.cs:n*(g.cs+g.fs)]
		pad, dyRows := buf[n*(g.cs+g.fs):][:padLen], buf[n*(g.cs+g.fs)+padLen:]
		beta := float32(1)
		if acc[slot] == nil { // the slot's first chunk overwrites
			acc[slot], beta = getScratch(n*ws), 0
		}
		winoInput(v, xs, pad, p, g, r0, r1, simd, d.wide())
		winoDy(y, dys, dyRows, p, g, r0, r1, simd)
		for xi := range n {
			d.sgemm(threads, gemm{M: p.F, N: p.C, K: (r1 - r0) * g.tw, Alpha: 1, A: y[xi*g.fs:], LdA: g.ld, B: operandB{b: v[xi*g.cs:], ld: g.ld, trans: true}, Beta: beta, C: acc[slot][xi*ws:], LdC: p.C})
		}
	})
	end := winoGradEnd2
	if tile == 4 {
		end = winoGradEnd4
	}
	d.winoWeightGrads(dws, 9, acc, 0, ws, p.F*p.C, end)
	releaseSlots(acc, bufs)
}

// winoGradGrain is the fewest weight kernels winoWeightGrads gives a thread.
const winoGradGrain = 256

// winoGradEnd is one tile size's end of the weight gradient: its matrices,
// the plain-Go transform of one kernel's sums (the specification; m holds
// mats values), and the assembly that transforms eight kernels at a time.
type winoGradEnd struct {
	mats   int
	kernel func(dw []float32, m *[36]float32)
	asm    func(dw *float32, ds int, m *float32, ms int, blocks int)
}

var (
	winoGradEnd2 = winoGradEnd{16, func(dw []float32, m *[36]float32) { winoWeightGrad(dw, (*[16]float32)(m[:16])) }, asm.WinoWeightGradAVX2}
	winoGradEnd4 = winoGradEnd{36, winoWeightGrad4, asm.WinoWeightGrad4AVX2}
)

// winoWeightGrads ends a Winograd weight gradient: for i < n it sets
// dw[i·stride:][:9] = end.kernel(m) (Ĝᵀ·m·Ĝ for 2×2 tiles, Gᵀ·m·G for
// 4×4), where m[ξ] is the sum over the slots, in slot order, of
// acc[s][base + ξ·ws + i] (so the same bits on any thread count), the
// weight kernels split over the threads: each adds the slots into acc[0]
// over its kernels, a long run per matrix, then transforms them, eight at
// a time in assembly where it runs. It had been one thread adding the
// slots and then transforming kernel by kernel in Go while the other core
// waited: 9 % of a cifar train step at AVX2; adding the slots in blocks of
// 256 kernels (1 KiB runs of 32 matrices at once) ran 7× slower than in
// long runs (bench/RESULTS.md, 2026-12-06, late night). acc[0] is left
// holding the sums.
func (d *Device) winoWeightGrads(dw []float32, stride int, acc [][]float32, base, ws, n int, end winoGradEnd) {
	simd := d.winoSIMD()
	sum := acc[0][base:]
	d.parallelFor(n, winoGradGrain, func(lo, hi int) {
		for xi := range end.mats {
			s := sum[xi*ws+lo : xi*ws+hi]
			for _, a := range acc[1:] {
				if a != nil {
					binaryRow(simd, tensor.OpAdd, s, s, a[base+xi*ws+lo:][:hi-lo])
				}
			}
		}
		i := lo
		if simd {
			if k := (hi - lo) / 8 * 8; k > 0 {
				_, _ = dw[(lo+k-1)*stride+8], sum[(end.mats-1)*ws+lo+k-1] // the kernel's reach
				end.asm(&dw[lo*stride], stride, &sum[lo], ws, k/8)
				i += k
			}
		}
		var m [36]float32
		for ; i < hi; i++ {
			for xi := range end.mats {
				m[xi] = sum[xi*ws+i]
			}
			end.kernel(dw[i*stride:i*stride+9:i*stride+9], &m)
		}
	})
}

// releaseSlots hands the slots' sums and the workers' scratch back to the
// pool.
func releaseSlots(acc, scratch [][]float32) {
	for _, bufs := range [][][]float32{acc, scratch} {
		for _, b := range bufs {
			if b != nil {
				putScratch(b)
			}
		}
	}
}

// winoWeightGrad sets dw = Ĝᵀ·m·Ĝ (4×4 → 3×3), Ĝᵀ = [1 ½ ½ 0; 0 ½ -½ 0; 0 ½ ½ -1].
func winoWeightGrad(dw []float32, m *[16]float32) {
	var q [3][4]float32 // Ĝᵀ·m
	for nu := range 4 {
		m0, m1, m2, m3 := m[nu], m[4+nu], m[8+nu], m[12+nu]
		q[0][nu] = m0 + 0.5*(m1+m2)
		q[1][nu] = 0.5 * (m1 - m2)
		q[2][nu] = 0.5*(m1+m2) - m3
	}
	for ky, r := range q {
		dw[3*ky] = r[0] + 0.5*(r[1]+r[2])
		dw[3*ky+1] = 0.5 * (r[1] - r[2])
		dw[3*ky+2] = 0.5*(r[1]+r[2]) - r[3]
	}
}

// winoDy writes Y[ξ][f][t] = (Â·dy·Âᵀ)[ξ] for the 2×2 tiles of dy of the
// tile rows [r0, r1) (g.m = 4: (A·dy·Aᵀ)[ξ] for the 4×4 tiles,
// winoDy4Row); outputs past OH or OW count as zero. rows holds g.m·g.wp
// floats.
func winoDy(y, dys, rows []float32, p tensor.ConvParams, g winoGeom, r0, r1 int, simd bool) {
	var in [4][]float32 // the tile row's rows of dy, copied and zero-padded
	for i := range g.m {
		in[i] = rows[i*g.wp : (i+1)*g.wp]
	}
	for f := range p.F {
		for r := r0; r < r1; r++ {
			n, ty := r/g.th, r%g.th
			yf := dys[n*g.yImg+f*g.yCh:][:p.OH*p.OW]
			for i, row := range in[:g.m] {
				if oy := g.m*ty + i; oy < p.OH {
					clear(row[copy(row, yf[oy*p.OW:(oy+1)*p.OW]):])
				} else {
					clear(row)
				}
			}
			yt := y[f*g.ld+(r-r0)*g.tw:]
			switch {
			case g.m == 4 && simd:
				asm.WinoDy4AVX2(&yt[0], g.fs, &in[0][0], &in[1][0], &in[2][0], &in[3][0], (g.tw+7)/8)
			case g.m == 4:
				winoDy4Row(yt, g.fs, in, g.tw)
			case simd:
				asm.WinoDyAVX2(&yt[0], g.fs, &in[0][0], &in[1][0], (g.tw+7)/8)
			default:
				winoDyRow(yt, g.fs, in[0], in[1], g.tw)
			}
		}
	}
}

// winoDyRow is the plain-Go WinoDyAVX2 for any number of tiles.
func winoDyRow(y []float32, ys int, top, bot []float32, tiles int) {
	for t := range tiles {
		var r [4][2]float32 // Â·dy: rows η, the tile's two columns
		for j := range 2 {
			e, o := top[2*t+j], bot[2*t+j]
			r[0][j], r[1][j], r[2][j], r[3][j] = e, e+o, e-o, o
		}
		for eta, x := range r {
			y[(4*eta+0)*ys+t] = x[0]
			y[(4*eta+1)*ys+t] = x[0] + x[1]
			y[(4*eta+2)*ys+t] = x[0] - x[1]
			y[(4*eta+3)*ys+t] = x[1]
		}
	}
}
