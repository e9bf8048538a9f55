package kernels

import (
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/godiffuse/godiffuse/tensor"
)

// Device is the CPU device. Its zero value is not usable; use NewCPU or CPU.
type Device struct {
	threads  int
	level    Level
	tune     Tuning
	weights  *weightCache // prepared weights kept across calls (nil: none)
	recycled *recycler    // arrays of released buffers (tensor.Release)
	repeats  repeats      // timings of repeated work (Repeat)
	single   atomic.Int32 // Repeat calls running on one thread (nThreads)
}

var _ tensor.Device = (*Device)(nil)

// NewCPU returns a CPU device that runs kernels on up to threads goroutines
// (threads ≤ 0 means GOMAXPROCS).
func NewCPU(threads int) *Device { return NewCPULevel(threads, DefaultLevel()) }

// NewCPULevel is NewCPU at a given instruction-set level (capped at MaxLevel).
func NewCPULevel(threads int, level Level) *Device {
	return NewCPUTuned(threads, level, DefaultTuning())
}

// NewCPUTuned is NewCPULevel with its own thresholds for the choice of paths
// (tests force each path with it).
func NewCPUTuned(threads int, level Level, t Tuning) *Device {
	if threads <= 0 {
		threads = runtime.GOMAXPROCS(0)
	}
	return &Device{threads: threads, level: min(level, MaxLevel()), tune: t, weights: newWeightCache(),
		recycled: newRecycler(t.RecycleMinLen, t.PoisonRecycled)}
}

// Level is the instruction-set level the device's kernels use.
func (d *Device) Level() Level { return d.level }

var defaultCPU = sync.OnceValue(func() *Device { return NewCPU(0) })

// CPU returns the shared CPU device using all cores.
func CPU() *Device { return defaultCPU() }

// Name implements tensor.Device.
func (d *Device) Name() string { return fmt.Sprintf("cpu(%d threads, %s)", d.threads, d.level) }

// Threads is the number of goroutines kernels use.
func (d *Device) Threads() int { return d.threads }

// Buffer is CPU memory: a float32, an int64 or a half-precision (bits) slice.
// A forward pass makes one per layer output, so its header is kept to 64
// bytes: the rarer int64 and half-precision slices sit behind a pointer.
type Buffer struct {
	dev  *Device
	F    []float32   // a float32 buffer's values
	wide *wideValues // an int64 or half-precision buffer's values (nil for float32)
	// frozen counts the tensor.Freeze calls not yet thawed; while it is
	// above 0, frozenGen names this freeze (a fresh number each time the
	// count leaves 0), which the weight cache compares with the freeze it
	// checked the contents under.
	frozenGen atomic.Uint64
	frozen    atomic.Int32
	dt        tensor.DType
	released  bool // handed back by tensor.Release: F is gone
}

// wideValues are the values of a buffer that does not hold float32.
type wideValues struct {
	I []int64  // tensor.I64
	H []uint16 // tensor.F16, as IEEE half-precision bits
}

var freezes atomic.Uint64 // the last frozenGen handed out

// Freeze implements tensor.FreezableBuffer.
func (b *Buffer) Freeze() {
	if b.frozen.Add(1) == 1 {
		b.frozenGen.Store(freezes.Add(1))
	}
}

// Thaw implements tensor.FreezableBuffer.
func (b *Buffer) Thaw() {
	if b.frozen.Add(-1) == 0 {
		b.frozenGen.Store(0)
	}
}

// freezeGen is the generation of the buffer's current freeze, 0 when it is
// not frozen.
func (b *Buffer) freezeGen() uint64 {
	if b.frozen.Load() <= 0 {
		return 0
	}
	return b.frozenGen.Load()
}

// Device implements tensor.Buffer.
func (b *Buffer) Device() tensor.Device { return b.dev }

// DType implements tensor.Buffer.
func (b *Buffer) DType() tensor.DType { return b.dt }

// Len implements tensor.Buffer.
func (b *Buffer) Len() int {
	switch b.dt {
	case tensor.I64:
		return len(b.wide.I)
	case tensor.F16:
		return len(b.wide.H)
	}
	return len(b.F)
}

// f32 returns the float32 slice of a buffer of this device (nil for nil).
// Only the ops that take weights accept F16 buffers, through floats: any
// other op given one is a broken invariant of package tensor.
func f32(b tensor.Buffer) []float32 {
	if b == nil {
		return nil
	}
	cb := b.(*Buffer)
	if cb.released {
		panic(&tensor.Error{Op: "use", Msg: "a tensor (or a view of it) was read after tensor.Release handed its buffer back"})
	}
	if cb.dt == tensor.F16 {
		panic("kernels: internal error: an F16 buffer reached an op that reads float32 only")
	}
	return cb.F
}

// w32 is f32 of a buffer an op writes in place: it fails on a frozen one.
func w32(b tensor.Buffer) []float32 {
	if b != nil && b.(*Buffer).frozen.Load() > 0 {
		panic(&tensor.Error{Op: "write", Msg: "a frozen tensor (tensor.Freeze) was written before its thaw"})
	}
	return f32(b)
}

func i64(b tensor.Buffer) []int64 { return b.(*Buffer).wide.I }

// Alloc implements tensor.Device.
func (d *Device) Alloc(dt tensor.DType, n int) (tensor.Buffer, error) {
	if n < 0 {
		return nil, fmt.Errorf("cpu alloc: negative size %d", n)
	}
	b := &Buffer{dev: d, dt: dt}
	switch dt {
	case tensor.F32:
		b.F = d.allocF32(n)
	case tensor.I64:
		b.wide = &wideValues{I: make([]int64, n)}
	case tensor.F16:
		b.wide = &wideValues{H: make([]uint16, n)}
	default:
		return nil, fmt.Errorf("cpu alloc: unsupported dtype %s", dt)
	}
	return b, nil
}

func (d *Device) own(b tensor.Buffer, dt tensor.DType, off, n int) (*Buffer, error) {
	cb, ok := b.(*Buffer)
	if !ok || cb.dev != d {
		return nil, fmt.Errorf("cpu: buffer belongs to another device")
	}
	if cb.dt != dt {
		return nil, fmt.Errorf("cpu: buffer is %s, want %s", cb.dt, dt)
	}
	if off < 0 || off+n > cb.Len() {
		return nil, fmt.Errorf("cpu: range [%d, %d) outside buffer of %d", off, off+n, cb.Len())
	}
	return cb, nil
}

// UploadF32 implements tensor.Device.
func (d *Device) UploadF32(dst tensor.Buffer, off int, src []float32) error {
	b, err := d.own(dst, tensor.F32, off, len(src))
	if err == nil && b.frozen.Load() > 0 {
		err = fmt.Errorf("cpu: upload into a frozen tensor (tensor.Freeze) before its thaw")
	}
	if err == nil {
		copy(b.F[off:], src)
	}
	return err
}

// UploadI64 implements tensor.Device.
func (d *Device) UploadI64(dst tensor.Buffer, off int, src []int64) error {
	b, err := d.own(dst, tensor.I64, off, len(src))
	if err == nil {
		copy(b.wide.I[off:], src)
	}
	return err
}

// DownloadF32 implements tensor.Device (an F16 buffer is widened).
func (d *Device) DownloadF32(dst []float32, src tensor.Buffer, off int) error {
	if cb, ok := src.(*Buffer); ok && cb.dt == tensor.F16 {
		b, err := d.own(src, tensor.F16, off, len(dst))
		if err == nil {
			d.widen(dst, b.wide.H[off:off+len(dst)])
		}
		return err
	}
	b, err := d.own(src, tensor.F32, off, len(dst))
	if err == nil {
		copy(dst, b.F[off:])
	}
	return err
}

// DownloadI64 implements tensor.Device.
func (d *Device) DownloadI64(dst []int64, src tensor.Buffer, off int) error {
	b, err := d.own(src, tensor.I64, off, len(dst))
	if err == nil {
		copy(dst, b.wide.I[off:])
	}
	return err
}

// Synchronize implements tensor.Device; CPU kernels finish before they return.
func (d *Device) Synchronize() error { return nil }

// Fill sets dst[0:n] = v.
func (d *Device) Fill(dst tensor.Buffer, n int, v float32) { fillF32(w32(dst)[:n], v) }

// fillF32 sets every element of x to v: one element, then copies that double
// the filled prefix. For a 784-float row that is 48 ns against 267 ns for a
// loop storing one float at a time, which was 4 % of tiny-mnist's forward
// (the bias rows of its convolutions).
func fillF32(x []float32, v float32) {
	if len(x) == 0 {
		return
	}
	x[0] = v
	for k := 1; k < len(x); k *= 2 {
		copy(x[k:], x[:k])
	}
}

// Copy copies a strided view into another, element by element over shape:
//
//	dst[dOff + Σ i_k·dStride_k] = src[sOff + Σ i_k·sStride_k]
func (d *Device) Copy(dst, src tensor.Strided, shape []int) {
	dx, sx := w32(dst.Buf), f32(src.Buf)
	if len(shape) == 0 {
		dx[dst.Off] = sx[src.Off]
		return
	}
	ds, ss := dst.Strides, src.Strides
	for len(shape) > 1 && shape[0] == 1 { // leading axes of one move nothing
		shape, ds, ss = shape[1:], ds[1:], ss[1:]
	}
	// Parts of the first axis on the threads (rows of the last axis when it is the only one).
	rowLen := 1
	for _, s := range shape[1:] {
		rowLen *= s
	}
	c := stridedCopy{dx: dx, sx: sx, dl: ds[len(ds)-1], sl: ss[len(ss)-1]}
	grain := max(1, elemGrain/max(rowLen, 1))
	if d.onePart(shape[0], grain) {
		forEachRow(shape, [][]int{ds, ss}, rowOffsets{dst.Off, src.Off}, c.row)
		return
	}
	d.copyParts(c, shape, ds, ss, dst.Off, src.Off, grain)
}

// copyParts is Copy's split of the first axis over the threads (a function
// of its own: see binaryParts).
func (d *Device) copyParts(c stridedCopy, shape, ds, ss []int, dOff, sOff, grain int) {
	d.parallelFor(shape[0], grain, func(lo, hi int) {
		part := append([]int{hi - lo}, shape[1:]...)
		forEachRow(part, [][]int{ds, ss}, rowOffsets{dOff + lo*ds[0], sOff + lo*ss[0]}, c.row)
	})
}

// stridedCopy copies the rows of one Copy, of last-axis strides dl and sl.
type stridedCopy struct {
	dx, sx []float32
	dl, sl int
}

func (c *stridedCopy) row(offs rowOffsets, n int) {
	do, so := offs[0], offs[1]
	if c.dl == 1 && c.sl == 1 {
		copy(c.dx[do:do+n], c.sx[so:so+n])
		return
	}
	for i := range n {
		c.dx[do+i*c.dl] = c.sx[so+i*c.sl]
	}
}

// rowOffsets are the offsets of up to three views at the start of a row
// (forEachRow): an array, so that walking rows allocates nothing.
type rowOffsets [3]int

// forEachRow walks every index of shape except the last axis (an odometer)
// and calls fn with each view's offset at the start of that row and the row
// length; strides has one entry per view (at most three), base their
// offsets at index 0. A rank-0 shape is one row of length 1.
func forEachRow(shape []int, strides [][]int, base rowOffsets, fn func(offs rowOffsets, n int)) {
	if len(shape) == 0 {
		fn(base, 1)
		return
	}
	for _, s := range shape {
		if s == 0 {
			return
		}
	}
	r := len(shape) - 1
	idx := make([]int, r)
	offs := base
	for {
		fn(offs, shape[r])
		k := r - 1
		for ; k >= 0; k-- {
			idx[k]++
			for v := range strides {
				offs[v] += strides[v][k]
			}
			if idx[k] < shape[k] {
				break
			}
			for v := range strides {
				offs[v] -= strides[v][k] * shape[k]
			}
			idx[k] = 0
		}
		if k < 0 {
			return
		}
	}
}

// reductionSlots is how many partial sums a reduction over images (or
// Winograd tile chunks) keeps, each a length-k GEMM: a number fixed by the
// shape, never by the thread count, so that what is summed in which order
// is the same on any number of cores and training is bit-exact everywhere.
// Between 2 and 8: more slots mean more parallel work but more accumulators
// to clear and add, which costs more than it gains when k is short
// (measured on the U-Net layers: 8 slots halved the weight-gradient speed
// of the 4×4 and 8×8 layers, 2 slots matched the per-thread sums).
func reductionSlots(k int) int { return min(max(k/64, 2), 8) }

// forSlots runs fn(wk, slot, item, threads) for items 0..n-1, item i in slot
// i mod slots; a slot's items run in increasing order on one goroutine, and
// slots are spread over at most threads goroutines (wk numbers them, for
// per-goroutine scratch: fewer than min(slots, threads); threads is what
// each may use inside fn). The grouping depends on n and slots only, so
// per-slot sums added in slot order come out the same on any number of
// threads.
func forSlots(threads, n, slots int, fn func(wk, slot, item, threads int)) int {
	slots = max(1, min(slots, n))
	workers := max(1, min(threads, slots))
	threads = max(1, threads/workers)
	runParts(workers, func(wk int) {
		for slot := wk; slot < slots; slot += workers {
			for i := slot; i < n; i += slots {
				fn(wk, slot, i, threads)
			}
		}
	})
	return workers
}

// parallelFor splits [0, n) into at most threads contiguous chunks of at least
// grain items and runs fn on each concurrently.
func (d *Device) parallelFor(n, grain int, fn func(lo, hi int)) { inParts(d.nThreads(), n, grain, fn) }

// onePart reports whether parallelFor(n, grain, …) would run on the calling
// goroutine alone: the hot ops test it first and call their body directly,
// since a closure handed to parallelFor is a heap object, made at every
// call (a batch-1 forward makes hundreds).
func (d *Device) onePart(n, grain int) bool { return min(d.nThreads(), max(1, n/max(grain, 1))) <= 1 }

// inParts is parallelFor on a given number of threads (those a caller's
// share of the device leaves it).
func inParts(threads, n, grain int, fn func(lo, hi int)) {
	if n <= 0 {
		return
	}
	parts := min(threads, max(1, n/max(grain, 1)))
	if parts <= 1 {
		fn(0, n)
		return
	}
	runParts(parts, func(p int) { fn(p*n/parts, (p+1)*n/parts) })
}
