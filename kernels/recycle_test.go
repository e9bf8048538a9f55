package kernels

import (
	"runtime"
	"testing"
	"time"

	"github.com/godiffuse/godiffuse/tensor"
)

// TestRecycle: a released buffer's array comes back from a later
// allocation of its length — cleared from Alloc, as left from AllocDirty —
// the released buffer itself fails loudly when read, short buffers and
// other devices' buffers are not taken.
func TestRecycle(t *testing.T) {
	d := NewCPU(2)
	n := DefaultTuning().RecycleMinLen + 3
	for range 5 {
		b, _ := d.Alloc(tensor.F32, n)
		f := b.(*Buffer).F
		for i, v := range f {
			if v != 0 {
				t.Fatalf("Alloc: value %d is %g, want 0", i, v)
			}
			f[i] = 7
		}
		d.Recycle(b)
		if !b.(*Buffer).released || b.(*Buffer).F != nil {
			t.Fatal("a recycled buffer still holds its array")
		}
		if err := tensor.Catch(func() { f32(b) }); err == nil {
			t.Fatal("reading a recycled buffer did not fail")
		}
		c, _ := d.Alloc(tensor.F32, n)
		if &c.(*Buffer).F[0] != &f[0] {
			t.Fatal("Alloc did not take the released array")
		}
		for i, v := range c.(*Buffer).F {
			if v != 0 {
				t.Fatalf("Alloc of a released array: value %d is %g, want 0", i, v)
			}
		}
		c.(*Buffer).F[5] = 3
		d.Recycle(c)
		e := d.AllocDirty(n).(*Buffer)
		if len(e.F) != n {
			t.Fatalf("AllocDirty: %d values, want %d", len(e.F), n)
		}
		if &e.F[0] != &f[0] || e.F[5] != 3 || e.F[6] != 0 {
			t.Fatal("AllocDirty did not hand back the released array as it was")
		}
		d.Recycle(e)
		runtime.GC() // a collection does not take a recently used length's arrays
		if d.AllocDirty(n).(*Buffer).F == nil {
			t.Fatal("no array after a collection")
		}
	}
	small, _ := d.Alloc(tensor.F32, 100)
	d.Recycle(small)
	if _, ok := d.recycled.kept[100]; ok {
		t.Fatal("a 100-value buffer was kept (below RecycleMinLen)")
	}
	other := NewCPU(1)
	ob, _ := other.Alloc(tensor.F32, n)
	d.Recycle(ob)
	if ob.(*Buffer).F == nil {
		t.Fatal("a device recycled another device's buffer")
	}
}

// TestRecycleIdleDropped: the arrays of a length unused for recycleIdle are
// dropped after the next collection, others kept.
func TestRecycleIdleDropped(t *testing.T) {
	d := NewCPU(1)
	n := DefaultTuning().RecycleMinLen
	for _, m := range []int{n, n + 1} {
		b, _ := d.Alloc(tensor.F32, m)
		d.Recycle(b)
	}
	r := d.recycled
	r.mu.Lock()
	r.kept[n].used = time.Now().Add(-2 * recycleIdle) // as if idle since
	r.mu.Unlock()
	deadline := time.Now().Add(5 * time.Second)
	for {
		runtime.GC()
		r.mu.Lock()
		_, idle := r.kept[n]
		_, recent := r.kept[n+1]
		r.mu.Unlock()
		if !recent {
			t.Fatal("a collection dropped a recently used length's arrays")
		}
		if !idle {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("an idle length's arrays are still kept after collections")
		}
		time.Sleep(10 * time.Millisecond)
	}
}
