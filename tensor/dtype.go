package tensor

import "fmt"

// DType is the element type of a buffer.
type DType uint8

// Element types. Tensors are float32; int64 tensors hold labels, timesteps
// and other indices; F16 (IEEE half precision) holds frozen weights of
// Linear and Conv2D on devices that can store them (HalfDevice), which
// widen them to float32 as they use them.
const (
	F32 DType = iota
	I64
	F16
)

func (d DType) String() string {
	switch d {
	case F32:
		return "float32"
	case I64:
		return "int64"
	case F16:
		return "float16"
	}
	return fmt.Sprintf("DType(%d)", int(d))
}

// Size is the size of one element in bytes.
func (d DType) Size() int {
	switch d {
	case I64:
		return 8
	case F16:
		return 2
	}
	return 4
}

// HalfDevice is a device that stores F16 buffers: Alloc(F16, n) works and
// Linear and Conv2D accept F16 weights (widened to float32 when used, never
// given a gradient).
type HalfDevice interface {
	Device
	// UploadF16 copies IEEE half-precision bit patterns into dst[off:].
	UploadF16(dst Buffer, off int, src []uint16) error
}
