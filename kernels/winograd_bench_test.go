package kernels

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/godiffuse/godiffuse/tensor"
)

// BenchmarkWinogradBatch1 times the batch-1 3×3 convolutions of the U-Nets
// that take Winograd (ddpm-cifar10-32's 256-channel 8×8 and 16×16 levels,
// its 128-channel 32×32 one, tiny-mnist's 28×28 and 14×14 up-path ones) on
// one and two threads, with frozen weights as a sampler runs them, in
// effective GFLOP/s (2·F·OH·OW·C·9 per call):
//
//	go test ./kernels -run XXX -bench WinogradBatch1
func BenchmarkWinogradBatch1(b *testing.B) {
	for _, s := range []struct{ c, f, side int }{{256, 256, 8}, {512, 256, 8}, {256, 256, 16}, {128, 128, 32}, {96, 48, 14}, {32, 32, 28}} {
		p := tensor.ConvParams{N: 1, C: s.c, H: s.side, W: s.side, F: s.f, KH: 3, KW: 3, StrideH: 1, StrideW: 1,
			PadTop: 1, PadBottom: 1, PadLeft: 1, PadRight: 1, OH: s.side, OW: s.side}
		r := rand.New(rand.NewPCG(1, 1))
		x, w := randSlice(r, s.c*s.side*s.side), randSlice(r, s.f*s.c*9)
		for _, threads := range []int{1, 2} {
			b.Run(fmt.Sprintf("shape=%dto%d_%dx%d/threads=%d", s.c, s.f, s.side, s.side, threads), func(b *testing.B) {
				d := NewCPU(threads)
				if !d.winograd2D(p) {
					b.Skip("not a Winograd convolution at this level")
				}
				wb := &Buffer{dev: d, F: w}
				wb.Freeze()
				xb, yb := &Buffer{dev: d, F: x}, &Buffer{dev: d, F: make([]float32, s.f*s.side*s.side)}
				d.Conv2D(yb, xb, wb, nil, p) // the weights transformed once, as in sampling
				for b.Loop() {
					d.Conv2D(yb, xb, wb, nil, p)
				}
				b.ReportMetric(2*float64(s.f*s.side*s.side*s.c*9)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
			})
		}
	}
}
