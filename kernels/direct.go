package kernels

import (
	"sync"

	"github.com/godiffuse/godiffuse/kernels/asm"
	"github.com/godiffuse/godiffuse/tensor"
)

// ---------------------------------------------------------------------------
// Direct 3×3 convolution of small images (AVX-512).
//
// At batch 1 the small levels of a U-Net (4×4 to 28×28 images) give the
// GEMM paths few columns: 49 outputs of a 7×7 image fill a 12×32 tile's
// columns by half, and Winograd spends half its time in the transforms of
// 16 tiles. The direct kernel puts 16 output channels in the lanes of a
// vector instead and a tile of up to 28 output pixels in as many
// accumulators: for every input channel and tap (ky, kx) the 16 weights
// are one vector, and each pixel's input value is broadcast from the
// zero-padded image into its multiply-add. Nothing is packed per call but
// the padded image (C·(H+2)·(W+2) floats); the weights are laid out once
// per block of 16 output channels as [C][9][16] (kept across calls when
// frozen, weightcache.go). ONNX Runtime's MLAS does the same on a blocked
// channel layout (NCHWc); here the image stays NCHW and each tile is
// written back transposed, pixel by pixel.
//
// The plain-Go specification is the naive convolution (convNaive in the
// tests); asm's stand-ins (convDirectGo) compute the same tile in Go.
// ---------------------------------------------------------------------------

// directLanes is the output channels of one block: the lanes of a vector.
const directLanes = 16

// directFunc is a direct kernel (asm.ConvDirect3x3AVX512W7R4's signature).
type directFunc func(x *float32, rs, cs, c int, w, bias, y *float32, ys *int32, lanes uint16, rows int)

// directTile is a kernel for tiles of rows × the image's width.
type directTile struct {
	rows int
	fn   directFunc
}

// directKernels are the kernels by image width, tallest tile first: a 7×7
// image is one tile of 4 rows and one of 3.
var directKernels = map[int][]directTile{
	4: {{4, asm.ConvDirect3x3AVX512W4R4}},
	7: {{4, asm.ConvDirect3x3AVX512W7R4}, {3, asm.ConvDirect3x3AVX512W7R3}},
}

// directTiles splits oh output rows into tiles: the tallest while at
// least its rows remain, then the shortest that covers the rest (whose
// rows past oh read zero padding and are not stored). The split of each
// (width, oh) is made once and kept (directTilings).
func directTiles(width, oh int) (tiles []directTile, starts []int) {
	key := [2]int{width, oh}
	directTilings.RLock()
	t, ok := directTilings.m[key]
	directTilings.RUnlock()
	if ok {
		return t.tiles, t.starts
	}
	kernels := directKernels[width]
	for r0 := 0; r0 < oh; {
		k := kernels[0]
		for _, s := range kernels[1:] {
			if oh-r0 <= s.rows {
				k = s
			}
		}
		tiles, starts = append(tiles, k), append(starts, r0)
		r0 += k.rows
	}
	directTilings.Lock()
	directTilings.m[key] = directTiling{tiles, starts}
	directTilings.Unlock()
	return tiles, starts
}

// directTiling is the tiles of one (width, rows) and their first rows.
type directTiling struct {
	tiles  []directTile
	starts []int
}

var directTilings = struct {
	sync.RWMutex
	m map[[2]int]directTiling
}{m: map[[2]int]directTiling{}}

// direct reports whether a 2-D convolution takes the direct kernel: a
// 3×3, stride-1, "same" convolution (padding 1 on every side) at the
// AVX-512 level, of an image width a kernel exists for, each image at most
// Tuning.DirectMaxPixels outputs and the batch at most twice that.
func (d *Device) direct(p tensor.ConvParams) bool {
	_, ok := directKernels[p.OW]
	ohw := p.OH * p.OW
	return ok && d.level == AVX512 && asm.Available && p.KH == 3 && p.KW == 3 && p.StrideH == 1 && p.StrideW == 1 &&
		p.PadTop == 1 && p.PadBottom == 1 && p.PadLeft == 1 && p.PadRight == 1 && p.OH == p.H && p.OW == p.W &&
		ohw <= d.tune.DirectMaxPixels && p.N*ohw <= 2*d.tune.DirectMaxPixels
}

// directWeights lays w (F×C×3×3) out for the direct kernel in dst:
// [⌈F/16⌉][C][9][16], output channel 16·block + lane, zeros past F.
func directWeights(dst, w []float32, f, c int) []float32 {
	blocks := (f + directLanes - 1) / directLanes
	dst = dst[:blocks*c*9*directLanes]
	for fb := range blocks {
		for ch := range c {
			for t := range 9 {
				o := dst[((fb*c+ch)*9+t)*directLanes:][:directLanes]
				for j := range o {
					o[j] = 0
					if fo := fb*directLanes + j; fo < f {
						o[j] = w[(fo*c+ch)*9+t]
					}
				}
			}
		}
	}
	return dst
}

// convDirect computes y = conv(x, w) + b (b may be nil) by the direct
// kernels (d.direct(p) holds). w is the buffer of ws, the key of the
// laid-out weights (weightcache.go).
func (d *Device) convDirect(ys, xs []float32, w tensor.Buffer, ws, bs []float32, p tensor.ConvParams) {
	blocks := (p.F + directLanes - 1) / directLanes
	wd, release := preparedWeights(d, w, ws, formDirect, p.F, p.C, blocks*p.C*9*directLanes,
		func(buf []float32) []float32 { return directWeights(buf, ws, p.F, p.C) })
	defer release()
	tiles, starts := directTiles(p.OW, p.OH)

	// The padded images: a zero row and column around each, and zero rows
	// below for a last tile taller than the rows left.
	wp := p.W + 2
	plane := (p.OH + tiles[len(tiles)-1].rows + 2) * wp
	buf := getScratch(p.N*p.C*plane + blocks*directLanes)
	defer putScratch(buf)
	xp, bias := buf[:p.N*p.C*plane], buf[p.N*p.C*plane:]
	clear(xp)
	for nc := range p.N * p.C {
		src, dst := xs[nc*p.H*p.W:], xp[nc*plane+wp+1:]
		for y := range p.H {
			copy(dst[y*wp:y*wp+p.W], src[y*p.W:(y+1)*p.W])
		}
	}
	clear(bias)
	copy(bias, bs)
	j := directJobs.Get().(*directJob)
	*j = directJob{xp: xp, wd: wd, bias: bias, ys: ys, tiles: tiles, starts: starts, p: p, blocks: blocks, plane: plane, wp: wp}
	defer func() { *j = directJob{}; directJobs.Put(j) }()
	ohw := p.OH * p.OW
	for i := range j.offsets { // lane i's output plane
		j.offsets[i] = int32(i * ohw)
	}
	j.units = p.N * blocks * len(tiles)
	j.parts = min(max(1, d.nThreads()), j.units)
	if j.parts == 1 || d.oneThread(p.N*p.F*p.C*9*ohw) {
		j.run(0, j.units)
		return
	}
	runParts(j.parts, j.part)
}

// directJob is one convDirect call past its setup: units are (image,
// block of 16 output channels, tile of rows), split into parts. It comes
// from a pool, so that neither it nor the offsets the kernel takes the
// address of is a heap object per call.
type directJob struct {
	xp, wd, bias, ys []float32
	tiles            []directTile
	starts           []int
	offsets          [directLanes]int32 // lane j's output plane
	p                tensor.ConvParams
	blocks, plane    int
	wp               int
	units, parts     int
}

var directJobs = sync.Pool{New: func() any { return new(directJob) }}

// part computes part t of the units.
func (j *directJob) part(t int) { j.run(t*j.units/j.parts, (t+1)*j.units/j.parts) }

// run computes the units [lo, hi).
func (j *directJob) run(lo, hi int) {
	p, tiles, ohw := j.p, j.tiles, j.p.OH*j.p.OW
	for u := lo; u < hi; u++ {
		n, fb, t := u/(j.blocks*len(tiles)), u/len(tiles)%j.blocks, u%len(tiles)
		r0, lanes := j.starts[t], min(directLanes, p.F-fb*directLanes)
		tiles[t].fn(&j.xp[n*p.C*j.plane+r0*j.wp], j.wp, j.plane, p.C, &j.wd[fb*p.C*9*directLanes], &j.bias[fb*directLanes],
			&j.ys[(n*p.F+fb*directLanes)*ohw+r0*p.OW], &j.offsets[0], uint16(1<<lanes-1), p.OH-r0)
	}
}
