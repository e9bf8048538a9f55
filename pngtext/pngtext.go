// Package pngtext writes and reads PNG text chunks (tEXt for Latin-1 text,
// iTXt for UTF-8), the way Stable Diffusion front-ends store an image's
// generation parameters ("parameters": prompt, negative prompt, steps,
// sampler, guidance, seed, size, model).
package pngtext

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"image"
	"image/png"
	"io"
)

// Chunk is one text entry.
type Chunk struct{ Key, Value string }

var signature = []byte("\x89PNG\r\n\x1a\n")

// Encode writes img as PNG with the text chunks placed right after IHDR.
// Keys must be 1–79 Latin-1 characters without NUL; a value that is pure
// Latin-1 goes into tEXt, any other into an uncompressed iTXt.
func Encode(w io.Writer, img image.Image, chunks []Chunk) error {
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		return err
	}
	b := buf.Bytes()
	// signature (8) + IHDR chunk (4 length + 4 type + 13 data + 4 crc)
	const ihdrEnd = 8 + 25
	if len(b) < ihdrEnd || !bytes.Equal(b[:8], signature) {
		return errors.New("pngtext: unexpected encoder output")
	}
	var out bytes.Buffer
	out.Write(b[:ihdrEnd])
	for _, c := range chunks {
		if err := writeText(&out, c); err != nil {
			return err
		}
	}
	out.Write(b[ihdrEnd:])
	_, err := w.Write(out.Bytes())
	return err
}

func latin1(s string) ([]byte, bool) {
	out := make([]byte, 0, len(s))
	for _, r := range s {
		if r > 0xFF {
			return nil, false
		}
		out = append(out, byte(r))
	}
	return out, true
}

func writeText(w *bytes.Buffer, c Chunk) error {
	key, ok := latin1(c.Key)
	if !ok || len(key) < 1 || len(key) > 79 || bytes.IndexByte(key, 0) >= 0 {
		return fmt.Errorf("pngtext: key %q: want 1–79 Latin-1 characters without NUL", c.Key)
	}
	var data []byte
	typ := "tEXt"
	if v, ok := latin1(c.Value); ok && bytes.IndexByte(v, 0) < 0 {
		data = append(append(key, 0), v...)
	} else {
		typ = "iTXt" // keyword, NUL, compression flag 0, method 0, empty language, NUL, empty translated keyword, NUL, text
		data = append(append(key, 0, 0, 0, 0, 0), []byte(c.Value)...)
	}
	var hdr [8]byte
	binary.BigEndian.PutUint32(hdr[:4], uint32(len(data)))
	copy(hdr[4:], typ)
	crc := crc32.NewIEEE()
	crc.Write(hdr[4:])
	crc.Write(data)
	w.Write(hdr[:])
	w.Write(data)
	return binary.Write(w, binary.BigEndian, crc.Sum32())
}

// Read returns the tEXt and uncompressed iTXt chunks of a PNG stream, in
// order. It reads only the chunk headers and text chunks (not the pixels).
func Read(r io.Reader) ([]Chunk, error) {
	var sig [8]byte
	if _, err := io.ReadFull(r, sig[:]); err != nil || !bytes.Equal(sig[:], signature) {
		return nil, errors.New("pngtext: not a PNG file")
	}
	var out []Chunk
	for {
		var hdr [8]byte
		if _, err := io.ReadFull(r, hdr[:]); err != nil {
			return nil, fmt.Errorf("pngtext: truncated file: %w", err)
		}
		n := binary.BigEndian.Uint32(hdr[:4])
		typ := string(hdr[4:])
		if n > 1<<26 {
			return nil, fmt.Errorf("pngtext: chunk %q of %d bytes", typ, n)
		}
		switch typ {
		case "tEXt", "iTXt":
			data := make([]byte, n+4)
			if _, err := io.ReadFull(r, data); err != nil {
				return nil, fmt.Errorf("pngtext: truncated %s chunk", typ)
			}
			if c, ok := parseText(typ, data[:n]); ok {
				out = append(out, c)
			}
		case "IEND":
			return out, nil
		default:
			if _, err := io.CopyN(io.Discard, r, int64(n)+4); err != nil {
				return nil, fmt.Errorf("pngtext: truncated %s chunk", typ)
			}
		}
	}
}

func parseText(typ string, d []byte) (Chunk, bool) {
	i := bytes.IndexByte(d, 0)
	if i < 1 {
		return Chunk{}, false
	}
	key := latin1String(d[:i])
	rest := d[i+1:]
	if typ == "tEXt" {
		return Chunk{key, latin1String(rest)}, true
	}
	if len(rest) < 2 || rest[0] != 0 { // compressed iTXt is not read
		return Chunk{}, false
	}
	rest = rest[2:]
	for range 2 { // language tag, translated keyword
		j := bytes.IndexByte(rest, 0)
		if j < 0 {
			return Chunk{}, false
		}
		rest = rest[j+1:]
	}
	return Chunk{key, string(rest)}, true
}

func latin1String(b []byte) string {
	rs := make([]rune, len(b))
	for i, c := range b {
		rs[i] = rune(c)
	}
	return string(rs)
}
