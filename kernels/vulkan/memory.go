//go:build !windows

package vulkan

import (
	"encoding/binary"
	"fmt"
	"math"
	"runtime"

	"github.com/godiffuse/godiffuse/tensor"
)

// Device memory: buffers pooled by size class, the staging buffer and the
// transfers through it, and the sync point that submits recorded work.

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
