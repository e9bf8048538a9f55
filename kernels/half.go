package kernels

import (
	"math"

	"github.com/klauspost/cpuid/v2"

	"github.com/godiffuse/godiffuse/kernels/asm"
	"github.com/godiffuse/godiffuse/tensor"
)

// ---------------------------------------------------------------------------
// Half-precision weights (tensor.F16): Linear and Conv2D weights stored as
// IEEE half bits, widened to float32 into scratch when an op reads them
// (every half value is exactly a float32, so the op then computes as with
// float32 weights). They halve the memory of a loaded Stable Diffusion
// U-Net; the widening costs one pass over the weights per use.
// ---------------------------------------------------------------------------

// halfToFloat is the reference widening of IEEE half bits.
func halfToFloat(h uint16) float32 {
	sign, exp, man := uint32(h>>15)<<31, uint32(h>>10)&0x1f, uint32(h)&0x3ff
	switch {
	case exp == 0x1f && man == 0: // infinities
		return math.Float32frombits(sign | 0x7f800000)
	case exp == 0x1f: // NaN, quieted as F16C's VCVTPH2PS does
		return math.Float32frombits(sign | 0x7fc00000 | man<<13)
	case exp == 0: // zero and subnormals: man·2⁻²⁴
		v := float32(man) * (1.0 / (1 << 24))
		if sign != 0 {
			return -v
		}
		return v
	}
	return math.Float32frombits(sign | (exp+112)<<23 | man<<13)
}

// widen sets dst[i] = halfToFloat(src[i]), eight at a time with F16C where
// the level has it.
func (d *Device) widen(dst []float32, src []uint16) {
	k := 0
	if d.simd() && hasF16C {
		asm.HalfToFloatAVX2(dst, src)
		k = len(src) / 8 * 8
	}
	for i := k; i < len(src); i++ {
		dst[i] = halfToFloat(src[i])
	}
}

// hasF16C: VCVTPH2PS is F16C's, which the AVX2 level does not imply.
var hasF16C = cpuid.CPU.Supports(cpuid.F16C)

// halfArrays keeps the widening buffers of F16 weights across calls: a
// fresh 50–120 MB buffer per layer and step would be cleared (or
// page-faulted in) every time. As any arrayList, a request takes the
// shortest kept buffer that holds it and beyond keep the shortest is
// dropped, so over one pass of a network the kept buffers become its
// longest weights and serve every layer after; and they are mapped outside
// the Go heap, so that one dropped gives its memory back at once and those
// kept do not raise the collector's goal. (Heap arrays, the first that fit
// taken and the newcomer dropped, had made an SD U-Net step widen into
// fresh buffers all along: at the GOGC=10 of `diffuse generate` their
// clearing alone was ~0.9 s of a 6–7 s step, bench/RESULTS.md, 2026-12-06
// from 22:13 UTC. In scratchArrays its one-big rule made the largest
// layers map and unmap theirs at every call.) Three: a GEMM widens both
// operands at once. ForgetRecycled drops them all (a pipeline's next stage
// has other weights).
var halfArrays = arrayList{keep: 3}

// floats returns the float32 values of b: its own slice, or for an F16
// buffer a widened copy in scratch; call release when done with it.
func (d *Device) floats(b tensor.Buffer) (v []float32, release func()) {
	cb, ok := b.(*Buffer)
	if !ok || cb == nil || cb.dt != tensor.F16 {
		return f32(b), func() {}
	}
	buf := halfArrays.get(len(cb.wide.H))
	d.widen(buf, cb.wide.H)
	return buf, func() { halfArrays.put(buf) }
}

// UploadF16 implements tensor.HalfDevice.
func (d *Device) UploadF16(dst tensor.Buffer, off int, src []uint16) error {
	b, err := d.own(dst, tensor.F16, off, len(src))
	if err == nil {
		copy(b.wide.H[off:], src)
	}
	return err
}

var _ tensor.HalfDevice = (*Device)(nil)
