package tensor_test

import (
	"slices"
	"testing"

	"github.com/godiffuse/godiffuse/kernels"
	"github.com/godiffuse/godiffuse/tensor"
)

// Views of more than tensor.MaxViewRank axes that no merging shortens: a
// copy is split over its leading axes, a binary op copies its operands
// densely first. Checked element by element against index arithmetic.
func TestViewsBeyondMaxRank(t *testing.T) {
	dev := kernels.CPU()
	shape := []int{2, 3, 2, 3, 2, 3, 2, 2} // 8 axes
	n := 1
	for _, s := range shape {
		n *= s
	}
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(i)
	}
	x := tensor.FromFloat32(dev, v, shape...)
	perm := []int{7, 0, 6, 1, 5, 2, 4, 3} // every neighbour pair discontiguous
	y := x.Permute(perm...).Contiguous()
	got := y.MustFloat32s()
	// Reference: y[j] = x[i] with j's index the permuted one.
	strides := make([]int, len(shape))
	acc := 1
	for k := len(shape) - 1; k >= 0; k-- {
		strides[k] = acc
		acc *= shape[k]
	}
	yShape := make([]int, len(perm))
	for k, p := range perm {
		yShape[k] = shape[p]
	}
	idx := make([]int, len(perm))
	for j := range n {
		rem := j
		for k := len(yShape) - 1; k >= 0; k-- {
			idx[k] = rem % yShape[k]
			rem /= yShape[k]
		}
		src := 0
		for k, p := range perm {
			src += idx[k] * strides[p]
		}
		if got[j] != v[src] {
			t.Fatalf("permuted copy: element %d is %g, want %g", j, got[j], v[src])
		}
	}
	// A binary op of two such views: (xᵀ + xᵀ) must be 2·xᵀ.
	xp := x.Permute(perm...)
	sum := tensor.Add(xp, xp).MustFloat32s()
	for j := range got {
		if sum[j] != 2*got[j] {
			t.Fatalf("binary over 8 axes: element %d is %g, want %g", j, sum[j], 2*got[j])
		}
	}
	if !slices.Equal(y.Shape(), yShape) {
		t.Fatalf("shape %v, want %v", y.Shape(), yShape)
	}
}
