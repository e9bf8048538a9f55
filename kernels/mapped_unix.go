//go:build linux || darwin || freebsd

package kernels

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// mapArray returns n float32 values (zero) in anonymous memory of their
// own, outside the Go heap, or nil if the mapping fails.
func mapArray(n int) []float32 {
	p, err := unix.MmapPtr(-1, 0, nil, uintptr(4*n), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANON)
	if err != nil {
		return nil
	}
	return unsafe.Slice((*float32)(p), n)
}

// unmapArray gives back an array from mapArray (whole: f's cap is its length).
func unmapArray(f []float32) {
	_ = unix.MunmapPtr(unsafe.Pointer(unsafe.SliceData(f)), uintptr(4*cap(f)))
}
