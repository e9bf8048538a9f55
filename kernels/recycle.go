package kernels

import (
	"math"
	"sync"

	"github.com/godiffuse/godiffuse/tensor"
)

// ---------------------------------------------------------------------------
// Buffers handed back for reuse (tensor.Release).
//
// An inference forward allocates a fresh tensor for most layers' outputs.
// Go clears every one of them on the allocating goroutine while the other
// threads wait (memclr was 9 % of tiny-mnist's batch-64 forward), and the
// collector finds them dead only later. A module that knows an
// intermediate is dead hands it back with tensor.Release; the next Alloc of
// the same length takes its array and clears it over the threads, or, for
// an op whose kernel writes every element, takes it as it is. Buffers
// shorter than Tuning.RecycleMinLen are left to the collector (cheap to
// allocate), and the free lists are bounded, so a run whose lengths change
// (another model, another batch) leaves at most recycleMaxBytes behind.
// ---------------------------------------------------------------------------

const (
	recyclePerLen   = 8         // arrays kept per length
	recycleMaxBytes = 256 << 20 // in all
)

type recycler struct {
	mu     sync.Mutex
	minLen int  // Tuning.RecycleMinLen
	poison bool // Tuning.PoisonRecycled
	free   map[int][][]float32
	bytes  int
}

// put keeps f for a later take, unless the lists are full.
func (r *recycler) put(f []float32) {
	n := len(f)
	if n == 0 || n < r.minLen {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.free[n]) >= recyclePerLen || r.bytes+4*n > recycleMaxBytes {
		return
	}
	if r.free == nil {
		r.free = map[int][][]float32{}
	}
	r.free[n] = append(r.free[n], f)
	r.bytes += 4 * n
}

// take returns a kept array of exactly n values (not cleared), or nil.
func (r *recycler) take(n int) []float32 {
	if n == 0 || n < r.minLen {
		return nil
	}
	r.mu.Lock()
	l := r.free[n]
	if len(l) == 0 {
		r.mu.Unlock()
		return nil
	}
	f := l[len(l)-1]
	l[len(l)-1] = nil
	r.free[n] = l[:len(l)-1]
	r.bytes -= 4 * n
	r.mu.Unlock()
	if r.poison {
		nan := float32(math.NaN())
		for i := range f {
			f[i] = nan
		}
	}
	return f
}

// Recycle implements tensor.Recycler: b's array goes to the free lists and
// b is emptied, so a stale view of it fails loudly instead of reading
// another tensor's values.
func (d *Device) Recycle(b tensor.Buffer) {
	cb, ok := b.(*Buffer)
	if !ok || cb.dev != d || cb.dt != tensor.F32 || cb.released {
		return
	}
	f := cb.F
	cb.F, cb.released = nil, true
	d.recycled.put(f)
}

// AllocDirty implements tensor.DirtyAllocator: n float32 values, a
// recycled array as it was left when there is one (the op overwrites it),
// else a fresh one.
func (d *Device) AllocDirty(n int) tensor.Buffer {
	f := d.recycled.take(n)
	if f == nil {
		f = make([]float32, n)
	}
	return &Buffer{dev: d, dt: tensor.F32, F: f}
}

// allocF32 returns n cleared float32 values, recycled when it can.
func (d *Device) allocF32(n int) []float32 {
	f := d.recycled.take(n)
	if f == nil {
		return make([]float32, n)
	}
	d.parallelFor(n, elemGrain, func(lo, hi int) { clear(f[lo:hi]) })
	return f
}

// PoisonedCPU is NewCPU for tests of code that releases tensors: it
// recycles buffers of every length and fills each reused array with NaN
// before handing it out (Tuning.PoisonRecycled).
func PoisonedCPU(threads int) *Device {
	t := DefaultTuning()
	t.RecycleMinLen, t.PoisonRecycled = 1, true
	return NewCPUTuned(threads, DefaultLevel(), t)
}
