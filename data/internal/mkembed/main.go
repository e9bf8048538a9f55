// Command mkembed makes the embedded default dataset: the first N images
// (default 5000) of Fashion-MNIST's training set and their labels, from
// Debian's dataset-fashion-mnist package, written as gzipped IDX files with
// the image count in the header rewritten. The output is byte-identical on
// every run (gzip without a timestamp).
//
//	apt-get install dataset-fashion-mnist
//	go run ./data/internal/mkembed
//
// With -set t10k it slices the test set instead; the judge's test slice is
//
//	go run ./data/internal/mkembed -set t10k -n 2000 -dst features/testdata
package main

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"path/filepath"
)

func main() {
	src := flag.String("src", "/usr/share/datasets/fashion-mnist", "folder with the gzipped IDX files")
	dst := flag.String("dst", "data/fashionmnist", "output folder")
	n := flag.Int("n", 5000, "number of images")
	set := flag.String("set", "train", "which set to slice: train or t10k")
	flag.Parse()
	if *set != "train" && *set != "t10k" {
		log.Fatalf("-set %q: want train or t10k", *set)
	}
	for _, f := range []struct {
		name string
		item int // bytes per item
	}{{*set + "-images-idx3-ubyte.gz", 28 * 28}, {*set + "-labels-idx1-ubyte.gz", 1}} {
		raw, err := readGz(filepath.Join(*src, f.name))
		if err != nil {
			log.Fatal(err)
		}
		nd := int(raw[3])
		head := append([]byte(nil), raw[:4+4*nd]...)
		if int(binary.BigEndian.Uint32(head[4:])) < *n {
			log.Fatalf("%s holds fewer than %d items", f.name, *n)
		}
		binary.BigEndian.PutUint32(head[4:], uint32(*n))
		body := raw[4+4*nd : 4+4*nd+*n*f.item]
		var out bytes.Buffer
		zw, _ := gzip.NewWriterLevel(&out, gzip.BestCompression)
		zw.Write(head)
		zw.Write(body)
		zw.Close()
		if err := os.WriteFile(filepath.Join(*dst, f.name), out.Bytes(), 0o644); err != nil {
			log.Fatal(err)
		}
		fmt.Printf("%s: %d items, %d bytes\n", f.name, *n, out.Len())
	}
}

func readGz(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		return nil, err
	}
	return io.ReadAll(zr)
}
