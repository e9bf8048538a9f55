package kernels

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/godiffuse/godiffuse/tensor"
)

// TestReduce checks Reduce against the triple loop of its doc comment (the
// same float64 additions in the same order, so the same bits) on rows
// (Inner 1) and on column spans below, at and around reduceSpan, on one
// and on several threads, with guard cells after the output.
func TestReduce(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 3))
	for _, threads := range []int{1, 3} {
		d := NewCPULevel(threads, Generic)
		for _, outer := range []int{1, 3} {
			for _, n := range []int{0, 1, 7, 300} {
				for _, inner := range []int{1, 2, 17, 255, 256, 257, 600} {
					x := randSlice(r, outer*n*inner)
					for _, op := range []tensor.ReduceOp{tensor.ReduceSum, tensor.ReduceMean, tensor.ReduceSumSquares} {
						name := fmt.Sprintf("threads %d op %d (%d, %d, %d)", threads, op, outer, n, inner)
						y := withGuard(d, outer*inner)
						d.Reduce(op, y, &Buffer{dev: d, F: x}, tensor.ReduceParams{Outer: outer, N: n, Inner: inner})
						checkGuard(t, name, y, outer*inner)
						for o := range outer {
							for i := range inner {
								var s float64
								for k := range n {
									v := float64(x[(o*n+k)*inner+i])
									if op == tensor.ReduceSumSquares {
										v *= v
									}
									s += v
								}
								if op == tensor.ReduceMean && n > 0 {
									s /= float64(n)
								}
								if got := y.F[o*inner+i]; got != float32(s) {
									t.Fatalf("%s: [%d, %d] = %g, want %g", name, o, i, got, float32(s))
								}
							}
						}
					}
				}
			}
		}
	}
}

// TestCopyStrided copies permuted views (transposes, leading axes of one,
// a single long row) on one and on several threads and checks every value
// against the index arithmetic, with guard cells after the destination.
func TestCopyStrided(t *testing.T) {
	r := rand.New(rand.NewPCG(4, 4))
	for _, threads := range []int{1, 3} {
		d := NewCPULevel(threads, Generic)
		for _, shape := range [][]int{{70000}, {1, 5, 3}, {1, 1, 40000}, {3, 200, 70}, {2, 0, 4}, {1}, {129, 257}} {
			n := 1
			for _, s := range shape {
				n *= s
			}
			src := randSlice(r, n+7)
			// The source viewed with its axes reversed: strides of a (last … first) array.
			srcStrides := make([]int, len(shape))
			st := 1
			for k := range shape {
				srcStrides[k] = st
				st *= shape[k]
			}
			dstStrides := make([]int, len(shape))
			st = 1
			for k := len(shape) - 1; k >= 0; k-- {
				dstStrides[k] = st
				st *= shape[k]
			}
			y := withGuard(d, n)
			d.Copy(tensor.Strided{Buf: y, Strides: dstStrides}, tensor.Strided{Buf: &Buffer{dev: d, F: src}, Off: 7, Strides: srcStrides}, shape)
			checkGuard(t, fmt.Sprint("copy ", shape), y, n)
			idx := make([]int, len(shape))
			for i := range n {
				rem := i
				for k := len(shape) - 1; k >= 0; k-- {
					idx[k] = rem % shape[k]
					rem /= shape[k]
				}
				so := 7
				for k := range shape {
					so += idx[k] * srcStrides[k]
				}
				if y.F[i] != src[so] {
					t.Fatalf("threads %d shape %v: dst[%d] = %g, want %g", threads, shape, i, y.F[i], src[so])
				}
			}
		}
	}
}
