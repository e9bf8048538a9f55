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

// TestNormSplit checks the parts of a split normalization group: they
// cover the group exactly and none is empty.
func TestNormSplit(t *testing.T) {
	for _, c := range []struct{ groups, size int }{{2, 16384}, {32, 1 << 20}, {32, 4 << 20}, {4096, 256}, {1, 8191}, {1, 100000}, {600, 1 << 20}} {
		parts, chunk := normSplit(c.groups, c.size)
		if parts == 1 {
			if chunk != c.size {
				t.Errorf("normSplit(%d, %d) = 1, %d: want the whole group", c.groups, c.size, chunk)
			}
			continue
		}
		if chunk < normPartMin/2 || (parts-1)*chunk >= c.size || parts*chunk < c.size {
			t.Errorf("normSplit(%d, %d) = %d parts of %d", c.groups, c.size, parts, chunk)
		}
	}
}
