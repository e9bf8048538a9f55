package kernels

import (
	"testing"

	"github.com/godiffuse/godiffuse/tensor"
)

// TestRecycle: a released buffer's array comes back from the next
// allocation of its length — cleared from Alloc, as left from AllocDirty —
// the released buffer itself is emptied, and the free lists stay bounded.
func TestRecycle(t *testing.T) {
	d := NewCPU(2)
	n := DefaultTuning().RecycleMinLen + 3
	b, _ := d.Alloc(tensor.F32, n)
	f := b.(*Buffer).F
	for i := range f {
		f[i] = 7
	}
	d.Recycle(b)
	if b.(*Buffer).F != nil {
		t.Fatal("a recycled buffer still holds its array")
	}
	c, _ := d.Alloc(tensor.F32, n)
	if &c.(*Buffer).F[0] != &f[0] {
		t.Fatal("Alloc of the same length did not reuse the released array")
	}
	for i, v := range c.(*Buffer).F {
		if v != 0 {
			t.Fatalf("recycled Alloc: value %d is %g, want 0", i, v)
		}
	}
	c.(*Buffer).F[5] = 3
	d.Recycle(c)
	if e := d.AllocDirty(n); &e.(*Buffer).F[0] != &f[0] || e.(*Buffer).F[5] != 3 {
		t.Fatal("AllocDirty did not hand back the released array as it was")
	}
	if e := d.AllocDirty(n); len(e.(*Buffer).F) != n || &e.(*Buffer).F[0] == &f[0] {
		t.Fatal("AllocDirty with empty lists: want a fresh array of n values")
	}
	small, _ := d.Alloc(tensor.F32, 100)
	d.Recycle(small)
	if d.recycled.bytes != 0 {
		t.Fatalf("a %d-value buffer was kept (below RecycleMinLen)", 100)
	}
	for range recyclePerLen + 3 {
		b, _ := d.Alloc(tensor.F32, n)
		d.Recycle(b)
	}
	// Allocating one and releasing it each time keeps one array, not more.
	if got := len(d.recycled.free[n]); got != 1 {
		t.Fatalf("free list of length %d holds %d arrays, want 1", n, got)
	}
	var held []tensor.Buffer
	for range recyclePerLen + 3 {
		b, _ := d.Alloc(tensor.F32, n)
		held = append(held, b)
	}
	for _, b := range held {
		d.Recycle(b)
	}
	if got := len(d.recycled.free[n]); got != recyclePerLen {
		t.Fatalf("free list holds %d arrays, want the bound %d", got, recyclePerLen)
	}
	other := NewCPU(1)
	ob, _ := other.Alloc(tensor.F32, n)
	d.Recycle(ob)
	if ob.(*Buffer).F == nil {
		t.Fatal("a device recycled another device's buffer")
	}
}
