package kernels

import (
	"hash/maphash"
	"runtime"
	"sync"
	"unsafe"
	"weak"

	"github.com/godiffuse/godiffuse/tensor"
)

// ---------------------------------------------------------------------------
// Prepared weights kept across calls.
//
// A sampler runs the same network 20–50 times with the same weights, and
// every convolution on the Winograd path transforms its weights into the 16
// packed matrices U[ξ] each time: at batch 1 that transform was a quarter
// of tiny-mnist's forward time (bench/RESULTS.md, 2026-12-03). The other
// forward paths pack their weight matrix into the micro-kernel's panels,
// which was a fifth of ddpm-cifar10-32's batch-1 forward (2026-12-03,
// late). The cache keeps either form of a weight buffer from one call to
// the next.
//
// Staleness is ruled out by content, not by trust: each call hashes the
// weights (maphash over the threads, hashFloats) and uses the kept form only
// if the hash is the one it was made from. A buffer is cached on its second
// call with unchanged contents, so a training step — whose optimizer
// changes every weight between calls — allocates nothing; after two changes
// a buffer is marked volatile and is no longer hashed either. The one
// exception is a frozen buffer (tensor.Freeze, which samplers use): its
// contents are hashed once per freeze and its form kept from the first
// call, since writing it fails until it is thawed. Hashing at every call
// was 7 % of a batch-1 forward (bench/RESULTS.md, 2026-12-03, AMD Zen 5).
// Entries are keyed by a weak pointer to the buffer and dropped when it is
// collected.
// Tuning.WeightCacheMiB bounds the memory; past it, weights are transformed
// per call as before. Half-precision (F16) weights are never kept: they were
// chosen to save memory, and their transforms are float32.
// ---------------------------------------------------------------------------

// weightForm names a prepared form of a weight buffer.
type weightForm uint8

const (
	formWinograd        weightForm = iota // U[ξ] of a 3×3 kernel
	formWinogradFlipped                   // U[ξ] of the flipped kernel (input gradient)
	formPacked                            // the F×(C·kernel) matrix in the GEMM's panels (other forward paths)
	formWinograd4                         // U[ξ] of F(4×4, 3×3)
	formWinograd4Flipped
	formDirect // [⌈F/16⌉][C][9][16] for the direct 3×3 kernel (direct.go)
)

type weightKey struct {
	buf  weak.Pointer[Buffer]
	form weightForm
	f, c int // the prepared matrices' rows and columns
}

type weightEntry struct {
	hash     uint64
	changes  int       // how often the contents changed between calls
	volatile bool      // changed twice: not cached, not hashed any more (unless frozen)
	checked  uint64    // the freeze (Buffer.frozenGen) under which hash was last checked
	prepared any       // what prepare made: [][16]gemmA (Winograd) or *prepackedA
	buf      []float32 // prepared's storage; nil until cached
}

type weightCache struct {
	mu      sync.Mutex
	seed    maphash.Seed
	entries map[weightKey]*weightEntry
	bytes   int // held by the entries' buffers
}

func newWeightCache() *weightCache {
	return &weightCache{seed: maphash.MakeSeed(), entries: map[weightKey]*weightEntry{}}
}

// drop forgets a collected buffer's entries (a runtime cleanup).
func (c *weightCache) drop(k weightKey) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.entries[k]; ok {
		c.bytes -= 4 * len(e.buf)
		delete(c.entries, k)
	}
}

// keep is the release of a prepared form the cache keeps: nothing to hand
// back. (A func literal in the generic preparedWeights would be a closure
// over its type dictionary, a heap object at every call.)
func keep() {}

// preparedWeights returns the prepared form of ws (the floats of the buffer
// w), made by prepare into a buffer of n floats: the kept one when the cache
// holds it for these contents, else a fresh one in scratch that release
// hands back.
func preparedWeights[T any](d *Device, w tensor.Buffer, ws []float32, form weightForm, f, c, n int,
	prepare func(buf []float32) T) (prepared T, release func()) {
	fresh := func() (T, func()) {
		buf := getScratch(n)
		return prepare(buf), func() { putScratch(buf) }
	}
	cache, cb := d.weights, asBuffer(w)
	budget := 4 * n
	// Half-precision weights were chosen to save memory: their float32
	// transforms are not kept.
	if cache == nil || cb == nil || cb.dt == tensor.F16 || budget > d.tune.WeightCacheMiB<<20 {
		return fresh()
	}
	key := weightKey{buf: weak.Make(cb), form: form, f: f, c: c}
	gen := cb.freezeGen() // frozen (tensor.Freeze): contents checked once per freeze
	cache.mu.Lock()
	e := cache.entries[key]
	if e != nil && gen != 0 && e.checked == gen && e.buf != nil {
		prepared = e.prepared.(T)
		cache.mu.Unlock()
		return prepared, keep
	}
	if e != nil && e.volatile && gen == 0 {
		cache.mu.Unlock()
		return fresh()
	}
	cache.mu.Unlock()

	h := d.hashFloats(cache.seed, ws)
	cache.mu.Lock()
	switch e = cache.entries[key]; {
	case e == nil: // first call: remember the contents (and keep the form only if frozen)
		e = &weightEntry{hash: h}
		cache.entries[key] = e
		runtime.AddCleanup(cb, cache.drop, key)
		if gen == 0 {
			cache.mu.Unlock()
			return fresh()
		}
	case e.hash != h: // changed since: forget the kept form
		e.hash = h
		e.changes++
		e.volatile = e.changes >= 2
		cache.bytes -= 4 * len(e.buf)
		e.buf, e.prepared = nil, nil
		if gen == 0 {
			cache.mu.Unlock()
			return fresh()
		}
	case e.buf != nil: // kept
		e.checked = gen
		prepared = e.prepared.(T)
		cache.mu.Unlock()
		return prepared, keep
	}
	if cache.bytes+budget > d.tune.WeightCacheMiB<<20 { // unchanged (or frozen), but no room
		cache.mu.Unlock()
		return fresh()
	}
	cache.bytes += budget // unchanged since the last call, or frozen: keep this one
	cache.mu.Unlock()
	buf := make([]float32, n)
	prepared = prepare(buf)
	cache.mu.Lock()
	if e2 := cache.entries[key]; e2 == e && e.hash == h && e.buf == nil {
		e.buf, e.prepared, e.checked = buf, prepared, gen
	} else {
		cache.bytes -= budget
	}
	cache.mu.Unlock()
	return prepared, keep
}

// packedWeightsOf is the row-major m×k weight matrix ws (of buffer w) as
// the shared A operand of a GEMM, packed once per call, or kept across calls
// while w's contents do not change; release hands back what was not kept.
func (d *Device) packedWeightsOf(w tensor.Buffer, ws []float32, m, k int) (wA gemmA, release func()) {
	mk, ok := d.microKernel()
	if !ok {
		return d.newGemmA(false, m, k, ws, k), func() {}
	}
	pa, release := preparedWeights(d, w, ws, formPacked, m, k, prepackedLen(mk, m, k), func(buf []float32) *prepackedA {
		return prepackAIn(mk, false, m, k, 1, ws, k, buf)
	})
	return gemmA{m: m, k: k, a: ws, lda: k, pre: pa}, release
}

// hashGrain is the most floats one thread hashes: a larger buffer is cut into
// parts hashed over the device's threads (a sampler hashes every weight at
// every step: at ddpm-cifar10-32's 36 M parameters, one thread spent a
// tenth of a batch-1 forward in it).
const hashGrain = 1 << 18

// hashFloats is a maphash of the bytes of v: of v itself, or of the hashes of
// its parts of hashGrain floats (the parts and their order fixed by len(v),
// so a buffer's hash does not depend on the thread count).
func (d *Device) hashFloats(seed maphash.Seed, v []float32) uint64 {
	bytes := func(v []float32) []byte { return unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(v))), 4*len(v)) }
	if len(v) <= hashGrain {
		return maphash.Bytes(seed, bytes(v))
	}
	parts := make([]uint64, (len(v)+hashGrain-1)/hashGrain)
	d.parallelFor(len(parts), 1, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			parts[i] = maphash.Bytes(seed, bytes(v[i*hashGrain:min(len(v), (i+1)*hashGrain)]))
		}
	})
	return maphash.Bytes(seed, unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(parts))), 8*len(parts)))
}

// CachedWeightBytes is the memory the device's weight cache holds.
func (d *Device) CachedWeightBytes() int {
	if d.weights == nil {
		return 0
	}
	d.weights.mu.Lock()
	defer d.weights.mu.Unlock()
	return d.weights.bytes
}

// asBuffer is w as a CPU buffer, or nil.
func asBuffer(w tensor.Buffer) *Buffer {
	cb, _ := w.(*Buffer)
	return cb
}
