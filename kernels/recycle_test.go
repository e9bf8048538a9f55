package kernels

import (
	"testing"

	"github.com/godiffuse/godiffuse/tensor"
)

// TestRecycle: a released buffer's array comes back from a later
// allocation of its length — cleared from Alloc, as left from AllocDirty —
// the released buffer itself fails loudly when read, short buffers and
// other devices' buffers are not taken. (sync.Pool may drop an array, under
// the race detector on purpose: reuse is asked of one try in many.)
func TestRecycle(t *testing.T) {
	d := NewCPU(2)
	n := DefaultTuning().RecycleMinLen + 3
	reusedAlloc, reusedDirty := false, false
	for range 50 {
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
		reusedAlloc = reusedAlloc || &c.(*Buffer).F[0] == &f[0]
		c.(*Buffer).F[5] = 3
		d.Recycle(c)
		e := d.AllocDirty(n).(*Buffer)
		if len(e.F) != n {
			t.Fatalf("AllocDirty: %d values, want %d", len(e.F), n)
		}
		if &e.F[0] == &f[0] {
			reusedDirty = true
			if e.F[5] != 3 || e.F[6] != 0 {
				t.Fatal("AllocDirty did not hand back the released array as it was")
			}
		}
	}
	if !reusedAlloc || !reusedDirty {
		t.Fatalf("released arrays never came back (Alloc %v, AllocDirty %v)", reusedAlloc, reusedDirty)
	}
	small, _ := d.Alloc(tensor.F32, 100)
	d.Recycle(small)
	if _, ok := d.recycled.pools.Load(100); ok {
		t.Fatal("a 100-value buffer was kept (below RecycleMinLen)")
	}
	other := NewCPU(1)
	ob, _ := other.Alloc(tensor.F32, n)
	d.Recycle(ob)
	if ob.(*Buffer).F == nil {
		t.Fatal("a device recycled another device's buffer")
	}
}
