//go:build !windows

package vulkan

import (
	"fmt"
	"syscall"
	"unsafe"
)

// arena is memory outside the Go heap for everything handed to the driver
// that holds pointers: create-infos, pNext chains, name arrays and
// out-parameters. purego does not enforce Go's rule that memory passed to C
// holds no Go pointers, and a violation fails silently; structs built here
// never contain a Go pointer, and their pointer fields (typed uintptr) point
// into the arena too. Vulkan keeps no pointer after a call returns, so an
// arena is reset once the calls that used it are done.
type arena struct {
	mem []byte
	off int
}

func newArena(size int) (*arena, error) {
	mem, err := syscall.Mmap(-1, 0, size, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_PRIVATE|syscall.MAP_ANON)
	if err != nil {
		return nil, fmt.Errorf("vulkan: mmap of a %d-byte arena: %w", size, err)
	}
	return &arena{mem: mem}, nil
}

// alloc returns n zeroed bytes aligned to align.
func (a *arena) alloc(n, align int) unsafe.Pointer {
	off := (a.off + align - 1) &^ (align - 1)
	if off+n > len(a.mem) {
		panic(fmt.Sprintf("vulkan: arena of %d bytes exhausted", len(a.mem)))
	}
	clear(a.mem[off : off+n])
	a.off = off + n
	return unsafe.Pointer(&a.mem[off])
}

func (a *arena) reset() { a.off = 0 }

func (a *arena) free() {
	if a.mem != nil {
		syscall.Munmap(a.mem)
		a.mem = nil
	}
}

// newIn returns a zeroed T in the arena.
func newIn[T any](a *arena) *T {
	var z T
	return (*T)(a.alloc(int(unsafe.Sizeof(z)), int(unsafe.Alignof(z))))
}

// sliceIn returns n zeroed Ts in the arena.
func sliceIn[T any](a *arena, n int) []T {
	if n == 0 {
		return nil
	}
	var z T
	return unsafe.Slice((*T)(a.alloc(n*int(unsafe.Sizeof(z)), int(unsafe.Alignof(z)))), n)
}

// cstr copies s into the arena as a NUL-terminated string.
func (a *arena) cstr(s string) uintptr {
	b := sliceIn[byte](a, len(s)+1)
	copy(b, s)
	return uintptr(unsafe.Pointer(&b[0]))
}

// bytesIn copies b into the arena (4-byte aligned, as SPIR-V needs).
func (a *arena) bytesIn(b []byte) uintptr {
	dst := unsafe.Slice((*byte)(a.alloc(len(b), 8)), len(b))
	copy(dst, b)
	return uintptr(unsafe.Pointer(&dst[0]))
}

func addr[T any](p *T) uintptr { return uintptr(unsafe.Pointer(p)) }

func addrOf[T any](s []T) uintptr {
	if len(s) == 0 {
		return 0
	}
	return uintptr(unsafe.Pointer(&s[0]))
}

// cString reads a NUL-terminated fixed-size C char array.
func cString(b []byte) string {
	for i, c := range b {
		if c == 0 {
			return string(b[:i])
		}
	}
	return string(b)
}
