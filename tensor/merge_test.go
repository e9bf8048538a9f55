package tensor

import (
	"math/rand/v2"
	"slices"
	"testing"
)

// offsetsOf lists the offsets a view of strides visits over shape, in
// row-major order of the index.
func offsetsOf(shape, strides []int) []int {
	var out []int
	idx := make([]int, len(shape))
	for {
		off := 0
		for k := range shape {
			off += idx[k] * strides[k]
		}
		out = append(out, off)
		k := len(shape) - 1
		for ; k >= 0; k-- {
			if idx[k]++; idx[k] < shape[k] {
				break
			}
			idx[k] = 0
		}
		if k < 0 {
			return out
		}
	}
}

// TestMergeAxes: the merged shape and strides visit every view's elements
// in the same order as the original ones, with no axis of size 1 and no two
// neighbours left that could merge (dense, permuted, broadcast and sliced
// views of random shapes).
func TestMergeAxes(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for trial := range 2000 {
		rank := 1 + r.IntN(5)
		shape := make([]int, rank)
		for k := range shape {
			shape[k] = 1 + r.IntN(4)
		}
		views := make([][]int, 1+r.IntN(3))
		for v := range views {
			// a dense layout of a permutation of the axes, some axes broadcast
			perm := r.Perm(rank)
			st, s := make([]int, rank), 1+r.IntN(2) // a step of 2: every other element
			for i := rank - 1; i >= 0; i-- {
				st[perm[i]] = s
				s *= shape[perm[i]] + r.IntN(2) // sometimes a padded row
			}
			for k := range st {
				if r.IntN(5) == 0 {
					st[k] = 0
				}
			}
			views[v] = st
		}
		ms := slices.Clone(shape)
		mst := make([][]int, len(views))
		for v := range views {
			mst[v] = slices.Clone(views[v])
		}
		m := mergeAxes(ms, mst...)
		ms = ms[:m]
		for v := range mst {
			mst[v] = mst[v][:m]
		}
		if slices.Contains(ms, 1) {
			t.Fatalf("trial %d: merged shape %v keeps an axis of 1", trial, ms)
		}
		for v := range views {
			if got, want := offsetsOf(ms, mst[v]), offsetsOf(shape, views[v]); !slices.Equal(got, want) {
				t.Fatalf("trial %d: shape %v strides %v merged to %v %v: visits %v, want %v", trial, shape, views[v], ms, mst[v], got, want)
			}
		}
		for k := 1; k < len(ms); k++ {
			all := true
			for v := range views {
				all = all && mst[v][k-1] == mst[v][k]*ms[k]
			}
			if all {
				t.Fatalf("trial %d: axes %d and %d of %v %v could still merge", trial, k-1, k, ms, mst)
			}
		}
	}
}
