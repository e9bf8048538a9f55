//go:build !unix

package safetensors

import (
	"io"
	"os"
)

// mapFile reads the whole file where memory mapping is not available.
func mapFile(f *os.File, size int) (data []byte, release func(), err error) {
	data = make([]byte, size)
	_, err = io.ReadFull(f, data)
	return data, func() {}, err
}

func dropPages([]byte) {}
