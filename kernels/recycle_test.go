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
	short := DefaultTuning().RecycleMinLen - 1
	small, _ := d.Alloc(tensor.F32, short)
	d.Recycle(small)
	if _, ok := d.recycled.kept[short]; ok {
		t.Fatalf("a %d-value buffer was kept (below RecycleMinLen)", short)
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

// TestArrayListMapped: large scratch arrays are kept across get and put,
// usable whole, and given back to the system when the list drops them
// (beyond keep), small ones stay on the Go heap.
func TestArrayListMapped(t *testing.T) {
	l := arrayList{keep: 2}
	count := func() int {
		mapped.Lock()
		defer mapped.Unlock()
		return len(mapped.arrays)
	}
	before := count()
	probe := mapArray(1) // nil where the Go heap serves all (mapped_other.go)
	mappable := probe != nil
	if mappable {
		unmapArray(probe)
	}
	var got [][]float32
	for i := range 4 {
		b := l.get(mappedMinLen + i*1000)
		for j := range b { // every value writable
			b[j] = float32(j)
		}
		got = append(got, b)
	}
	small := l.get(100)
	if mappable && count() != before+4 {
		t.Fatalf("%d arrays mapped, want 4", count()-before)
	}
	again := l.get(mappedMinLen)
	l.put(again)
	if b := l.get(mappedMinLen); &b[0] != &again[0] {
		t.Fatal("a kept array was not handed out again")
	} else {
		l.put(b)
	}
	l.put(small)
	for _, b := range got {
		l.put(b)
	}
	if len(l.free) != 2 {
		t.Fatalf("%d arrays kept, want 2", len(l.free))
	}
	// The two largest stay (mapped), the small one and the rest were dropped.
	if mappable && count() != before+2 {
		t.Fatalf("%d arrays still mapped, want the 2 kept", count()-before)
	}
	for _, b := range l.free {
		if cap(b) < mappedMinLen+2000 {
			t.Fatalf("kept an array of %d, want the largest", cap(b))
		}
		b[len(b)-1] = 1
	}
}

// TestArrayListKeepsOneBig: of the arrays of bigArrayLen values or more, a
// oneBig list keeps only the longest (which then serves a shorter big request),
// beside its shorter arrays.
func TestArrayListKeepsOneBig(t *testing.T) {
	l := arrayList{keep: 6, oneBig: true}
	small := l.get(mappedMinLen)
	bigs := []int{bigArrayLen, bigArrayLen + 4096, bigArrayLen + 1024}
	var got [][]float32
	for _, n := range bigs {
		got = append(got, l.get(n))
	}
	for _, b := range got {
		l.put(b)
	}
	l.put(small)
	if len(l.free) != 2 {
		t.Fatalf("%d arrays kept, want the small one and the longest big one", len(l.free))
	}
	b := l.get(bigArrayLen)
	if cap(b) != bigArrayLen+4096 {
		t.Fatalf("a big request got an array of %d values, want the longest kept (%d)", cap(b), bigArrayLen+4096)
	}
	l.put(b)
	l.forget() // give the arrays back to the system
}

// TestForgetRecycled: tensor.ForgetRecycled drops every array the device
// keeps, so the next allocation of a kept length is fresh.
func TestForgetRecycled(t *testing.T) {
	d := NewCPU(1)
	n := DefaultTuning().RecycleMinLen
	b, _ := d.Alloc(tensor.F32, n)
	f := b.(*Buffer).F
	d.Recycle(b)
	tensor.ForgetRecycled(d)
	c, _ := d.Alloc(tensor.F32, n)
	if &c.(*Buffer).F[0] == &f[0] {
		t.Fatal("an array was taken after ForgetRecycled")
	}
	if len(d.recycled.kept) != 0 {
		t.Fatalf("%d lengths still kept", len(d.recycled.kept))
	}
}
