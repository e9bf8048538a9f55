//go:build !windows

package vulkan

import "testing"

// TestSplitK checks the slicing of the weight gradient's K: slices cover K
// exactly, are multiples of 16 but the last, and none is empty.
func TestSplitK(t *testing.T) {
	for _, c := range []struct{ tiles, k int }{{1, 3200}, {4, 2304}, {9, 131072}, {36, 131072}, {1, 1000}, {600, 1 << 20}, {1, 2047}, {3, 1 << 20}} {
		s, chunk := splitK(c.tiles, c.k)
		if s == 1 {
			if chunk != c.k {
				t.Errorf("splitK(%d, %d) = 1, %d: want the whole K", c.tiles, c.k, chunk)
			}
			continue
		}
		if chunk%16 != 0 || chunk < splitKMin-15 || (s-1)*chunk >= c.k || s*chunk < c.k {
			t.Errorf("splitK(%d, %d) = %d slices of %d", c.tiles, c.k, s, chunk)
		}
	}
}
