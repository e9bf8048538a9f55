package kernels

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/godiffuse/godiffuse/tensor"
)

func BenchmarkZZPaths(b *testing.B) {
	for _, s := range []struct{ c, f, side int }{{32, 32, 28}, {48, 48, 14}, {80, 32, 28}, {48, 48, 28}} {
		p := tensor.ConvParams{N: 1, C: s.c, H: s.side, W: s.side, F: s.f, KH: 3, KW: 3, StrideH: 1, StrideW: 1,
			PadTop: 1, PadBottom: 1, PadLeft: 1, PadRight: 1, OH: s.side, OW: s.side}
		r := rand.New(rand.NewPCG(1, 1))
		x, w := randSlice(r, s.c*s.side*s.side), randSlice(r, s.f*s.c*9)
		for _, v := range []string{"default", "f2", "shifted"} {
			b.Run(fmt.Sprintf("shape=%dto%d_%dx%d/%s", s.c, s.f, s.side, s.side, v), func(b *testing.B) {
				t := DefaultTuning()
				switch v {
				case "f2":
					t.Winograd4MinSide = 1 << 20
				case "shifted":
					t.WinogradMinC = 1 << 20
				}
				d := NewCPUTuned(1, DefaultLevel(), t)
				b.Log(d.PlanConv2D(p))
				wb := &Buffer{dev: d, F: w}
				wb.Freeze()
				xb, yb := &Buffer{dev: d, F: x}, &Buffer{dev: d, F: make([]float32, s.f*s.side*s.side)}
				d.Conv2D(yb, xb, wb, nil, p)
				for b.Loop() {
					d.Conv2D(yb, xb, wb, nil, p)
				}
				b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N), "µs")
			})
		}
	}
}
