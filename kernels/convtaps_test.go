package kernels

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/godiffuse/godiffuse/tensor"
)

// TestConvTapsRow checks each level's row of taps against the plain loop
// on every row length that takes the kernels' one-vector loop and masked
// tail (n < 128) and their blocks with the last one moved back (n ≥ 128),
// with guard values past the row.
func TestConvTapsRow(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 12))
	for _, level := range Levels() {
		d := NewCPULevel(1, level)
		for _, taps := range []int{1, 9, 27} {
			for n := 1; n <= 300; n += 1 + n/40 {
				off := make([]int, taps)
				for i := range off {
					off[i] = r.IntN(50)
				}
				x, w := randSlice(r, 50+n), randSlice(r, taps)
				want := make([]float32, n)
				convTapsRow(want, n, x, off, w, 0.25)
				y := make([]float32, n+1)
				y[n] = 42
				d.tapsRow(y, n, x, off, w, 0.25)
				closeTo(t, fmt.Sprintf("%v taps=%d n=%d", level, taps, n), y[:n], want, 1e-6)
				if y[n] != 42 {
					t.Fatalf("%v taps=%d n=%d: wrote past the row", level, taps, n)
				}
			}
		}
	}
}

// TestConvTapsShapes checks the convolutions the taps path takes by default
// (a U-Net's last layer) against the naive one, on one to three threads
// (one image in two or three bands of rows, some shorter than the others).
func TestConvTapsShapes(t *testing.T) {
	r := rand.New(rand.NewPCG(13, 14))
	for _, level := range Levels()[1:] {
		for _, s := range []struct{ n, c, h, f int }{{1, 32, 28, 1}, {2, 128, 32, 3}, {3, 5, 9, 4}, {1, 3, 9, 2}, {2, 7, 1, 1}} {
			for _, threads := range []int{1, 2, 3} { // bands of rows when the images are fewer than the threads
				tune := DefaultTuning()
				tune.MinParallelMACs = 0
				d := NewCPUTuned(threads, level, tune)
				p := tensor.ConvParams{N: s.n, C: s.c, H: s.h, W: s.h, F: s.f, KH: 3, KW: 3, StrideH: 1, StrideW: 1,
					PadTop: 1, PadBottom: 1, PadLeft: 1, PadRight: 1, OH: s.h, OW: s.h}
				if got := d.PlanConv2D(p).Forward; got != ConvTaps {
					t.Fatalf("%v %+v: forward %v, want taps", level, p, got)
				}
				x, w, b := randSlice(r, p.N*p.C*p.H*p.W), randSlice(r, p.F*p.C*9), randSlice(r, p.F)
				want := naiveConv(x, w, b, p)
				y := withGuard(d, len(want))
				d.Conv2D(y, &Buffer{dev: d, F: x}, &Buffer{dev: d, F: w}, &Buffer{dev: d, F: b}, p)
				name := fmt.Sprintf("%v %+v threads=%d", level, s, threads)
				closeTo(t, name, y.F[:len(want)], want, 1e-5)
				checkGuard(t, name, y, len(want))
			}
		}
	}
}

// BenchmarkConvTaps times the U-Nets' first and last convolutions by taps
// (output pixels in the lanes) and by the path the planner takes without
// it, on two threads:
//
//	go test ./kernels -run XXX -bench ConvTaps
func BenchmarkConvTaps(b *testing.B) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, s := range []struct {
		name       string
		n, c, h, f int
	}{
		{"tiny-out-b1", 1, 32, 28, 1}, {"tiny-out-b64", 64, 32, 28, 1}, {"tiny-in-b1", 1, 1, 28, 32},
		{"cifar-out-b1", 1, 128, 32, 3}, {"cifar-out-b8", 8, 128, 32, 3}, {"cifar-in-b1", 1, 3, 32, 128},
	} {
		p := tensor.ConvParams{N: s.n, C: s.c, H: s.h, W: s.h, F: s.f, KH: 3, KW: 3, StrideH: 1, StrideW: 1,
			PadTop: 1, PadBottom: 1, PadLeft: 1, PadRight: 1, OH: s.h, OW: s.h}
		x, w, bias := randSlice(r, p.N*p.C*p.H*p.W), randSlice(r, p.F*p.C*9), randSlice(r, p.F)
		for _, taps := range []bool{false, true} {
			tune := DefaultTuning()
			tune.TapsMaxF = 0
			if taps {
				tune.TapsMaxF = 1 << 30
			}
			d := NewCPUTuned(2, DefaultLevel(), tune)
			path := d.PlanConv2D(p).Forward
			y := &Buffer{dev: d, F: make([]float32, p.N*p.F*p.OH*p.OW)}
			xb, wb, bb := &Buffer{dev: d, F: x}, &Buffer{dev: d, F: w}, &Buffer{dev: d, F: bias}
			b.Run(fmt.Sprintf("%s/%v", s.name, path), func(b *testing.B) {
				for b.Loop() {
					d.Conv2D(y, xb, wb, bb, p)
				}
			})
		}
	}
}
