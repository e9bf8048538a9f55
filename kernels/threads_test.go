package kernels

import (
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/godiffuse/godiffuse/tensor"
)

// TestResultsIndependentOfThreads: every pass of the convolutions (the
// Winograd, shifted, pointwise and im2col paths) and batched GEMMs give
// bit-identical results on 1, 2, 3 and 8 threads, at every level — the
// reductions over images and tile chunks are grouped by a fixed number of
// slots, not by thread (issue 22, item 9: training is bit-exact on any
// number of cores).
func TestResultsIndependentOfThreads(t *testing.T) {
	conv := func(n, c, f, k, stride, h, w int) tensor.ConvParams {
		pad := k / 2
		return tensor.ConvParams{N: n, C: c, H: h, W: w, F: f, KH: k, KW: k, StrideH: stride, StrideW: stride,
			PadTop: pad, PadBottom: pad, PadLeft: pad, PadRight: pad,
			OH: (h+2*pad-k)/stride + 1, OW: (w+2*pad-k)/stride + 1}
	}
	convs := []tensor.ConvParams{
		conv(11, 16, 24, 3, 1, 21, 21),  // Winograd, several chunks
		conv(11, 3, 8, 3, 1, 19, 23),    // few channels
		conv(11, 16, 8, 1, 1, 9, 7),     // pointwise
		conv(11, 8, 16, 3, 2, 13, 12),   // strided: im2col
		conv(2, 32, 32, 3, 1, 64, 64),   // Winograd, one image of many chunks
		conv(1, 160, 40, 3, 1, 8, 8),    // Winograd F(2×2), 16 tiles: split by output channels
		conv(1, 64, 40, 3, 1, 16, 16),   // Winograd F(4×4), 16 tiles: split by output channels
		conv(1, 64, 40, 3, 1, 4, 4),     // one 4×4 image: im2col (narrow at AVX-512) split by output channels
		conv(1, 16, 40, 1, 1, 4, 4),     // pointwise, 16 columns: split by output channels
		conv(1, 16, 40, 3, 1, 7, 7),     // shifted rows, 61 columns: split by output channels
		conv(1, 8, 16, 3, 2, 13, 12),    // one strided image: im2col by bands of output rows
		conv(1, 32, 1, 3, 1, 28, 28),    // one output channel: taps, one image by bands of output rows
		conv(1, 5, 3, 3, 1, 3, 4),       // taps on rows shorter than a vector, one row a band
		conv(3, 7, 2, 3, 1, 9, 9),       // taps, images over the threads
		conv(1, 32, 32, 3, 1, 28, 28),   // Winograd F(4×4), 7×7 tiles: the last column alone in one chunk
		conv(1, 48, 61, 3, 1, 14, 14),   // Winograd F(2×2), 7×7 tiles, two calls of four panels
		conv(1, 256, 256, 3, 1, 16, 16), // by output channels: slabs of 128 rows planned as all 256
		conv(1, 256, 160, 3, 1, 16, 16), // … and as all 160
	}
	r := rand.New(rand.NewPCG(9, 9))
	for _, level := range Levels() {
		for i, p := range convs {
			x := randSlice(r, p.N*p.C*p.H*p.W)
			w := randSlice(r, p.F*p.C*p.KH*p.KW)
			dy := randSlice(r, p.N*p.F*p.OH*p.OW)
			var want [3][]float32
			// threads 1, 2, 3, 8 at the default tuning, then 2 and 8 with every
			// one-image convolution split however small (the split paths).
			split := DefaultTuning()
			split.MinParallelMACs = 0
			for run, threads := range []int{1, 2, 3, 8, 2, 8} {
				tune := DefaultTuning()
				if run >= 4 {
					tune = split
				}
				d := NewCPUTuned(threads, level, tune)
				y := &Buffer{dev: d, F: make([]float32, len(dy))}
				dx := &Buffer{dev: d, F: make([]float32, len(x))}
				dw := &Buffer{dev: d, F: make([]float32, len(w))}
				db := &Buffer{dev: d, F: make([]float32, p.F)}
				xb, wb, dyb := &Buffer{dev: d, F: x}, &Buffer{dev: d, F: w}, &Buffer{dev: d, F: dy}
				d.Conv2D(y, xb, wb, nil, p)
				d.Conv2DBackwardInput(dx, dyb, wb, p)
				d.Conv2DBackwardWeight(dw, db, xb, dyb, p)
				got := [3][]float32{y.F, dx.F, append(dw.F, db.F...)}
				if threads == 1 {
					want = got
					continue
				}
				for k, name := range []string{"output", "input gradient", "weight gradient"} {
					if !slices.Equal(got[k], want[k]) {
						t.Errorf("%v conv %d (%+v): the %s on %d threads differs from 1 thread's", level, i, p, name, threads)
					}
				}
			}
		}
		// Batched GEMMs; the second deeper than an AVX-512 product's block
		// (1,024), its 45 columns split over two threads as 32 and 13, the
		// 13 by the narrow kernel: the blocks must be the same.
		for _, sh := range []struct{ m, k int }{{37, 300}, {20, 2100}} {
			m, k := sh.m, sh.k
			p := tensor.MatMulParams{Batch: 6, M: m, N: 45, K: k, TransB: true, Alpha: 1, StrideA: m * k, StrideB: 45 * k, StrideC: m * 45}
			a, b := randSlice(r, p.Batch*p.StrideA), randSlice(r, p.Batch*p.StrideB)
			var want []float32
			for _, threads := range []int{1, 2, 3, 8} {
				d := NewCPULevel(threads, level)
				c := &Buffer{dev: d, F: make([]float32, p.Batch*p.StrideC)}
				d.MatMul(c, &Buffer{dev: d, F: a}, &Buffer{dev: d, F: b}, p)
				if threads == 1 {
					want = c.F
				} else if !slices.Equal(c.F, want) {
					t.Errorf("%v: a batched GEMM of depth %d on %d threads differs from 1 thread's", level, k, threads)
				}
			}
		}
	}
}
