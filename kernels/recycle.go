package kernels

import (
	"math"
	"runtime"
	"slices"
	"sync"
	"time"
	"unsafe"
	"weak"

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
// an op whose kernel writes every element, takes it as it is. A training
// step hands back each activation as soon as backward is past it
// (Tensor.BackwardRelease), where the gradients further down and the next
// step's forward, which allocates the same lengths in the same order, take
// them. Buffers shorter than
// Tuning.RecycleMinLen are left to the collector.
// ---------------------------------------------------------------------------

// recycler keeps released arrays by length for the allocations that ask
// for that length again. It holds them itself: a sync.Pool, its first form,
// is emptied by every garbage collection, and diffuse train, generate and
// serve run the collector often (GOGC 10–15, for a low peak of memory), so
// most arrays a training step released came back as fresh memory cleared on
// one goroutine (tiny-mnist's b64 train step at GOGC=15: 340 MB of arrays
// of 1,024 values or more a step missed the pools, 118 MB with the arrays
// kept). Arrays of a length that nothing put or took for recycleIdle are
// dropped at the next collection (another model's or batch size's lengths,
// an idle device's), so they go back to the heap as they would have without
// recycling.
type recycler struct {
	minLen int  // Tuning.RecycleMinLen
	poison bool // Tuning.PoisonRecycled
	mu     sync.Mutex
	kept   map[int]*keptArrays
}

// keptArrays are the arrays of one length.
type keptArrays struct {
	arrays [][]float32
	used   time.Time // the last put or take
}

// recycleIdle is how long a length's arrays are kept unused.
const recycleIdle = 5 * time.Second

func newRecycler(minLen int, poison bool) *recycler {
	r := &recycler{minLen: minLen, poison: poison, kept: map[int]*keptArrays{}}
	recyclers.Lock()
	recyclers.all = append(recyclers.all, weak.Make(r))
	recyclers.Unlock()
	recyclers.watch.Do(watchCollections)
	return r
}

// put keeps f for a later take.
func (r *recycler) put(f []float32) {
	n := len(f)
	if r == nil || n == 0 || n < r.minLen { // nil: a device built without one keeps nothing
		return
	}
	r.mu.Lock()
	k := r.kept[n]
	if k == nil {
		k = &keptArrays{}
		r.kept[n] = k
	}
	k.arrays = append(k.arrays, f)
	k.used = time.Now()
	r.mu.Unlock()
}

// take returns a kept array of exactly n values (not cleared), or nil.
func (r *recycler) take(n int) []float32 {
	if r == nil || n == 0 || n < r.minLen {
		return nil
	}
	r.mu.Lock()
	k := r.kept[n]
	if k == nil || len(k.arrays) == 0 {
		r.mu.Unlock()
		return nil
	}
	f := k.arrays[len(k.arrays)-1]
	k.arrays[len(k.arrays)-1] = nil
	k.arrays = k.arrays[:len(k.arrays)-1]
	k.used = time.Now()
	r.mu.Unlock()
	if r.poison {
		nan := float32(math.NaN())
		for i := range f {
			f[i] = nan
		}
	}
	return f
}

// forget drops every kept array.
func (r *recycler) forget() {
	if r == nil {
		return
	}
	r.mu.Lock()
	clear(r.kept)
	r.mu.Unlock()
}

// sweep drops the arrays of every length unused since before cutoff.
func (r *recycler) sweep(cutoff time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for n, k := range r.kept {
		if k.used.Before(cutoff) {
			delete(r.kept, n)
		}
	}
}

// recyclers are the devices' recyclers, swept at every collection (held
// weakly: a device no longer used goes, recycler and all).
var recyclers struct {
	sync.Mutex
	all   []weak.Pointer[recycler]
	watch sync.Once
}

// collectionMark is an object that nothing keeps: its cleanup runs after
// the next collection (it holds a pointer, so it is not packed with other
// small objects that might keep it alive).
type collectionMark struct{ _ *byte }

// watchCollections sweeps every recycler after each collection.
func watchCollections() {
	runtime.AddCleanup(&collectionMark{}, func(struct{}) {
		cutoff := time.Now().Add(-recycleIdle)
		recyclers.Lock()
		live := recyclers.all[:0]
		for _, w := range recyclers.all {
			if r := w.Value(); r != nil {
				r.sweep(cutoff)
				live = append(live, w)
			}
		}
		clear(recyclers.all[len(live):])
		recyclers.all = live
		recyclers.Unlock()
		watchCollections()
	}, struct{}{})
}

// Recycle implements tensor.Recycler: b's array goes to its length's pool and
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

// ForgetRecycled drops the arrays the device keeps for later Allocs
// (tensor.ForgetRecycled), and the widening buffers of F16 weights.
func (d *Device) ForgetRecycled() {
	d.recycled.forget()
	halfArrays.forget()
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

// arrayList keeps arrays from one call to the next: the large scratch
// arrays of the kernels (Winograd's transformed weights, V and M; the
// attention's score blocks; partial sums) and the GEMMs' packed blocks.
// Fresh memory costs a page fault per 4 KiB on first touch, which measured
// as much as the Winograd weight transform itself — and about 10 µs a fault
// on the Zen 5 virtual machine of 2026-12-04, where a tiny-mnist batch-1
// forward that faulted 250 times took 6.5 ms instead of 4. A sync.Pool is
// emptied by every garbage collection, which a training step runs many of
// (and after each one, a batch-1 sampling step took its GEMMs' packed
// blocks, 872 KB, from fresh memory again). At most keep arrays are kept.
//
// Arrays of mappedMinLen values or more live outside the Go heap (mapped
// for themselves, unmapped when dropped): their lifetime is get to put, so
// the collector has nothing to do with them, and as heap they counted in
// the live heap that sets the next collection's goal. A fresh process's
// heap grows to twice its live size before its first collections reuse
// memory, and every page of that growth is a fault: with the 4–5 MB of
// scratch of a tiny-mnist batch-1 forward out of the heap, the first 100
// calls after two warm-ups fault about a quarter less (bench/RESULTS.md,
// 2026-12-06).
//
// With oneBig, of the arrays of bigArrayLen values or more only the longest
// is kept. Their users take them one at a time (a layer's transformed weights where
// they are made at every call: F16 weights, which are never cached), and
// the longest serves all the shorter; keeping six of them had held the six
// largest transforms of an SD 1.5 U-Net, 225 down to 100 MiB, for the life
// of the process (bench/RESULTS.md, 2026-12-06, late evening).
type arrayList struct {
	sync.Mutex
	free   [][]float32
	keep   int
	oneBig bool
}

// mapped are the arrays, kept or in use, that mapArray made for the lists.
var mapped struct {
	sync.Mutex
	arrays map[*float32]bool
}

// mappedMinLen is the shortest scratch array that is mapped outside the
// Go heap (64 KiB; shorter ones cost the collector little).
const mappedMinLen = 16 << 10

// bigArrayLen is the shortest array of which a list keeps only the longest
// (64 MiB).
const bigArrayLen = 16 << 20

var (
	scratchArrays = arrayList{keep: 6, oneBig: true}
	// an A and a B block per goroutine of a GEMM, and a few for nested calls
	packArrays = arrayList{keep: 4 + 2*runtime.NumCPU()}
)

// getScratch returns a scratch array of n floats (contents undefined).
func getScratch(n int) []float32 { return scratchArrays.get(n) }

// putScratch hands a scratch array back.
func putScratch(b []float32) { scratchArrays.put(b) }

// get returns the smallest kept array that holds n floats, or a new one
// (contents undefined).
func (l *arrayList) get(n int) []float32 {
	l.Lock()
	defer l.Unlock()
	best := -1
	for i, b := range l.free {
		if cap(b) >= n && (best < 0 || cap(b) < cap(l.free[best])) {
			best = i
		}
	}
	if best >= 0 {
		b := l.free[best]
		l.free = slices.Delete(l.free, best, best+1)
		return b[:n]
	}
	return newArray(n)
}

// newArray returns n floats (zero): mapped outside the Go heap when there
// are mappedMinLen or more and the system maps them, else from the heap.
// Give it back with freeArray.
func newArray(n int) []float32 {
	if n >= mappedMinLen {
		if b := mapArray(n); b != nil {
			mapped.Lock()
			if mapped.arrays == nil {
				mapped.arrays = map[*float32]bool{}
			}
			mapped.arrays[unsafe.SliceData(b)] = true
			mapped.Unlock()
			return b
		}
	}
	return make([]float32, n)
}

// freeArray gives back an array from newArray that nothing uses any more:
// unmapped if it was mapped, else left to the collector.
func freeArray(b []float32) {
	mapped.Lock()
	if p := unsafe.SliceData(b); mapped.arrays[p] {
		delete(mapped.arrays, p)
		unmapArray(b)
	}
	mapped.Unlock()
}

// put hands an array back (it must not be used after); beyond keep the
// smallest is dropped.
func (l *arrayList) put(b []float32) {
	l.Lock()
	defer l.Unlock()
	l.free = append(l.free, b)
	for {
		// the shortest array, and the shortest of the big ones if two are
		small, bigs, smallBig := 0, 0, -1
		for i, f := range l.free {
			if cap(f) < cap(l.free[small]) {
				small = i
			}
			if l.oneBig && cap(f) >= bigArrayLen {
				bigs++
				if smallBig < 0 || cap(f) < cap(l.free[smallBig]) {
					smallBig = i
				}
			}
		}
		switch {
		case bigs > 1:
			l.drop(smallBig)
		case len(l.free) > l.keep:
			l.drop(small)
		default:
			return
		}
	}
}

// forget drops every kept array.
func (l *arrayList) forget() {
	l.Lock()
	defer l.Unlock()
	for len(l.free) > 0 {
		l.drop(0)
	}
}

// drop forgets kept array i, unmapping it if it was mapped.
func (l *arrayList) drop(i int) {
	dropped := l.free[i]
	l.free = slices.Delete(l.free, i, i+1)
	freeArray(dropped)
}
