package data

import (
	"bytes"
	"compress/gzip"
	"image"
	"image/color"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestEmbedded(t *testing.T) {
	ds, err := Embedded()
	if err != nil {
		t.Fatal(err)
	}
	if c, h, w := ds.Shape(); ds.Len() != 5000 || c != 1 || h != 28 || w != 28 {
		t.Fatalf("embedded: %d images of %dx%dx%d", ds.Len(), c, h, w)
	}
	count := make([]int, 10)
	buf := make([]float32, 784)
	for i := range ds.Len() {
		l := ds.Image(i, buf)
		if l < 0 || l > 9 {
			t.Fatalf("label %d", l)
		}
		count[l]++
	}
	for k, n := range count {
		if n < 400 { // Fashion-MNIST is balanced; 5,000 images give ~500 each
			t.Errorf("class %s has only %d images", FashionMNISTClasses[k], n)
		}
	}
	for _, v := range buf {
		if v < -1 || v > 1 {
			t.Fatalf("pixel %g outside [-1, 1]", v)
		}
	}
	if k, err := ClassIndex(ds.Classes(), "sneaker"); err != nil || k != 7 {
		t.Fatalf("sneaker -> %d, %v", k, err)
	}
	if k, err := ClassIndex(ds.Classes(), "3"); err != nil || k != 3 {
		t.Fatalf("3 -> %d, %v", k, err)
	}
	if _, err := ClassIndex(ds.Classes(), "10"); err == nil {
		t.Fatal("class 10 accepted")
	}
}

func TestIDXGzipAndErrors(t *testing.T) {
	dir := t.TempDir()
	raw := []byte{0, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 2, 0, 0, 0, 2, 0, 255, 10, 20, 30, 40, 50, 60}
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(raw)
	zw.Close()
	plain, zipped := filepath.Join(dir, "a.idx"), filepath.Join(dir, "a.idx.gz")
	os.WriteFile(plain, raw, 0o644)
	os.WriteFile(zipped, gz.Bytes(), 0o644)
	for _, p := range []string{plain, zipped} {
		ds, err := LoadIDX(p, "", nil)
		if err != nil {
			t.Fatal(err)
		}
		buf := make([]float32, 4)
		ds.Image(0, buf)
		if ds.Len() != 2 || buf[0] != -1 || buf[1] != 1 {
			t.Fatalf("%s: %d images, first %v", p, ds.Len(), buf)
		}
	}
	short := filepath.Join(dir, "short.idx")
	os.WriteFile(short, raw[:20], 0o644)
	if _, err := LoadIDX(short, "", nil); err == nil || !strings.Contains(err.Error(), "short.idx") {
		t.Fatalf("truncated IDX: %v", err)
	}
	badMagic := filepath.Join(dir, "bad.idx")
	os.WriteFile(badMagic, []byte("hello world, not idx"), 0o644)
	if _, err := LoadIDX(badMagic, "", nil); err == nil || !strings.Contains(err.Error(), "magic") {
		t.Fatalf("bad magic: %v", err)
	}
}

func TestFolderResizeCrop(t *testing.T) {
	dir := t.TempDir()
	// 8×4 image: left half black, right half white; cropped to the centre 4×4, resized to 2×2.
	img := image.NewRGBA(image.Rect(0, 0, 8, 4))
	for y := range 4 {
		for x := range 8 {
			v := uint8(0)
			if x >= 4 {
				v = 255
			}
			img.Set(x, y, color.RGBA{v, v, v, 255})
		}
	}
	f, _ := os.Create(filepath.Join(dir, "a.png"))
	png.Encode(f, img)
	f.Close()
	os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("ignored"), 0o644)
	ds, err := LoadFolder(dir, 2, 1)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]float32, 4)
	ds.Image(0, buf)
	if ds.Len() != 1 || buf[0] != -1 || buf[1] != 1 || buf[2] != -1 || buf[3] != 1 {
		t.Fatalf("resized pixels %v, want [-1 1 -1 1]", buf)
	}
}
