package kernels

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/godiffuse/godiffuse/tensor"
)

// BenchmarkAttentionInference compares the inference attention with Kᵀ and
// V packed once per head (packed) with one GEMM call per block and product
// (blocks), on the heads of the U-Nets: tiny-mnist (three heads of 16
// channels, at its batches 64 and 1) and ddpm-cifar10-32, both on the image
// itself (channel-major), and the SD 1.5 U-Net's self- and cross-attention.
func BenchmarkAttentionInference(b *testing.B) {
	d := NewCPU(2)
	r := rand.New(rand.NewPCG(1, 1))
	for _, c := range []struct {
		name string
		p    tensor.AttentionParams
	}{
		{"tiny-14x14", tensor.AttentionParams{B: 64, Heads: 3, Lq: 196, Lk: 196, D: 16, ChannelMajor: true}},
		{"tiny-14x14-b1", tensor.AttentionParams{B: 1, Heads: 3, Lq: 196, Lk: 196, D: 16, ChannelMajor: true}},
		{"cifar-16x16", tensor.AttentionParams{B: 8, Heads: 1, Lq: 256, Lk: 256, D: 256, ChannelMajor: true}},
		{"sd-self-64x64", tensor.AttentionParams{B: 2, Heads: 8, Lq: 4096, Lk: 4096, D: 40}},
		{"sd-cross-64x64", tensor.AttentionParams{B: 2, Heads: 8, Lq: 4096, Lk: 77, D: 40}},
		{"sd-self-32x32", tensor.AttentionParams{B: 2, Heads: 8, Lq: 1024, Lk: 1024, D: 80}},
		{"sd-self-16x16", tensor.AttentionParams{B: 2, Heads: 8, Lq: 256, Lk: 256, D: 160}},
	} {
		p := c.p
		p.Scale = float32(1 / math.Sqrt(float64(p.D)))
		C := p.Heads * p.D
		q, k, v := randSlice(r, p.B*p.Lq*C), randSlice(r, p.B*p.Lk*C), randSlice(r, p.B*p.Lk*C)
		o := make([]float32, len(q))
		for _, impl := range []string{"blocks", "packed", "columns"} {
			if impl == "columns" && (!p.ChannelMajor || p.Lk > columnsMaxKeys) {
				continue
			}
			b.Run(fmt.Sprintf("%s/%s", c.name, impl), func(b *testing.B) {
				mk, _ := d.microKernel()
				for b.Loop() {
					switch impl {
					case "packed":
						d.attentionPacked(mk, o, q, k, v, p)
					case "columns":
						d.attentionColumns(mk, o, q, k, v, p)
					default:
						d.attentionBlocks(o, q, k, v, p)
					}
				}
			})
		}
	}
}
