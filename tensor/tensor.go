package tensor

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
)

// Tensor is an N-dimensional view of a device buffer, with optional autograd
// state. The zero value is not usable; make tensors with the constructors.
type Tensor struct {
	dev     Device
	buf     Buffer
	shape   []int
	strides []int
	off     int
	dtype   DType // beside the flags below: a header of 112 bytes, not 128

	requiresGrad bool
	paused       atomic.Int32 // PauseGrad depth: while > 0 a parameter records nothing
	grad         *Tensor
	node         *node // the op that produced this tensor, when recorded
}

// ---------------------------------------------------------------------------
// Constructors
// ---------------------------------------------------------------------------

func numel(shape []int) int {
	n := 1
	for _, s := range shape {
		n *= s
	}
	return n
}

// denseDims returns a copy of shape and its dense strides, both cut from
// one array (a tensor header's two slices, one allocation).
func denseDims(shape []int) (dims, strides []int) {
	dims, strides = newDims(shape)
	fillDenseStrides(strides, dims)
	return dims, strides
}

// newDims returns a copy of shape and room for its strides, cut from one array.
func newDims(shape []int) (dims, strides []int) {
	r := len(shape)
	both := make([]int, 2*r)
	dims, strides = both[:r:r], both[r:]
	copy(dims, shape)
	return dims, strides
}

func denseStrides(shape []int) []int {
	st := make([]int, len(shape))
	fillDenseStrides(st, shape)
	return st
}

// fillDenseStrides sets strides to the row-major strides of shape.
func fillDenseStrides(strides, shape []int) {
	s := 1
	for i := len(shape) - 1; i >= 0; i-- {
		strides[i] = s
		s *= shape[i]
	}
}

func checkShape(op string, shape []int) {
	for _, s := range shape {
		if s < 0 {
			// A copy into the message: shape itself then stays where the
			// caller made it (a variadic shape on its stack, not a heap
			// object per op).
			fail(op, "negative dimension in shape %v", slices.Clone(shape))
		}
	}
}

// Empty allocates an uninitialized-looking (in fact zero-filled) tensor.
func Empty(dev Device, dt DType, shape ...int) *Tensor {
	checkShape("alloc", shape)
	n := numel(shape)
	buf, err := dev.Alloc(dt, n)
	if err != nil {
		fail("alloc", "%d elements of %s on %s: %v", n, dt, dev.Name(), err)
	}
	dims, strides := denseDims(shape)
	return &Tensor{dev: dev, buf: buf, dtype: dt, shape: dims, strides: strides}
}

// Release hands the buffers of tensors the caller is done with back to
// their device, whose next allocation of the same length reuses them: in
// inference a module releases the intermediates it made (a normalization's
// output once the convolution after it has read it), which spares the
// allocator's clearing on one goroutine and the collector's work. The
// caller promises that neither t nor any view of it is read again; a view
// that is, fails. Tensors that carry gradient state (parameters, anything
// recorded for backward), views into part of a buffer, nil tensors and
// devices that do not recycle are left alone, so a training step's graph
// is never touched — all but a tensor without gradient that a recorded op
// has read (a model's input, which a convolution's backward reads again):
// the caller must not release that while the graph lives.
func Release(ts ...*Tensor) {
	for _, t := range ts {
		if t == nil || t.requiresGrad || t.node != nil || t.off != 0 || t.dtype != F32 || t.Numel() != t.buf.Len() {
			continue
		}
		if r, ok := t.dev.(Recycler); ok {
			r.Recycle(t.buf)
		}
	}
}

// Freeze promises that the contents of ts (a model's weights while it
// samples) do not change until thaw is called. A device that prepares forms
// of weights across calls (the CPU's packed and Winograd-transformed
// weights) then uses them again without hashing the weights at every call,
// which was 7 % of a batch-1 forward. Writing a frozen tensor in place
// fails until thaw: an op (Copy into it, an optimizer step, an in-place
// add) panics with an *Error, an upload returns an error. Freezes nest: a
// tensor frozen twice stays frozen until both thaws ran; calling one thaw
// again does nothing.
func Freeze(ts ...*Tensor) (thaw func()) {
	var bufs []FreezableBuffer
	for _, t := range ts {
		if t == nil {
			continue
		}
		if b, ok := t.buf.(FreezableBuffer); ok {
			b.Freeze()
			bufs = append(bufs, b)
		}
	}
	var once sync.Once
	return func() {
		once.Do(func() {
			for _, b := range bufs {
				b.Thaw()
			}
		})
	}
}

// Aliases reports whether t and u view the same buffer (one may be a view
// of the other), which Release's caller checks before handing back a
// tensor that might be a view of one it does not own.
func (t *Tensor) Aliases(u *Tensor) bool { return t.buf == u.buf }

// emptyOut allocates the float32 output of an op whose kernel writes every
// element: from a device that can (DirtyAllocator), a recycled buffer that
// is not cleared first; otherwise as Empty. Each op that uses it has a
// kernel test that fills the output with NaN first (kernels' withGuard).
func emptyOut(dev Device, shape ...int) *Tensor {
	d, ok := dev.(DirtyAllocator)
	if !ok {
		return Empty(dev, F32, shape...)
	}
	checkShape("alloc", shape)
	dims, strides := denseDims(shape)
	return &Tensor{dev: dev, buf: d.AllocDirty(numel(shape)), dtype: F32, shape: dims, strides: strides}
}

// outBuffer is emptyOut's buffer alone, for values a kernel writes whole
// and only a kernel reads back (no tensor around it).
func outBuffer(dev Device, n int) Buffer {
	if d, ok := dev.(DirtyAllocator); ok {
		return d.AllocDirty(n)
	}
	buf, err := dev.Alloc(F32, n)
	if err != nil {
		fail("alloc", "%d elements of %s on %s: %v", n, F32, dev.Name(), err)
	}
	return buf
}

// Zeros returns a float32 tensor of zeros.
func Zeros(dev Device, shape ...int) *Tensor { return Empty(dev, F32, shape...) }

// Full returns a float32 tensor filled with v.
func Full(dev Device, v float32, shape ...int) *Tensor {
	t := Empty(dev, F32, shape...)
	if v != 0 {
		dev.Fill(t.buf, t.Numel(), v)
	}
	return t
}

// Uniform returns a float32 tensor of draws from U(-bound, bound), in
// order from r: PyTorch's default initialisation of Linear and Conv
// weights and biases is bound = 1/√fan_in.
func Uniform(dev Device, r *rand.Rand, bound float64, shape ...int) *Tensor {
	checkShape("uniform", shape)
	v := make([]float32, numel(shape))
	for i := range v {
		v[i] = float32((2*r.Float64() - 1) * bound)
	}
	return FromFloat32(dev, v, shape...)
}

// FromFloat32 uploads data as a tensor of the given shape.
func FromFloat32(dev Device, data []float32, shape ...int) *Tensor {
	if numel(shape) != len(data) {
		fail("from_float32", "%d values do not fill shape %v (%d)", len(data), shape, numel(shape))
	}
	t := Empty(dev, F32, shape...)
	if err := dev.UploadF32(t.buf, 0, data); err != nil {
		fail("from_float32", "upload: %v", err)
	}
	return t
}

// FromInt64 uploads data as an int64 tensor of the given shape.
func FromInt64(dev Device, data []int64, shape ...int) *Tensor {
	if numel(shape) != len(data) {
		fail("from_int64", "%d values do not fill shape %v (%d)", len(data), shape, numel(shape))
	}
	t := Empty(dev, I64, shape...)
	if err := dev.UploadI64(t.buf, 0, data); err != nil {
		fail("from_int64", "upload: %v", err)
	}
	return t
}

// Scalar returns a 0-d float32 tensor.
func Scalar(dev Device, v float32) *Tensor { return FromFloat32(dev, []float32{v}) }

// ---------------------------------------------------------------------------
// Accessors
// ---------------------------------------------------------------------------

// Shape returns the shape (do not modify it).
func (t *Tensor) Shape() []int { return t.shape }

// Dim returns the size of axis i; negative i counts from the end.
func (t *Tensor) Dim(i int) int { return t.shape[t.axis("dim", i)] }

// Rank is the number of axes.
func (t *Tensor) Rank() int { return len(t.shape) }

// Numel is the number of elements.
func (t *Tensor) Numel() int { return numel(t.shape) }

// DType is the element type.
func (t *Tensor) DType() DType { return t.dtype }

// Device is the device that holds the data.
func (t *Tensor) Device() Device { return t.dev }

// Buffer returns the underlying buffer. It is dense only when IsDense.
func (t *Tensor) Buffer() Buffer { return t.buf }

func (t *Tensor) String() string {
	return fmt.Sprintf("Tensor(%v, %s, %s)", t.shape, t.dtype, t.dev.Name())
}

func (t *Tensor) axis(op string, i int) int {
	if i < 0 {
		i += len(t.shape)
	}
	if i < 0 || i >= len(t.shape) {
		fail(op, "axis %d out of range for shape %v", i, t.shape)
	}
	return i
}

// IsDense reports whether the tensor is row-major contiguous from the start
// of its buffer, so its buffer can be handed to ops directly.
func (t *Tensor) IsDense() bool {
	if t.off != 0 {
		return false
	}
	s := 1
	for i := len(t.shape) - 1; i >= 0; i-- {
		if t.shape[i] != 1 && t.strides[i] != s {
			return false
		}
		s *= t.shape[i]
	}
	return true
}

func (t *Tensor) strided() Strided { return Strided{Buf: t.buf, Off: t.off, Strides: t.strides} }

// Float32s downloads the tensor's values in row-major order.
func (t *Tensor) Float32s() ([]float32, error) {
	if t.dtype == F16 && t.off == 0 && t.IsDense() { // half-precision weights, widened by the device
		out := make([]float32, t.Numel())
		return out, t.dev.DownloadF32(out, t.buf, 0)
	}
	if t.dtype != F32 {
		return nil, &Error{Op: "float32s", Msg: "tensor is " + t.dtype.String()}
	}
	var out []float32
	var err error
	if e := Catch(func() {
		c := t.Contiguous()
		out = make([]float32, c.Numel())
		err = c.dev.DownloadF32(out, c.buf, 0)
	}); e != nil {
		return nil, e
	}
	return out, err
}

// Int64s downloads an int64 tensor's values in row-major order.
func (t *Tensor) Int64s() ([]int64, error) {
	if t.dtype != I64 || !t.IsDense() {
		return nil, &Error{Op: "int64s", Msg: "want a dense int64 tensor, have " + t.String()}
	}
	out := make([]int64, t.Numel())
	return out, t.dev.DownloadI64(out, t.buf, 0)
}

// Item downloads the single value of a one-element tensor.
func (t *Tensor) Item() (float32, error) {
	if t.Numel() != 1 {
		return 0, &Error{Op: "item", Msg: fmt.Sprintf("tensor has %d elements, want 1", t.Numel())}
	}
	v, err := t.Float32s()
	if err != nil {
		return 0, err
	}
	return v[0], nil
}

// MustFloat32s is Float32s for tests and examples: it panics on error.
func (t *Tensor) MustFloat32s() []float32 {
	v, err := t.Float32s()
	if err != nil {
		panic(err)
	}
	return v
}

// ---------------------------------------------------------------------------
// Views. Each records its backward (the inverse view of the gradient).
// ---------------------------------------------------------------------------

func (t *Tensor) view(shape, strides []int, off int) *Tensor {
	return &Tensor{dev: t.dev, buf: t.buf, dtype: t.dtype, shape: shape, strides: strides, off: off}
}

// Contiguous returns t itself when it is dense, else a dense copy.
func (t *Tensor) Contiguous() *Tensor {
	if t.IsDense() {
		return t
	}
	if t.dtype != F32 {
		fail("contiguous", "strided int64 tensors are not supported")
	}
	out := emptyOut(t.dev, t.shape...)
	copyView(t.dev, out.strided(), t.strided(), t.shape)
	if t.needsGrad() {
		out.record("contiguous", func(g *Tensor) { t.accumulate(g) }, t)
	}
	return out
}

// Reshape returns a tensor with the same elements in a new shape; one
// dimension may be -1. It is a view when t is dense.
func (t *Tensor) Reshape(shape ...int) *Tensor {
	// A copy of shape (the caller's variadic array stays on its stack);
	// the strides are set once -1 is resolved.
	dims, strides := newDims(shape)
	n, neg := 1, -1
	for i, s := range dims {
		if s == -1 {
			if neg >= 0 {
				fail("reshape", "more than one -1 in %v", dims)
			}
			neg = i
			continue
		}
		if s < 0 {
			fail("reshape", "negative dimension in %v", dims)
		}
		n *= s
	}
	if neg >= 0 {
		if n == 0 || t.Numel()%n != 0 {
			fail("reshape", "cannot infer -1 in %v from %d elements", dims, t.Numel())
		}
		dims[neg] = t.Numel() / n
		n *= dims[neg]
	}
	if n != t.Numel() {
		fail("reshape", "shape %v has %d elements, tensor %v has %d", dims, n, t.shape, t.Numel())
	}
	fillDenseStrides(strides, dims)
	src := t.Contiguous()
	out := src.view(dims, strides, 0)
	if src.needsGrad() {
		old := slices.Clone(src.shape)
		out.record("reshape", func(g *Tensor) { src.accumulate(g.Reshape(old...)) }, src)
	}
	return out
}

// Permute reorders the axes: axis i of the result is axis perm[i] of t.
func (t *Tensor) Permute(perm ...int) *Tensor {
	if len(perm) != len(t.shape) {
		fail("permute", "permutation %v for rank %d", perm, len(t.shape))
	}
	seen := make([]bool, len(perm))
	shape, strides := make([]int, len(perm)), make([]int, len(perm))
	inv := make([]int, len(perm))
	for i, p := range perm {
		if p < 0 || p >= len(perm) || seen[p] {
			fail("permute", "%v is not a permutation of %d axes", perm, len(perm))
		}
		seen[p] = true
		shape[i], strides[i] = t.shape[p], t.strides[p]
		inv[p] = i
	}
	out := t.view(shape, strides, t.off)
	if t.needsGrad() {
		out.record("permute", func(g *Tensor) { t.accumulate(g.Permute(inv...)) }, t)
	}
	return out
}

// Transpose swaps axes a and b.
func (t *Tensor) Transpose(a, b int) *Tensor {
	a, b = t.axis("transpose", a), t.axis("transpose", b)
	perm := make([]int, len(t.shape))
	for i := range perm {
		perm[i] = i
	}
	perm[a], perm[b] = b, a
	return t.Permute(perm...)
}

// Narrow returns the view t[..., start:start+length, ...] along axis.
func (t *Tensor) Narrow(axis, start, length int) *Tensor {
	axis = t.axis("narrow", axis)
	if start < 0 || length < 0 || start+length > t.shape[axis] {
		fail("narrow", "range [%d, %d) outside axis %d of size %d", start, start+length, axis, t.shape[axis])
	}
	shape := slices.Clone(t.shape)
	shape[axis] = length
	out := t.view(shape, t.strides, t.off+start*t.strides[axis]) // strides are never written after a tensor is made: shared
	if t.needsGrad() {
		full := slices.Clone(t.shape)
		out.record("narrow", func(g *Tensor) {
			z := Zeros(g.dev, full...)
			copyView(g.dev, z.Narrow(axis, start, length).strided(), g.strided(), g.shape)
			t.accumulate(z)
		}, t)
	}
	return out
}

// Detach returns a view of the same data that does not require a gradient
// and is cut from the graph.
func (t *Tensor) Detach() *Tensor { return t.view(t.shape, t.strides, t.off) }

// Clone returns a dense copy that is cut from the graph.
func (t *Tensor) Clone() *Tensor {
	if t.dtype == I64 {
		v, err := t.Int64s()
		if err != nil {
			fail("clone", "%v", err)
		}
		return FromInt64(t.dev, v, t.shape...)
	}
	out := Empty(t.dev, F32, t.shape...)
	copyView(t.dev, out.strided(), t.strided(), t.shape)
	return out
}

// CopyFrom overwrites t's elements with src's (same shape, both float32,
// t dense). It is not recorded: use it for parameter updates.
func (t *Tensor) CopyFrom(src *Tensor) {
	if !slices.Equal(t.shape, src.shape) || t.dtype != F32 || src.dtype != F32 {
		fail("copy_from", "shapes %v and %v (want equal float32)", t.shape, src.shape)
	}
	sameDevice("copy_from", t, src)
	copyView(t.dev, t.strided(), src.strided(), t.shape)
}

func sameDevice(op string, ts ...*Tensor) {
	for _, x := range ts[1:] {
		if x != nil && x.dev != ts[0].dev {
			fail(op, "tensors on different devices: %s and %s", ts[0].dev.Name(), x.dev.Name())
		}
	}
}

// wantWeight accepts a float32 weight, or a float16 one that takes no gradient.
func wantWeight(op string, w *Tensor) {
	switch {
	case w.dtype == F32:
	case w.dtype == F16 && !w.needsGrad():
	case w.dtype == F16:
		fail(op, "a float16 weight cannot take a gradient (half-precision weights are for inference): %s", w)
	default:
		fail(op, "want a float32 or float16 weight, have %s", w)
	}
}

// Bind replaces the storage of t, a dense tensor that is not a view, with
// b: the same number of elements on the same device (or any device when t
// is ShapesOnly), in b's dtype (F16 lets a loader keep a weight in half
// precision). It records nothing.
func (t *Tensor) Bind(b Buffer) error {
	switch {
	case b.Device() != t.dev && !t.IsShapesOnly():
		return &Error{Op: "bind", Msg: fmt.Sprintf("buffer on %s for a tensor on %s", b.Device().Name(), t.dev.Name())}
	case b.Len() != t.Numel():
		return &Error{Op: "bind", Msg: fmt.Sprintf("buffer of %d elements for a tensor of %d", b.Len(), t.Numel())}
	case t.off != 0 || !t.IsDense():
		return &Error{Op: "bind", Msg: "the tensor is a view"}
	}
	t.buf, t.dtype, t.dev = b, b.DType(), b.Device()
	return nil
}

func wantF32(op string, ts ...*Tensor) {
	for _, x := range ts {
		if x != nil && x.dtype != F32 {
			fail(op, "want float32 tensors, have %s", x)
		}
	}
}
