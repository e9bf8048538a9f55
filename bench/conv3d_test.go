package bench

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/godiffuse/godiffuse/kernels"
	"github.com/godiffuse/godiffuse/tensor"
)

// BenchmarkConv3d times the 3×3×3 convolution of issue 21's target — a 32³
// volume with 64 channels in and out, padding 1 — and the UNet3D's
// downsampler (stride 2), forward and both gradients, at the best CPU level,
// in GFLOP/s (2·N·F·OD·OH·OW·C·27 per pass). bench/anchors/conv3d_torch.py
// times PyTorch's conv3d on the same shapes; run both in the same session
// and compare (bench/RESULTS.md):
//
//	go test ./bench -run XXX -bench Conv3d -benchtime 5x
//	python3 bench/anchors/conv3d_torch.py
func BenchmarkConv3d(b *testing.B) {
	shapes := []struct {
		name                string
		batch, c, f, dhw, s int
	}{
		{"res64_32", 1, 64, 64, 32, 1},
		{"res64_32_batch4", 4, 64, 64, 32, 1},
		{"down64_32", 1, 64, 64, 32, 2},
	}
	for _, s := range shapes {
		for _, pass := range []string{"forward", "backward_input", "backward_weight"} {
			b.Run(fmt.Sprintf("shape=%s/pass=%s", s.name, pass), func(b *testing.B) {
				// Without the weight cache: in training the weights change
				// between passes, and torch's conv3d keeps nothing either.
				tune := kernels.DefaultTuning()
				tune.WeightCacheMiB = 0
				d := kernels.NewCPUTuned(0, kernels.DefaultLevel(), tune)
				r := rand.New(rand.NewPCG(3, 3))
				o := (s.dhw+2-3)/s.s + 1
				p := tensor.Conv3DParams{N: s.batch, C: s.c, D: s.dhw, H: s.dhw, W: s.dhw, F: s.f, KD: 3, KH: 3, KW: 3,
					StrideD: s.s, StrideH: s.s, StrideW: s.s, PadD: 1, PadH: 1, PadW: 1, OD: o, OH: o, OW: o}
				vol, ovol := s.dhw*s.dhw*s.dhw, o*o*o
				x := tensor.FromFloat32(d, randn(r, s.batch*s.c*vol), s.batch*s.c*vol)
				w := tensor.FromFloat32(d, randn(r, s.f*s.c*27), s.f*s.c*27)
				bias := tensor.FromFloat32(d, randn(r, s.f), s.f)
				y := tensor.FromFloat32(d, randn(r, s.batch*s.f*ovol), s.batch*s.f*ovol)
				run := func() {
					switch pass {
					case "forward":
						d.Conv3D(y.Buffer(), x.Buffer(), w.Buffer(), bias.Buffer(), p)
					case "backward_input":
						d.Conv3DBackwardInput(x.Buffer(), y.Buffer(), w.Buffer(), p)
					case "backward_weight":
						d.Conv3DBackwardWeight(w.Buffer(), bias.Buffer(), x.Buffer(), y.Buffer(), p)
					}
				}
				run() // warm-up
				b.ResetTimer()
				for b.Loop() {
					run()
				}
				flops := 2.0 * float64(s.batch*s.f*ovol*s.c*27)
				b.ReportMetric(flops*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
				b.ReportMetric(b.Elapsed().Seconds()*1e3/float64(b.N), "ms/pass")
			})
		}
	}
}
