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
