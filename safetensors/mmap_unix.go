//go:build unix

package safetensors

import (
	"os"

	"golang.org/x/sys/unix"
)

// mapFile maps a file read-only (shared, so its pages come from the page
// cache and can be dropped again: a multi-gigabyte checkpoint is not copied
// into the heap). release gives the mapping back.
func mapFile(f *os.File, size int) (data []byte, release func(), err error) {
	if size == 0 {
		return nil, func() {}, nil
	}
	data, err = unix.Mmap(int(f.Fd()), 0, size, unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		return nil, nil, err
	}
	return data, func() { unix.Munmap(data) }, nil
}

// dropPages tells the kernel that the whole pages inside b will not be read
// again, so they leave this process's resident set (the file keeps them).
func dropPages(b []byte) {
	const page = 4096
	if len(b) < 2*page {
		return
	}
	start := (page - int(uintptr(unsafePointer(b))%page)) % page
	end := start + (len(b)-start)/page*page
	if end > start {
		unix.Madvise(b[start:end], unix.MADV_DONTNEED)
	}
}
