// Package data provides training images behind one interface: IDX files
// (MNIST, Fashion-MNIST; gzipped or not), a folder of PNG/JPEG images, and the
// embedded default, a slice of Fashion-MNIST committed with its licence.
//
// Images are float32 in [-1, 1], laid out (C, H, W).
package data

import (
	"fmt"
	"slices"
	"strconv"
)

// Dataset is an indexed set of images of one shape, optionally labelled.
type Dataset interface {
	Len() int
	// Shape is (channels, height, width).
	Shape() (c, h, w int)
	// Image writes image i into dst (C·H·W values in [-1, 1]) and returns its
	// label (-1 when unlabelled).
	Image(i int, dst []float32) int
	// Classes names the labels (nil when unlabelled).
	Classes() []string
}

// ClassIndex finds a class among names by name or by its decimal index.
func ClassIndex(names []string, s string) (int, error) {
	if i := slices.Index(names, s); i >= 0 {
		return i, nil
	}
	if i, err := strconv.Atoi(s); err == nil && strconv.Itoa(i) == s && i >= 0 && i < len(names) {
		return i, nil
	}
	return 0, fmt.Errorf("unknown class %q (want an index 0…%d or one of %q)", s, len(names)-1, names)
}

// memory is a dataset held as bytes (one byte per pixel value).
type memory struct {
	c, h, w int
	pix     []byte // N·C·H·W
	labels  []int  // nil when unlabelled
	classes []string
}

func (m *memory) Len() int               { return len(m.pix) / (m.c * m.h * m.w) }
func (m *memory) Shape() (int, int, int) { return m.c, m.h, m.w }
func (m *memory) Classes() []string      { return m.classes }
func (m *memory) Image(i int, dst []float32) int {
	n := m.c * m.h * m.w
	for k, b := range m.pix[i*n : (i+1)*n] {
		dst[k] = float32(b)/127.5 - 1
	}
	if m.labels == nil {
		return -1
	}
	return m.labels[i]
}

// FromBytes wraps pixel bytes (N·C·H·W, 0…255) and optional labels (nil for
// an unlabelled set) as a Dataset.
func FromBytes(c, h, w int, pix []byte, labels []int, classes []string) (Dataset, error) {
	n := c * h * w
	if n == 0 || len(pix)%n != 0 || len(pix) == 0 {
		return nil, fmt.Errorf("data: %d bytes do not hold whole %dx%dx%d images", len(pix), c, h, w)
	}
	if labels != nil && len(labels) != len(pix)/n {
		return nil, fmt.Errorf("data: %d labels for %d images", len(labels), len(pix)/n)
	}
	for _, l := range labels {
		if l < 0 || l >= len(classes) {
			return nil, fmt.Errorf("data: label %d outside the %d classes", l, len(classes))
		}
	}
	return &memory{c: c, h: h, w: w, pix: pix, labels: labels, classes: classes}, nil
}
