package kernels

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/godiffuse/godiffuse/tensor"
)

// BenchmarkVectorKernels times the elementwise kernels that dominate a
// U-Net's non-GEMM time on one thread, at every level the CPU has (generic:
// the plain-Go specification; avx2: 8 lanes; avx512: 16 lanes, then 8,
// then the scalar tail): softmax rows of tiny-mnist's 14×14 attention (196
// keys) and of SD's 64×64 one (4,096), SiLU and GELU forward and backward,
// and the GroupNorm affine pass and the whole GroupNorm (statistics, then
// the affine pass) and its backward pass, in million values per second.
//
//	go test ./kernels -run XXX -bench VectorKernels
func BenchmarkVectorKernels(b *testing.B) {
	r := rand.New(rand.NewPCG(3, 3))
	const n = 1 << 16
	x, dy := randSlice(r, n), randSlice(r, n)
	y, stats := make([]float32, n), make([]float32, 32)
	for _, level := range Levels() {
		d := NewCPULevel(1, level)
		for _, c := range []struct {
			name string
			run  func()
		}{
			{"softmax-196", func() {
				d.Softmax(&Buffer{dev: d, F: y}, &Buffer{dev: d, F: x}, tensor.SoftmaxParams{Rows: n / 196, Cols: 196})
			}},
			{"softmax-4096", func() {
				d.Softmax(&Buffer{dev: d, F: y}, &Buffer{dev: d, F: x}, tensor.SoftmaxParams{Rows: n / 4096, Cols: 4096})
			}},
			{"silu", func() { d.Unary(tensor.OpSiLU, &Buffer{dev: d, F: y}, &Buffer{dev: d, F: x}, n, tensor.UnaryParams{}) }},
			{"silu-grad", func() {
				d.UnaryBackward(tensor.OpSiLU, &Buffer{dev: d, F: y}, &Buffer{dev: d, F: x}, &Buffer{dev: d, F: dy}, n, tensor.UnaryParams{})
			}},
			{"gelu", func() { d.Unary(tensor.OpGELU, &Buffer{dev: d, F: y}, &Buffer{dev: d, F: x}, n, tensor.UnaryParams{}) }},
			{"gelu-grad", func() {
				d.UnaryBackward(tensor.OpGELU, &Buffer{dev: d, F: y}, &Buffer{dev: d, F: x}, &Buffer{dev: d, F: dy}, n, tensor.UnaryParams{})
			}},
			{"affine", func() { d.affine(y, x, 1.5, 0.25) }},
			{"group-norm", func() { // 32 channels of 28×28 in 8 groups, as tiny-mnist's first level
				p := tensor.NormParams{N: n / (32 * 784), G: 8, CG: 4, S: 784, Eps: 1e-5}
				d.Norm(&Buffer{dev: d, F: y}, &Buffer{dev: d, F: stats}, &Buffer{dev: d, F: stats[16:]}, &Buffer{dev: d, F: x}, nil, nil, p)
			}},
			{"group-norm-backward", func() {
				p := tensor.NormParams{N: n / (32 * 784), G: 8, CG: 4, S: 784, Eps: 1e-5}
				d.NormBackward(&Buffer{dev: d, F: y}, nil, nil, &Buffer{dev: d, F: dy}, &Buffer{dev: d, F: x}, &Buffer{dev: d, F: stats}, &Buffer{dev: d, F: stats[16:]}, nil, p)
			}},
		} {
			b.Run(fmt.Sprintf("op=%s/level=%s", c.name, level), func(b *testing.B) {
				for b.Loop() {
					c.run()
				}
				b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds()/1e6, "Mvalues/s")
			})
		}
	}
}
