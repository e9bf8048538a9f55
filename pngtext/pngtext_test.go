package pngtext

import (
	"bytes"
	"image"
	"image/color"
	"image/png"
	"slices"
	"testing"
)

func TestRoundTrip(t *testing.T) {
	img := image.NewRGBA(image.Rect(0, 0, 3, 2))
	img.Set(1, 1, color.RGBA{200, 10, 30, 255})
	chunks := []Chunk{
		{"parameters", "a cat\nNegative prompt: dog\nSteps: 25, Sampler: Euler a, CFG scale: 7.5, Seed: 1"},
		{"Comment", "naïve café"},
		{"prompt-utf8", "富士山 🗻"},
	}
	var buf bytes.Buffer
	if err := Encode(&buf, img, chunks); err != nil {
		t.Fatal(err)
	}
	got, err := Read(bytes.NewReader(buf.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, chunks) {
		t.Fatalf("read %q, want %q", got, chunks)
	}
	dec, err := png.Decode(bytes.NewReader(buf.Bytes()))
	if err != nil {
		t.Fatalf("the standard decoder rejects the file: %v", err)
	}
	if r1, g1, b1, _ := dec.At(1, 1).RGBA(); color.RGBA64Model.Convert(img.At(1, 1)) != (color.RGBA64{uint16(r1), uint16(g1), uint16(b1), 0xffff}) {
		t.Fatal("pixels changed")
	}
	if err := Encode(&buf, img, []Chunk{{"", "x"}}); err == nil {
		t.Fatal("an empty key was accepted")
	}
	if _, err := Read(bytes.NewReader([]byte("GIF89a"))); err == nil {
		t.Fatal("a GIF was read as PNG")
	}
	if _, err := Read(bytes.NewReader(buf.Bytes()[:40])); err == nil {
		t.Fatal("a truncated file was read")
	}
}

// FuzzRead: no file may panic the reader (chunk lengths up to 2³²−1 are
// refused before anything is allocated), and every chunk it returns has a key.
func FuzzRead(f *testing.F) {
	var buf bytes.Buffer
	Encode(&buf, image.NewRGBA(image.Rect(0, 0, 2, 2)), []Chunk{{"parameters", "a cat\nSteps: 2"}, {"k", "ünï 🗻"}})
	f.Add(buf.Bytes())
	f.Add([]byte("\x89PNG\r\n\x1a\n\x00\x00\x00\x05tEXtk\x00v"))
	f.Add([]byte("\x89PNG\r\n\x1a\n\xff\xff\xff\xfftEXt"))
	f.Fuzz(func(t *testing.T, data []byte) {
		chunks, err := Read(bytes.NewReader(data))
		if err != nil {
			return
		}
		for _, c := range chunks {
			if c.Key == "" {
				t.Fatalf("a chunk without a key: %q", c)
			}
		}
	})
}
