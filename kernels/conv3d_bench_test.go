package kernels

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/godiffuse/godiffuse/tensor"
)

// BenchmarkConv3DPaths times each path of a 3×3×3 stride-1 convolution —
// plane-wise Winograd, shifted rows, and the vol2col reference — on the
// shapes of the built-in UNet3D (patch 4: 8³ volumes, batch 16) and of
// issue 21's target (32³, 64 channels), in effective GFLOP/s
// (2·N·F·D·H·W·C·27 per pass):
//
//	go test ./kernels -run XXX -bench Conv3DPaths -benchtime 3x
func BenchmarkConv3DPaths(b *testing.B) {
	shapes := []struct {
		name          string
		n, c, f, side int
	}{{"unet8_32", 16, 32, 32, 8}, {"unet8_64", 16, 64, 64, 8}, {"unet4_128", 16, 128, 128, 4}, {"target32_64", 1, 64, 64, 32}}
	for _, s := range shapes {
		p := tensor.Conv3DParams{N: s.n, C: s.c, D: s.side, H: s.side, W: s.side, F: s.f, KD: 3, KH: 3, KW: 3,
			StrideD: 1, StrideH: 1, StrideW: 1, PadD: 1, PadH: 1, PadW: 1, OD: s.side, OH: s.side, OW: s.side}
		r := rand.New(rand.NewPCG(1, 1))
		vol := s.side * s.side * s.side
		x, w := randSlice(r, s.n*s.c*vol), randSlice(r, s.f*s.c*27)
		y := make([]float32, s.n*s.f*vol)
		for _, path := range []string{"winograd", "shifted", "vol2col"} {
			for _, pass := range []string{"forward", "backward_input", "backward_weight"} {
				b.Run(fmt.Sprintf("shape=%s/path=%s/pass=%s", s.name, path, pass), func(b *testing.B) {
					tune := DefaultTuning()
					switch path {
					case "winograd":
						tune.Winograd3DMinPlane = 1
					case "shifted":
						tune.WinogradMinC = 1 << 30
					case "vol2col":
						tune.WinogradMinC, tune.ShiftMinWidth = 1<<30, 1<<30
					}
					d := NewCPUTuned(0, DefaultLevel(), tune)
					xb, wb, yb := &Buffer{dev: d, F: x}, &Buffer{dev: d, F: w}, &Buffer{dev: d, F: y}
					run := func() {
						switch pass {
						case "forward":
							d.Conv3D(yb, xb, wb, nil, p)
						case "backward_input":
							d.Conv3DBackwardInput(xb, yb, wb, p)
						case "backward_weight":
							d.Conv3DBackwardWeight(wb, nil, xb, yb, p)
						}
					}
					run()
					b.ResetTimer()
					for b.Loop() {
						run()
					}
					b.ReportMetric(2*float64(s.n*s.f*vol*s.c*27)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
				})
			}
		}
	}
}
