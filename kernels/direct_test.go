package kernels

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/godiffuse/godiffuse/kernels/asm"
	"github.com/godiffuse/godiffuse/tensor"
)

// TestConvDirect checks the direct 3×3 kernel of every width against the
// naive convolution: output channels not a multiple of 16, one input
// channel and odd counts, images taller and shorter than wide (tiles past
// the last row), one and two images, with and without a bias, on one
// thread and split over three.
func TestConvDirect(t *testing.T) {
	if DefaultLevel() < AVX512 || !asm.Available {
		t.Skip("the direct kernels are AVX-512 only")
	}
	r := rand.New(rand.NewPCG(3, 4))
	for width := range directKernels {
		for _, s := range []struct{ n, c, f, h int }{{1, 1, 1, width}, {1, 3, 16, width}, {2, 17, 20, width + 3}, {1, 48, 48, width}, {1, 5, 33, 1}, {2, 2, 7, 2}, {3, 4, 18, 5}, {1, 2, 3, 9}} {
			for _, threads := range []int{1, 3} {
				tune := DefaultTuning()
				tune.DirectMaxPixels, tune.MinParallelMACs, tune.TapsMaxF = 1<<30, 0, 0
				d := NewCPUTuned(threads, AVX512, tune)
				p := tensor.ConvParams{N: s.n, C: s.c, H: s.h, W: width, F: s.f, KH: 3, KW: 3, StrideH: 1, StrideW: 1,
					PadTop: 1, PadBottom: 1, PadLeft: 1, PadRight: 1, OH: s.h, OW: width}
				if got := d.PlanConv2D(p).Forward; got != ConvDirect {
					t.Fatalf("%+v: forward %s, want direct", p, got)
				}
				x, w, b := randSlice(r, p.N*p.C*p.H*p.W), randSlice(r, p.F*p.C*9), randSlice(r, p.F)
				for _, bias := range [][]float32{nil, b} {
					name := fmt.Sprintf("%dx%dx%d→%d×%d threads=%d bias=%v", s.n, s.c, s.h, s.f, width, threads, bias != nil)
					want := naiveConv(x, w, bias, p)
					y := withGuard(d, len(want))
					var bb tensor.Buffer
					if bias != nil {
						bb = &Buffer{dev: d, F: bias}
					}
					d.Conv2D(y, &Buffer{dev: d, F: x}, &Buffer{dev: d, F: w}, bb, p)
					closeTo(t, name, y.F[:len(want)], want, 1e-5)
					checkGuard(t, name, y, len(want))
				}
			}
		}
	}
}

// BenchmarkConvDirect times one-image 3×3 convolutions of the U-Nets'
// small levels by the direct kernel and by the path the plan takes without
// it, frozen weights as in sampling, in effective GFLOP/s (2·F·OH·OW·C·9):
//
//	go test ./kernels -run XXX -bench ConvDirect
func BenchmarkConvDirect(b *testing.B) {
	if DefaultLevel() < AVX512 || !asm.Available {
		b.Skip("the direct kernels are AVX-512 only")
	}
	for _, s := range []struct{ n, c, f, side int }{{1, 48, 48, 7}, {1, 96, 48, 7}, {2, 48, 48, 7}, {1, 256, 256, 4}, {1, 512, 256, 4}, {2, 256, 256, 4}} {
		p := tensor.ConvParams{N: s.n, C: s.c, H: s.side, W: s.side, F: s.f, KH: 3, KW: 3, StrideH: 1, StrideW: 1,
			PadTop: 1, PadBottom: 1, PadLeft: 1, PadRight: 1, OH: s.side, OW: s.side}
		r := rand.New(rand.NewPCG(1, 1))
		x, w := randSlice(r, s.n*s.c*s.side*s.side), randSlice(r, s.f*s.c*9)
		for _, threads := range []int{1, 2} {
			for _, direct := range []bool{false, true} {
				tune := DefaultTuning()
				tune.DirectMaxPixels = 0
				if direct {
					tune.DirectMaxPixels = 1 << 30
				}
				d := NewCPUTuned(threads, AVX512, tune)
				name := fmt.Sprintf("shape=%dx%dto%d_%dx%d/threads=%d/path=%s", s.n, s.c, s.f, s.side, s.side, threads, d.PlanConv2D(p).Forward)
				b.Run(name, func(b *testing.B) {
					wb := &Buffer{dev: d, F: w}
					wb.Freeze()
					xb, yb := &Buffer{dev: d, F: x}, &Buffer{dev: d, F: make([]float32, s.n*s.f*s.side*s.side)}
					d.Conv2D(yb, xb, wb, nil, p) // the weights laid out once, as in sampling
					for b.Loop() {
						d.Conv2D(yb, xb, wb, nil, p)
					}
					b.ReportMetric(2*float64(s.n*s.f*s.side*s.side*s.c*9)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
				})
			}
		}
	}
}
