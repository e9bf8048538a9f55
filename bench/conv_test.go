package bench

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/godiffuse/godiffuse/kernels"
	"github.com/godiffuse/godiffuse/tensor"
)

// convShape is one convolution the U-Nets run (stride 1 pads 1, stride 2
// is diffusers' Downsample2D with padding 1).
type convShape struct {
	name                  string
	batch, c, f, hw, k, s int
}

// The layers of tiny-mnist at batch 64 and of ddpm-cifar10-32 at batch 8 —
// the batches of the U-Net targets — from 3×3 at full resolution down to
// the 1×1 shortcuts.
var unetConvs = []convShape{
	{"tiny/conv_in", 64, 1, 32, 28, 3, 1},
	{"tiny/res32", 64, 32, 32, 28, 3, 1},
	{"tiny/down32", 64, 32, 32, 28, 3, 2},
	{"tiny/res32to48", 64, 32, 48, 14, 3, 1},
	{"tiny/res48_14", 64, 48, 48, 14, 3, 1},
	{"tiny/res48_7", 64, 48, 48, 7, 3, 1},
	{"tiny/shortcut96to48", 64, 96, 48, 14, 1, 1},
	{"tiny/proj48", 64, 48, 48, 14, 1, 1},
	{"cifar/conv_in", 8, 3, 128, 32, 3, 1},
	{"cifar/res128_32", 8, 128, 128, 32, 3, 1},
	{"cifar/down128", 8, 128, 128, 32, 3, 2},
	{"cifar/res128to256", 8, 128, 256, 16, 3, 1},
	{"cifar/res256_16", 8, 256, 256, 16, 3, 1},
	{"cifar/res256_8", 8, 256, 256, 8, 3, 1},
	{"cifar/res256_4", 8, 256, 256, 4, 3, 1},
	{"cifar/shortcut512to256", 8, 512, 256, 8, 1, 1},
	{"cifar/res512to256_up", 8, 512, 256, 32, 3, 1},
}

// BenchmarkConv2d times each U-Net convolution's forward pass and both
// backward passes at the best CPU level and with the plain-Go reference
// (level=generic, one run each is enough to see the ratio), in GFLOP/s
// (2·N·F·OH·OW·C·KH·KW per pass: the direct convolution's count, so the
// layers that go through Winograd, which does 2.25× fewer multiply-adds,
// read as effective GFLOP/s and can pass the FMA ceiling).
//
//	go test ./bench -run XXX -bench 'Conv2d/shape=cifar' -benchtime 5x
func BenchmarkConv2d(b *testing.B) {
	levels := []kernels.Level{kernels.MaxLevel()}
	if kernels.MaxLevel() != kernels.Generic {
		levels = append(levels, kernels.Generic)
	}
	for _, s := range unetConvs {
		for _, pass := range []string{"forward", "backward_input", "backward_weight"} {
			for _, l := range levels {
				b.Run(fmt.Sprintf("shape=%s/pass=%s/level=%s", s.name, pass, l), func(b *testing.B) {
					// Without the weight cache, as in training (the weights
					// change between passes).
					tune := kernels.DefaultTuning()
					tune.WeightCacheMiB = 0
					convOnDevice(b, kernels.NewCPUTuned(0, l, tune), s, pass)
				})
			}
		}
	}
}

func convOnDevice(b *testing.B, d tensor.Device, s convShape, pass string) {
	r := rand.New(rand.NewPCG(2, 2))
	pad := (s.k - 1) / 2
	oh := (s.hw+2*pad-s.k)/s.s + 1
	p := tensor.ConvParams{N: s.batch, C: s.c, H: s.hw, W: s.hw, F: s.f, KH: s.k, KW: s.k, StrideH: s.s, StrideW: s.s,
		PadTop: pad, PadBottom: pad, PadLeft: pad, PadRight: pad, OH: oh, OW: oh}
	x := tensor.FromFloat32(d, randn(r, s.batch*s.c*s.hw*s.hw), s.batch, s.c, s.hw, s.hw)
	w := tensor.FromFloat32(d, randn(r, s.f*s.c*s.k*s.k), s.f, s.c, s.k, s.k)
	bias := tensor.FromFloat32(d, randn(r, s.f), s.f)
	y := tensor.FromFloat32(d, randn(r, s.batch*s.f*oh*oh), s.batch, s.f, oh, oh)
	run := func() {
		switch pass {
		case "forward":
			d.Conv2D(y.Buffer(), x.Buffer(), w.Buffer(), bias.Buffer(), p)
		case "backward_input":
			d.Conv2DBackwardInput(x.Buffer(), y.Buffer(), w.Buffer(), p)
		case "backward_weight":
			d.Conv2DBackwardWeight(w.Buffer(), bias.Buffer(), x.Buffer(), y.Buffer(), p)
		}
		if err := d.Synchronize(); err != nil {
			b.Fatal(err)
		}
	}
	run() // warm-up
	b.ResetTimer()
	for b.Loop() {
		run()
	}
	flops := 2.0 * float64(s.batch*s.f*oh*oh*s.c*s.k*s.k)
	b.ReportMetric(flops*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
}

// BenchmarkConv2dWinograd times the stride-1 3×3 layers of unetConvs by
// Winograd F(2×2, 3×3) and F(4×4, 3×3), forward (weights kept, as in
// sampling) and input gradient, in effective GFLOP/s as BenchmarkConv2d.
//
//	go test ./bench -run XXX -bench 'Conv2dWinograd/shape=tiny' -benchtime 20x
func BenchmarkConv2dWinograd(b *testing.B) {
	for _, s := range unetConvs {
		if s.k != 3 || s.s != 1 {
			continue
		}
		for _, pass := range []string{"forward", "backward_input"} {
			for _, tile := range []int{2, 4} {
				b.Run(fmt.Sprintf("shape=%s/pass=%s/tile=%d", s.name, pass, tile), func(b *testing.B) {
					tune := kernels.DefaultTuning()
					tune.Winograd4MinSide = 1 << 30
					if tile == 4 {
						tune.Winograd4MinSide = 0
					}
					d := kernels.NewCPUTuned(0, kernels.MaxLevel(), tune)
					if pl := d.PlanConv2D(tensor.ConvParams{N: s.batch, C: s.c, F: s.f, H: s.hw, W: s.hw, OH: s.hw, OW: s.hw,
						KH: 3, KW: 3, StrideH: 1, StrideW: 1, PadTop: 1, PadBottom: 1, PadLeft: 1, PadRight: 1}); pl.Forward != kernels.ConvWinograd {
						b.Skipf("planned %v", pl.Forward)
					}
					convOnDevice(b, d, s, pass)
				})
			}
		}
	}
}
