//go:build !windows

// Package vulkan is the GPU backend: a tensor.Device that runs the ops as
// Vulkan compute shaders, loading libvulkan.so.1 at run time through purego
// (no cgo; CGO_ENABLED=0 builds keep working and a machine without Vulkan
// simply has no such device).
//
// Work is recorded into one command buffer and submitted only when the host
// needs a result (a download or Synchronize) or when the descriptor pool of a
// submission runs out; every op has a shader. A failure while recording is
// kept and returned by the next sync point, as tensor.Device asks. Device
// memory is pooled by size class and recycled when Go drops a buffer.
package vulkan

import (
	"encoding/binary"
	"fmt"
	"math"
	"os"
	"runtime"
	"sync"

	"github.com/godiffuse/godiffuse/kernels/vulkan/shaders"
	"github.com/godiffuse/godiffuse/tensor"
)

// Device is one Vulkan device.
type Device struct {
	mu       sync.Mutex
	c        *context
	s        *stream
	pipes    map[string]*pipeline
	staging  *vkBuf
	stageOff uint64
	free     map[uint64][]*vkBuf
	err      error   // the first failure while recording, returned by the next sync point
	note     string  // what SelectMatMul chose and why (MatMulNote)
	dummy    *Buffer // bound where an optional buffer (bias, gamma) is absent
	sinceGC  uint64  // bytes of device memory created since the last nudge to Go's GC
	cache    uintptr // VkPipelineCache, saved at Close
	fp16     bool    // GEMMs through the cooperative-matrix shader (fp16 inputs, fp32 accumulation)
	newPipes int     // pipelines created since the cache was last saved
	closed   bool
}

var _ tensor.Device = (*Device)(nil)

// Buffer is device memory holding n elements of dt.
type Buffer struct {
	d  *Device
	b  *vkBuf
	dt tensor.DType
	n  int
}

// Device implements tensor.Buffer.
func (b *Buffer) Device() tensor.Device { return b.d }

// DType implements tensor.Buffer.
func (b *Buffer) DType() tensor.DType { return b.dt }

// Len implements tensor.Buffer.
func (b *Buffer) Len() int { return b.n }

const stagingSize = 16 << 20

// New opens Vulkan device index (-1: the first discrete GPU, else the first
// integrated one, else the first device).
func New(index int) (*Device, error) {
	c, err := newContext(index)
	if err != nil {
		return nil, err
	}
	s, err := newStream(c)
	if err != nil {
		c.destroy()
		return nil, err
	}
	d := &Device{c: c, s: s, pipes: map[string]*pipeline{},
		free: map[uint64][]*vkBuf{}, cache: c.openPipelineCache()}
	if d.staging, err = c.newBuffer(stagingSize, memHostVisible|memHostCoherent); err != nil {
		d.Close()
		return nil, err
	}
	dummy, err := d.Alloc(tensor.F32, 1)
	if err != nil {
		d.Close()
		return nil, err
	}
	d.dummy = dummy.(*Buffer)
	if err := d.SelectMatMul(os.Getenv("GODIFFUSE_VULKAN_MATMUL")); err != nil {
		d.Close()
		return nil, err
	}
	return d, nil
}

// SelectMatMul chooses the GEMM path as GODIFFUSE_VULKAN_MATMUL does at
// start-up: "fp32" keeps every GEMM in fp32, "fp16" demands the
// cooperative-matrix path, and "" or "auto" takes it where the device has
// it and a self-check passes (see CheckFP16).
func (d *Device) SelectMatMul(mode string) error {
	switch mode {
	case "fp32":
		return nil
	case "fp16":
		return d.SetMatMulFP16(true)
	case "", "auto":
	default:
		return fmt.Errorf("GODIFFUSE_VULKAN_MATMUL=%q: want auto, fp32 or fp16", mode)
	}
	if d.c.coopShader == "" {
		return nil
	}
	e, err := d.CheckFP16()
	if err == nil && !(e <= FP16Tolerance) {
		err = fmt.Errorf("normalized error %.3g against fp32, bound %.0e", e, FP16Tolerance)
	}
	if err != nil {
		d.note = fmt.Sprintf("the cooperative-matrix GEMM failed its self-check (%v); GEMMs stay fp32", err)
		return nil
	}
	d.note = fmt.Sprintf("GEMMs use cooperative matrices (fp16 inputs, fp32 accumulation, self-check error %.2g; GODIFFUSE_VULKAN_MATMUL=fp32 keeps them fp32)", e)
	return d.SetMatMulFP16(true)
}

// MatMulNote says which GEMM path start-up chose and why ("" when there was
// no choice to make); the library does not log, its callers may.
func (d *Device) MatMulNote() string { return d.note }

// FP16Tolerance bounds max|fp16 − fp32| / max|fp32| of the self-check:
// inputs rounded to fp16 (11-bit significands) give about 1e-3.
const FP16Tolerance = 5e-3

// CheckFP16 runs one product whose sizes are off the 16×16 tiles (edges)
// and span several k-blocks through the cooperative-matrix shader and the
// fp32 one, and returns the normalized difference. A driver or shader fault
// shows up here, at start-up, instead of in a user's results.
func (d *Device) CheckFP16() (float64, error) {
	const m, n, k = 200, 136, 264
	seed := uint32(1)
	rnd := func(size int) []float32 {
		v := make([]float32, size)
		for i := range v {
			seed = seed*1664525 + 1013904223
			v[i] = float32(seed>>8)/(1<<24)*2 - 1
		}
		return v
	}
	av, bv := rnd(m*k), rnd(k*n)
	p := tensor.MatMulParams{Batch: 1, M: m, N: n, K: k, Alpha: 1}
	if d.c.coopShader == "" {
		return 0, fmt.Errorf("vulkan: %s has no usable cooperative-matrix support", d.c.phys.Name)
	}
	defer d.SetMatMulFP16(d.MatMulFP16()) // the caller's choice afterwards
	var out [2][]float32
	var err error
	if e := tensor.Catch(func() {
		a, b := tensor.FromFloat32(d, av, m, k), tensor.FromFloat32(d, bv, k, n)
		for i, fp16 := range []bool{false, true} {
			d.SetMatMulFP16(fp16)
			c := tensor.Zeros(d, m, n)
			d.MatMul(c.Buffer(), a.Buffer(), b.Buffer(), p)
			if out[i], err = c.Float32s(); err != nil {
				return
			}
		}
	}); e != nil {
		return 0, e
	}
	if err != nil {
		return 0, err
	}
	var diff, ref float64
	for i, want := range out[0] {
		diff = max(diff, math.Abs(float64(out[1][i]-want)))
		ref = max(ref, math.Abs(float64(want)))
	}
	if ref == 0 || math.IsNaN(diff) {
		return math.Inf(1), nil
	}
	return diff / ref, nil
}

// SetMatMulFP16 routes GEMMs (not the convolutions) through the
// cooperative-matrix shader: inputs rounded to fp16, products accumulated in
// fp32, about 1e-3 relative error. It needs shaderFloat16, the Vulkan memory
// model and either VK_KHR_cooperative_matrix with a 16×16×16 or 8×8×8
// fp16·fp16+fp32 subgroup shape, or VK_NV_cooperative_matrix with 16×16×16
// and subgroups of 32.
func (d *Device) SetMatMulFP16(on bool) error {
	if on && d.c.coopShader == "" {
		return fmt.Errorf("vulkan: %s has no usable cooperative-matrix support (VK_KHR_cooperative_matrix 16×16×16 or 8×8×8 fp16·fp16+fp32, or VK_NV_cooperative_matrix 16×16×16 with subgroups of 32; shaderFloat16; vulkanMemoryModel)", d.c.phys.Name)
	}
	d.mu.Lock()
	d.fp16 = on
	d.mu.Unlock()
	return nil
}

// MatMulFP16 reports whether GEMMs run on the cooperative-matrix path.
func (d *Device) MatMulFP16() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.fp16
}

// CooperativeMatrix reports whether SetMatMulFP16(true) would work.
func (d *Device) CooperativeMatrix() bool { return d.c.coopShader != "" }

// CooperativeMatrixShader names the shader SetMatMulFP16(true) runs:
// gemm_coop_khr16 or gemm_coop_khr8 (VK_KHR_cooperative_matrix, by fragment
// edge), gemm_coop (VK_NV_cooperative_matrix), or "" for none.
func (d *Device) CooperativeMatrixShader() string { return d.c.coopShader }

// Info describes the physical device.
func (d *Device) Info() PhysicalDevice { return d.c.phys }

// Name implements tensor.Device.
func (d *Device) Name() string {
	return fmt.Sprintf("vulkan:%d(%s, %s)", d.c.phys.Index, d.c.phys.Name, d.c.phys.Type)
}

// Close waits for the device and frees everything. Buffers must not be used
// afterwards.
func (d *Device) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return nil
	}
	d.closed = true
	err := d.flushLocked()
	if d.cache != 0 {
		callVoid(d.c.p.destroyPipelineCache, d.c.device, d.cache, 0)
	}
	for _, p := range d.pipes {
		d.c.destroyPipeline(p)
	}
	for _, list := range d.free {
		for _, b := range list {
			d.c.freeBuffer(b)
		}
	}
	if d.staging != nil {
		d.c.freeBuffer(d.staging)
	}
	d.s.destroy()
	d.c.destroy()
	return err
}

// record keeps the first failure of an op being recorded (the seam's
// contract: ops return nothing; the next sync point returns the error).
func (d *Device) record(op string, err error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.recordLocked(op, err)
}

func (d *Device) recordLocked(op string, err error) {
	if d.err == nil {
		d.err = &tensor.Error{Op: op, Msg: err.Error()}
	}
}

func sizeClass(bytes uint64) uint64 {
	if bytes <= 1<<20 {
		c := uint64(256)
		for c < bytes {
			c <<= 1
		}
		return c
	}
	return (bytes + 1<<20 - 1) &^ (1<<20 - 1)
}

// gcEvery is how many bytes of new device memory may be created before Go's
// collector is asked to run: device buffers are freed when their tensors
// are collected, but they weigh almost nothing on the Go heap, so without
// this nudge a training loop would exhaust the GPU long before Go collects.
const gcEvery = 256 << 20

// Alloc implements tensor.Device. The memory is zeroed.
func (d *Device) Alloc(dt tensor.DType, n int) (tensor.Buffer, error) {
	if n < 0 {
		return nil, fmt.Errorf("vulkan alloc: negative size %d", n)
	}
	if dt != tensor.F32 && dt != tensor.I64 {
		return nil, fmt.Errorf("vulkan alloc: unsupported dtype %s", dt)
	}
	class := sizeClass(uint64(n) * uint64(dt.Size()))
	vb, err := d.take(class)
	if err != nil {
		// Out of memory: collect what Go has dropped, give the cleanups a
		// moment to return it, and try once more.
		runtime.GC()
		runtime.Gosched()
		if vb, err = d.take(class); err != nil {
			return nil, err
		}
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.s.fill(vb.buf, 0, class, 0); err != nil {
		return nil, err
	}
	b := &Buffer{d: d, b: vb, dt: dt, n: n}
	runtime.AddCleanup(b, d.release, vb)
	return b, nil
}

// take returns a pooled buffer of the size class or creates one.
func (d *Device) take(class uint64) (*vkBuf, error) {
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return nil, fmt.Errorf("vulkan alloc: the device is closed")
	}
	if list := d.free[class]; len(list) > 0 {
		vb := list[len(list)-1]
		d.free[class] = list[:len(list)-1]
		d.mu.Unlock()
		return vb, nil
	}
	vb, err := d.c.newBuffer(class, memDeviceLocal)
	collect := false
	if err == nil {
		d.sinceGC += class
		if d.sinceGC > gcEvery {
			d.sinceGC, collect = 0, true
		}
	}
	d.mu.Unlock()
	if collect {
		runtime.GC() // the buffers of dropped tensors come back through release
	}
	return vb, err
}

// release returns a dropped buffer's memory to the pool. Work recorded
// before it still runs first: the stream is ordered with full barriers.
func (d *Device) release(vb *vkBuf) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return
	}
	d.free[vb.size] = append(d.free[vb.size], vb)
}

func (d *Device) own(op string, b tensor.Buffer, dt tensor.DType, off, n int) *Buffer {
	vb, ok := b.(*Buffer)
	if !ok || vb.d != d {
		panic(&tensor.Error{Op: op, Msg: "buffer belongs to another device"})
	}
	if vb.dt != dt {
		panic(&tensor.Error{Op: op, Msg: fmt.Sprintf("buffer is %s, want %s", vb.dt, dt)})
	}
	if off < 0 || off+n > vb.n {
		panic(&tensor.Error{Op: op, Msg: fmt.Sprintf("range [%d, %d) outside a buffer of %d", off, off+n, vb.n)})
	}
	return vb
}

func (d *Device) flushLocked() error {
	err := d.s.flush()
	if d.err != nil {
		err, d.err = d.err, nil
	}
	d.stageOff = 0
	if d.newPipes > 0 { // only in the first steps of a process: save what the driver compiled
		d.newPipes = 0
		d.c.savePipelineCache(d.cache)
	}
	return err
}

// stage reserves n bytes of the staging buffer for this submission, flushing
// (or growing the buffer) when it is full.
func (d *Device) stage(n uint64) (uint64, error) {
	n = (n + 15) &^ 15
	if d.stageOff+n > d.staging.size {
		if err := d.flushLocked(); err != nil {
			return 0, err
		}
		if n > d.staging.size {
			d.c.freeBuffer(d.staging)
			var err error
			if d.staging, err = d.c.newBuffer(sizeClass(n), memHostVisible|memHostCoherent); err != nil {
				return 0, err
			}
		}
	}
	off := d.stageOff
	d.stageOff += n
	return off, nil
}

// transfer moves n elements at off between b and the host through the
// staging buffer: an upload writes the staging bytes and records a copy in
// the stream (no submission); a download records the copy back, submits,
// waits and hands fn the bytes.
func (d *Device) transfer(upload bool, b tensor.Buffer, dt tensor.DType, off, n int, fn func([]byte)) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	vb, ok := b.(*Buffer)
	if !ok || vb.d != d || vb.dt != dt || off < 0 || off+n > vb.n {
		return fmt.Errorf("vulkan transfer: the buffer does not hold %d %s elements at %d", n, dt, off)
	}
	size := uint64(n * dt.Size())
	so, err := d.stage(size)
	if err != nil {
		return err
	}
	bo := uint64(off * dt.Size())
	if upload {
		fn(d.staging.mapped[so : so+size])
		return d.s.copyBuffer(vb.b.buf, d.staging.buf, bo, so, size)
	}
	if err := d.s.copyBuffer(d.staging.buf, vb.b.buf, so, bo, size); err != nil {
		return err
	}
	if err := d.flushLocked(); err != nil {
		return err
	}
	fn(d.staging.mapped[so : so+size])
	return nil
}

// UploadF32 implements tensor.Device.
func (d *Device) UploadF32(dst tensor.Buffer, off int, src []float32) error {
	return d.transfer(true, dst, tensor.F32, off, len(src), func(b []byte) {
		for i, v := range src {
			binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(v))
		}
	})
}

// UploadI64 implements tensor.Device.
func (d *Device) UploadI64(dst tensor.Buffer, off int, src []int64) error {
	return d.transfer(true, dst, tensor.I64, off, len(src), func(b []byte) {
		for i, v := range src {
			binary.LittleEndian.PutUint64(b[8*i:], uint64(v))
		}
	})
}

// DownloadF32 implements tensor.Device.
func (d *Device) DownloadF32(dst []float32, src tensor.Buffer, off int) error {
	return d.transfer(false, src, tensor.F32, off, len(dst), func(b []byte) {
		for i := range dst {
			dst[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
		}
	})
}

// DownloadI64 implements tensor.Device.
func (d *Device) DownloadI64(dst []int64, src tensor.Buffer, off int) error {
	return d.transfer(false, src, tensor.I64, off, len(dst), func(b []byte) {
		for i := range dst {
			dst[i] = int64(binary.LittleEndian.Uint64(b[8*i:]))
		}
	})
}

// Synchronize implements tensor.Device: it submits what is recorded and waits.
func (d *Device) Synchronize() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.flushLocked()
}

func (d *Device) pipeline(name string, nbuf int) (*pipeline, error) {
	if p, ok := d.pipes[name]; ok {
		return p, nil
	}
	spv, err := shaders.SPIRV(name)
	if err != nil {
		return nil, err
	}
	var spec []uint32
	if name == d.c.coopShader {
		spec = d.c.coopSpec
	}
	p, err := d.c.newPipeline(name, spv, nbuf, d.cache, spec)
	if err != nil {
		return nil, err
	}
	d.pipes[name] = p
	d.newPipes++
	return p, nil
}

// grid1 spreads n threads over workgroups of 256 in x (and y beyond the
// x limit), as the elementwise shaders expect.
func (d *Device) grid1(n int) (int, int) {
	groups := (n + 255) / 256
	maxX := int(d.c.limits.MaxComputeWorkGroupCount[0])
	if groups <= maxX {
		return groups, 1
	}
	return maxX, (groups + maxX - 1) / maxX
}

func (d *Device) run(name string, bufs []*Buffer, push []uint32, gx, gy, gz int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	p, err := d.pipeline(name, len(bufs))
	if err == nil {
		hs := make([]uintptr, len(bufs))
		for i, b := range bufs {
			hs[i] = b.b.buf
		}
		err = d.s.dispatch(p, hs, push, gx, gy, gz)
	}
	if err != nil {
		d.recordLocked(name, err)
	}
	for _, b := range bufs {
		runtime.KeepAlive(b)
	}
}

func f32bits(v float32) uint32 { return math.Float32bits(v) }

func (d *Device) f(op string, b tensor.Buffer, n int) *Buffer {
	if b == nil {
		return nil
	}
	return d.own(op, b, tensor.F32, 0, n)
}

// Fill implements tensor.Device.
func (d *Device) Fill(dst tensor.Buffer, n int, v float32) {
	b := d.f("fill", dst, n)
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.s.fill(b.b.buf, 0, uint64(4*n), f32bits(v)); err != nil {
		d.recordLocked("fill", err)
	}
	runtime.KeepAlive(b)
}

// Unary implements tensor.Device.
func (d *Device) Unary(op tensor.UnaryOp, dst, x tensor.Buffer, n int, p tensor.UnaryParams) {
	y, xb := d.f("unary", dst, n), d.f("unary", x, n)
	gx, gy := d.grid1(n)
	d.run("unary", []*Buffer{y, xb}, []uint32{uint32(n), uint32(op), f32bits(p.Alpha), f32bits(p.Beta)}, gx, gy, 1)
}

// UnaryBackward implements tensor.Device.
func (d *Device) UnaryBackward(op tensor.UnaryOp, dx, x, dy tensor.Buffer, n int, p tensor.UnaryParams) {
	g, xb, gy := d.f("unary backward", dx, n), d.f("unary backward", x, n), d.f("unary backward", dy, n)
	wx, wy := d.grid1(n)
	d.run("unary_backward", []*Buffer{g, xb, gy}, []uint32{uint32(n), uint32(op), f32bits(p.Alpha), f32bits(p.Beta)}, wx, wy, 1)
}

func denseStrides(shape []int) []int {
	s := make([]int, len(shape))
	acc := 1
	for i := len(shape) - 1; i >= 0; i-- {
		s[i] = acc
		acc *= shape[i]
	}
	return s
}

// strided runs the binary shader (op 0–3, or 4 = copy a) with dst a view
// too, over at most tensor.MaxViewRank axes (package tensor merges and
// splits views to fit).
func (d *Device) strided(name string, op int, dst, a, b tensor.Strided, shape []int) {
	n := 1
	for _, s := range shape {
		n *= s
	}
	if n == 0 {
		return
	}
	if len(shape) > tensor.MaxViewRank {
		d.record(name, fmt.Errorf("a view of %d axes (the shader takes %d)", len(shape), tensor.MaxViewRank))
		return
	}
	cs, st := shape, [][]int{dst.Strides, a.Strides, b.Strides}
	push := make([]uint32, 30)
	push[0], push[1], push[2] = uint32(n), uint32(op), uint32(len(cs))
	push[3], push[4], push[5] = uint32(a.Off), uint32(b.Off), uint32(dst.Off)
	for k := range cs {
		push[6+k] = uint32(cs[k])
		push[12+k] = uint32(int32(st[1][k]))
		push[18+k] = uint32(int32(st[2][k]))
		push[24+k] = uint32(int32(st[0][k]))
	}
	gx, gy := d.grid1(n)
	d.run("binary", []*Buffer{dst.Buf.(*Buffer), a.Buf.(*Buffer), b.Buf.(*Buffer)}, push, gx, gy, 1)
}

// Binary implements tensor.Device.
func (d *Device) Binary(op tensor.BinaryOp, dst tensor.Buffer, a, b tensor.Strided, shape []int) {
	d.own("binary", dst, tensor.F32, 0, 0)
	d.own("binary", a.Buf, tensor.F32, 0, 0)
	d.own("binary", b.Buf, tensor.F32, 0, 0)
	d.strided("binary", int(op), tensor.Strided{Buf: dst, Strides: denseStrides(shape)}, a, b, shape)
}

// Copy implements tensor.Device.
func (d *Device) Copy(dst, src tensor.Strided, shape []int) {
	d.own("copy", dst.Buf, tensor.F32, 0, 0)
	d.own("copy", src.Buf, tensor.F32, 0, 0)
	if len(shape) == 0 {
		shape = []int{1}
		dst.Strides, src.Strides = []int{1}, []int{1}
	}
	d.strided("copy", 4, dst, src, src, shape)
}

// Reduce implements tensor.Device.
func (d *Device) Reduce(op tensor.ReduceOp, dst, x tensor.Buffer, p tensor.ReduceParams) {
	y, xb := d.f("reduce", dst, p.Outer*p.Inner), d.f("reduce", x, p.Outer*p.N*p.Inner)
	gx, gy := d.grid1(p.Outer * p.Inner)
	d.run("reduce", []*Buffer{y, xb}, []uint32{uint32(p.Outer), uint32(p.N), uint32(p.Inner), uint32(op)}, gx, gy, 1)
}

// MatMul implements tensor.Device.
func (d *Device) MatMul(c, a, b tensor.Buffer, p tensor.MatMulParams) {
	cb, ab, bb := d.own("matmul", c, tensor.F32, 0, 0), d.own("matmul", a, tensor.F32, 0, 0), d.own("matmul", b, tensor.F32, 0, 0)
	lda, ldb := p.K, p.N
	if p.TransA {
		lda = p.M
	}
	if p.TransB {
		ldb = p.K
	}
	d.gemm(cb, ab, bb, gemmArgs{M: p.M, N: p.N, K: p.K, TransA: p.TransA, TransB: p.TransB, Alpha: p.Alpha, Beta: p.Beta,
		LdA: lda, LdB: ldb, LdC: p.N, Outer: p.Batch, Inner: 1, SA0: p.StrideA, SB0: p.StrideB, SC0: p.StrideC})
}

// gemmArgs is one call of the GEMM shader: Outer×Inner matrices, batch
// (o, i) starting at Off + o·S0 + i·S1 in each operand, with leading
// dimensions LdA, LdB, LdC (row strides) so that head slices of attention
// need no copies.
type gemmArgs struct {
	M, N, K          int
	TransA, TransB   bool
	Alpha, Beta      float32
	LdA, LdB, LdC    int
	Outer, Inner     int
	SA0, SB0, SC0    int
	SA1, SB1, SC1    int
	OffA, OffB, OffC int
}

func (d *Device) gemm(c, a, b *Buffer, g gemmArgs) {
	if g.Outer*g.Inner == 0 || g.M == 0 || g.N == 0 {
		return
	}
	push := []uint32{uint32(g.M), uint32(g.N), uint32(g.K), b2u(g.TransA), b2u(g.TransB), f32bits(g.Alpha), f32bits(g.Beta),
		uint32(g.LdA), uint32(g.LdB), uint32(g.LdC), uint32(g.Inner),
		uint32(g.SA0), uint32(g.SB0), uint32(g.SC0), uint32(g.SA1), uint32(g.SB1), uint32(g.SC1),
		uint32(g.OffA), uint32(g.OffB), uint32(g.OffC)}
	name, tile := "gemm", 64
	switch {
	case d.fp16:
		name = d.c.coopShader
	case g.M >= 128 && g.N >= 128:
		name, tile = "gemm_big", 128
	}
	d.run(name, []*Buffer{c, a, b, d.dummy}, push, (g.N+tile-1)/tile, (g.M+tile-1)/tile, g.Outer*g.Inner)
}

func b2u(b bool) uint32 {
	if b {
		return 1
	}
	return 0
}

// Dropout implements tensor.Device (the CPU's hash, bit for bit).
func (d *Device) Dropout(dst, x tensor.Buffer, n int, p tensor.DropoutParams) {
	y, xb := d.f("dropout", dst, n), d.f("dropout", x, n)
	gx, gy := d.grid1(n)
	d.run("dropout", []*Buffer{y, xb}, []uint32{uint32(n), f32bits(p.P), uint32(p.Seed), uint32(p.Seed >> 32)}, gx, gy, 1)
}

// AdamStep implements tensor.Device.
func (d *Device) AdamStep(param, grad, m, v tensor.Buffer, n int, p tensor.AdamParams) {
	pb, gb, mb, vb := d.f("adam", param, n), d.f("adam", grad, n), d.f("adam", m, n), d.f("adam", v, n)
	gx, gy := d.grid1(n)
	d.run("adam", []*Buffer{pb, gb, mb, vb}, []uint32{uint32(n), f32bits(p.Beta1), f32bits(p.Beta2), f32bits(p.Eps),
		f32bits(p.OneMinusBeta1), f32bits(p.OneMinusBeta2), f32bits(p.StepSize), f32bits(p.Bias2Sqrt), f32bits(p.LR),
		f32bits(p.L2), f32bits(p.DecoupledWD), f32bits(p.GradScale)}, gx, gy, 1)
}
