package data

import (
	"bytes"
	_ "embed"
	"fmt"
)

// The embedded default: the first 5,000 images of Fashion-MNIST's training
// set with their labels (MIT licence, Zalando SE; see fashionmnist/LICENSE),
// made by `go run ./data/internal/mkembed` from Debian's dataset-fashion-mnist.
var (
	//go:embed fashionmnist/train-images-idx3-ubyte.gz
	fashionImages []byte
	//go:embed fashionmnist/train-labels-idx1-ubyte.gz
	fashionLabels []byte
)

// FashionMNISTClasses are the ten Fashion-MNIST labels in order.
var FashionMNISTClasses = []string{"t-shirt/top", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag", "ankle-boot"}

// Embedded returns the built-in Fashion-MNIST slice (28×28 grey, 10 classes).
func Embedded() (Dataset, error) {
	load := func(name string, b []byte) ([]int, []byte, error) {
		raw, err := readMaybeGzip(name, bytes.NewReader(b))
		if err != nil {
			return nil, nil, err
		}
		return parseIDX(name, raw)
	}
	dims, pix, err := load("embedded images", fashionImages)
	if err != nil {
		return nil, err
	}
	ld, lab, err := load("embedded labels", fashionLabels)
	if err != nil {
		return nil, err
	}
	if len(dims) != 3 || len(ld) != 1 || ld[0] != dims[0] {
		return nil, fmt.Errorf("embedded dataset: shapes %v and %v do not fit", dims, ld)
	}
	m := &memory{c: 1, h: dims[1], w: dims[2], pix: pix, classes: FashionMNISTClasses, labels: make([]int, len(lab))}
	for i, l := range lab {
		m.labels[i] = int(l)
	}
	return m, nil
}
