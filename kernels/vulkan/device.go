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
//
//	device.go              Device, New, Close, recording a dispatch (run), pipelines
//	memory.go              buffers by size class, staging, uploads/downloads, Synchronize
//	matmul.go              GEMM shaders, the cooperative-matrix path and its self-check
//	device_elementwise.go  fill, unary/binary/copy over views, reduce, dropout, Adam
//	device_nn.go           convolution, norms, softmax, attention, upsampling, gather
//	device_volume.go       Conv3D and trilinear upsampling
//	context.go, physical.go, vk.go   instance, device and entry points (purego)
//	stream.go, arena.go    the command stream and C-side memory for create-infos
//	pipeline_cache.go      the driver's pipeline cache on disk
//	internal/vk            the generated C struct mirrors
package vulkan

import (
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
	prof     map[string]*ProfileEntry // per-dispatch timings while profiling (SetProfile)
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
		if d.prof != nil {
			err = d.timeDispatch(p, name, hs, push, gx, gy, gz)
		} else {
			err = d.s.dispatch(p, hs, push, gx, gy, gz)
		}
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
