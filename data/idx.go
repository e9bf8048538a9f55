package data

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"fmt"
	"io"
	"os"
)

// ---------------------------------------------------------------------------
// IDX files (LeCun's MNIST format): magic 0x00 0x00 <type> <ndim>, then ndim
// big-endian uint32 sizes, then the data. We read unsigned bytes (type 0x08):
// images are (N, H, W), labels (N). Files may be gzipped.
// ---------------------------------------------------------------------------

// maxIDX bounds what we decompress (Fashion-MNIST's train images are 47 MB).
const maxIDX = 1 << 30

func readMaybeGzip(path string, r io.Reader) ([]byte, error) {
	raw, err := io.ReadAll(io.LimitReader(r, maxIDX+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if len(raw) >= 2 && raw[0] == 0x1f && raw[1] == 0x8b {
		zr, err := gzip.NewReader(bytes.NewReader(raw))
		if err != nil {
			return nil, fmt.Errorf("%s: gzip: %w", path, err)
		}
		raw, err = io.ReadAll(io.LimitReader(zr, maxIDX+1))
		if err != nil {
			return nil, fmt.Errorf("%s: gzip: %w", path, err)
		}
	}
	if len(raw) > maxIDX {
		return nil, fmt.Errorf("%s: larger than %d bytes", path, maxIDX)
	}
	return raw, nil
}

// parseIDX returns the dimensions and the payload of an unsigned-byte IDX file.
func parseIDX(path string, raw []byte) ([]int, []byte, error) {
	if len(raw) < 4 || raw[0] != 0 || raw[1] != 0 {
		return nil, nil, fmt.Errorf("%s: not an IDX file (bad magic)", path)
	}
	if raw[2] != 0x08 {
		return nil, nil, fmt.Errorf("%s: IDX element type %#x, want 0x08 (unsigned byte)", path, raw[2])
	}
	nd := int(raw[3])
	if nd < 1 || nd > 4 || len(raw) < 4+4*nd {
		return nil, nil, fmt.Errorf("%s: IDX header with %d dimensions is truncated or unsupported", path, nd)
	}
	dims := make([]int, nd)
	n := 1
	for i := range dims {
		dims[i] = int(binary.BigEndian.Uint32(raw[4+4*i:]))
		if dims[i] == 0 || dims[i] > maxIDX {
			return nil, nil, fmt.Errorf("%s: IDX dimension %d is %d", path, i, dims[i])
		}
		n *= dims[i]
		if n > maxIDX {
			return nil, nil, fmt.Errorf("%s: IDX shape %v too large", path, dims)
		}
	}
	body := raw[4+4*nd:]
	if len(body) != n {
		return nil, nil, fmt.Errorf("%s: IDX shape %v needs %d bytes of data, file has %d", path, dims, n, len(body))
	}
	return dims, body, nil
}

func readIDXFile(path string) ([]int, []byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	raw, err := readMaybeGzip(path, f)
	if err != nil {
		return nil, nil, err
	}
	return parseIDX(path, raw)
}

// LoadIDX reads an image file (N, H, W) and, when labelPath is not empty, a
// label file (N). classes names the labels (may be nil).
func LoadIDX(imagePath, labelPath string, classes []string) (Dataset, error) {
	dims, pix, err := readIDXFile(imagePath)
	if err != nil {
		return nil, err
	}
	if len(dims) != 3 {
		return nil, fmt.Errorf("%s: IDX images have shape %v, want (N, H, W)", imagePath, dims)
	}
	m := &memory{c: 1, h: dims[1], w: dims[2], pix: pix, classes: classes}
	if labelPath == "" {
		return m, nil
	}
	ldims, lab, err := readIDXFile(labelPath)
	if err != nil {
		return nil, err
	}
	if len(ldims) != 1 || ldims[0] != dims[0] {
		return nil, fmt.Errorf("%s: %v labels for %d images in %s", labelPath, ldims, dims[0], imagePath)
	}
	m.labels = make([]int, len(lab))
	maxLabel := 0
	for i, l := range lab {
		m.labels[i] = int(l)
		maxLabel = max(maxLabel, int(l))
	}
	if classes == nil {
		for i := range maxLabel + 1 {
			m.classes = append(m.classes, fmt.Sprint(i))
		}
	} else if maxLabel >= len(classes) {
		return nil, fmt.Errorf("%s: label %d but only %d class names", labelPath, maxLabel, len(classes))
	}
	return m, nil
}
