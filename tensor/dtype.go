package tensor

import "fmt"

// DType is the element type of a buffer.
type DType int

// Element types. Tensors are float32; int64 tensors hold labels, timesteps
// and other indices.
const (
	F32 DType = iota
	I64
)

func (d DType) String() string {
	switch d {
	case F32:
		return "float32"
	case I64:
		return "int64"
	}
	return fmt.Sprintf("DType(%d)", int(d))
}

// Size is the size of one element in bytes.
func (d DType) Size() int {
	if d == I64 {
		return 8
	}
	return 4
}
