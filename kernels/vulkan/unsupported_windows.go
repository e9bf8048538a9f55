//go:build windows

package vulkan

import (
	"errors"

	"github.com/godiffuse/godiffuse/tensor"
)

// errUnsupported: this build loads libvulkan through purego's Dlopen and
// maps its host-visible memory with mmap, neither of which this port does
// on Windows yet; the CPU device runs everything there.
var errUnsupported = errors.New("vulkan: not supported on Windows in this build (the CPU device runs everything)")

// Device is the Vulkan device; on Windows none can be opened.
type Device struct{ tensor.Device }

// Devices reports that no Vulkan device can be used on Windows.
func Devices() ([]PhysicalDevice, error) { return nil, errUnsupported }

// New reports that no Vulkan device can be opened on Windows.
func New(index int) (*Device, error) { return nil, errUnsupported }

// SetMatMulFP16 is unreachable without a device.
func (d *Device) SetMatMulFP16(on bool) error { return errUnsupported }

// MatMulNote is unreachable without a device.
func (d *Device) MatMulNote() string { return "" }

// SetProfile is unreachable without a device.
func (d *Device) SetProfile(on bool) error { return errUnsupported }

// Profile is unreachable without a device.
func (d *Device) Profile() []ProfileEntry { return nil }
