// Package shapedev is a tensor.Device that holds shapes and no data, so
// tests can build full-size models (an 860M-parameter U-Net) and check their
// parameter names and shapes without gigabytes of memory. Only Alloc and
// Fill work; any op panics.
package shapedev

import "github.com/godiffuse/godiffuse/tensor"

// Device allocates nothing.
type Device struct{ tensor.Device }

type buffer struct {
	dev *Device
	dt  tensor.DType
	n   int
}

func (b *buffer) Device() tensor.Device { return b.dev }
func (b *buffer) DType() tensor.DType   { return b.dt }
func (b *buffer) Len() int              { return b.n }

// New returns a shape-only device.
func New() *Device { return &Device{} }

// Name implements tensor.Device.
func (d *Device) Name() string { return "shapes" }

// Alloc implements tensor.Device without memory.
func (d *Device) Alloc(dt tensor.DType, n int) (tensor.Buffer, error) {
	return &buffer{dev: d, dt: dt, n: n}, nil
}

// Fill implements tensor.Device as a no-op.
func (d *Device) Fill(tensor.Buffer, int, float32) {}
