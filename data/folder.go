package data

import (
	"fmt"
	"image"
	_ "image/jpeg" // register JPEG
	_ "image/png"  // register PNG
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// LoadFolder reads every PNG and JPEG image in dir (not recursive), scales
// its shorter side to size by area averaging, centre-crops it to size×size
// and keeps `channels` channels (1: grey by luminance, 3: RGB). Images whose
// alpha is below 1 are composited on white. Sub-folders are ignored; a
// corrupt image is an error naming the file.
func LoadFolder(dir string, size, channels int) (Dataset, error) {
	if size < 1 || (channels != 1 && channels != 3) {
		return nil, fmt.Errorf("load %s: size %d and channels %d (want size ≥ 1 and 1 or 3 channels)", dir, size, channels)
	}
	names, err := imageNames(dir)
	if err != nil {
		return nil, err
	}
	m := &memory{c: channels, h: size, w: size}
	for _, n := range names {
		pix, err := decodeFile(filepath.Join(dir, n), size, channels)
		if err != nil {
			return nil, err
		}
		m.pix = append(m.pix, pix...)
	}
	return m, nil
}

// LoadFile reads one PNG or JPEG image as a one-image dataset, resized and
// cropped as LoadFolder does.
func LoadFile(path string, size, channels int) (Dataset, error) {
	if size < 1 || (channels != 1 && channels != 3) {
		return nil, fmt.Errorf("load %s: size %d and channels %d (want size ≥ 1 and 1 or 3 channels)", path, size, channels)
	}
	pix, err := decodeFile(path, size, channels)
	if err != nil {
		return nil, err
	}
	return &memory{c: channels, h: size, w: size, pix: pix}, nil
}

func decodeFile(path string, size, channels int) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	img, _, err := image.Decode(f)
	if err != nil {
		return nil, fmt.Errorf("%s: not a readable PNG or JPEG image: %w", path, err)
	}
	return resizeCrop(img, size, channels), nil
}

// ImageValues is img resized and centre-cropped as LoadFolder does, as
// (channels, size, size) values in [−1, 1] (channels 1 or 3).
func ImageValues(img image.Image, size, channels int) []float32 {
	pix := resizeCrop(img, size, channels)
	out := make([]float32, len(pix))
	for i, b := range pix {
		out[i] = float32(b)/127.5 - 1
	}
	return out
}

// resizeCrop returns the image as (channels, size, size) bytes.
func resizeCrop(img image.Image, size, channels int) []byte {
	b := img.Bounds()
	w, h := b.Dx(), b.Dy()
	scale := float64(size) / float64(min(w, h)) // output pixels per input pixel
	sw, sh := float64(size)/scale, float64(size)/scale
	x0, y0 := float64(b.Min.X)+(float64(w)-sw)/2, float64(b.Min.Y)+(float64(h)-sh)/2
	out := make([]byte, channels*size*size)
	for oy := range size {
		for ox := range size {
			// Average the input pixels whose centres fall in this output pixel's footprint.
			fx0, fx1 := x0+float64(ox)/scale, x0+float64(ox+1)/scale
			fy0, fy1 := y0+float64(oy)/scale, y0+float64(oy+1)/scale
			ix0, ix1 := int(fx0), max(int(fx0)+1, int(fx1+0.5))
			iy0, iy1 := int(fy0), max(int(fy0)+1, int(fy1+0.5))
			var acc [3]float64
			cnt := 0.0
			for y := iy0; y < min(iy1, b.Max.Y); y++ {
				for x := ix0; x < min(ix1, b.Max.X); x++ {
					r, g, bl, a := img.At(x, y).RGBA()
					// Composite on white: c + (1 - a).
					wa := float64(0xffff - a)
					acc[0] += float64(r) + wa
					acc[1] += float64(g) + wa
					acc[2] += float64(bl) + wa
					cnt++
				}
			}
			if cnt == 0 {
				cnt = 1
			}
			for k := range acc {
				acc[k] /= cnt * 257
			}
			if channels == 1 {
				out[oy*size+ox] = byte(0.299*acc[0] + 0.587*acc[1] + 0.114*acc[2] + 0.5)
			} else {
				for k := range 3 {
					out[(k*size+oy)*size+ox] = byte(acc[k] + 0.5)
				}
			}
		}
	}
	return out
}

// LoadFolderAsIs reads every PNG and JPEG image in dir (not recursive) at its
// own size, which must be the same for all of them (an image of another size
// is an error naming it), keeping `channels` channels as LoadFolder does.
func LoadFolderAsIs(dir string, channels int) (Dataset, error) {
	if channels != 1 && channels != 3 {
		return nil, fmt.Errorf("load %s: channels %d (want 1 or 3)", dir, channels)
	}
	names, err := imageNames(dir)
	if err != nil {
		return nil, err
	}
	var m *memory
	for _, n := range names {
		path := filepath.Join(dir, n)
		f, err := os.Open(path)
		if err != nil {
			return nil, err
		}
		img, _, err := image.Decode(f)
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("%s: not a readable PNG or JPEG image: %w", path, err)
		}
		b := img.Bounds()
		if m == nil {
			m = &memory{c: channels, h: b.Dy(), w: b.Dx()}
		} else if b.Dx() != m.w || b.Dy() != m.h {
			return nil, fmt.Errorf("%s: %d×%d pixels, but %s is %d×%d (all images must have one size)",
				path, b.Dx(), b.Dy(), names[0], m.w, m.h)
		}
		if m.w != m.h {
			return nil, fmt.Errorf("%s: %d×%d pixels (want square images)", path, b.Dx(), b.Dy())
		}
		m.pix = append(m.pix, resizeCrop(img, m.w, channels)...)
	}
	return m, nil
}

// imageNames lists the PNG and JPEG files of dir (not recursive), sorted; none
// is an error.
func imageNames(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var names []string
	for _, e := range entries {
		ext := strings.ToLower(filepath.Ext(e.Name()))
		if !e.IsDir() && (ext == ".png" || ext == ".jpg" || ext == ".jpeg") {
			names = append(names, e.Name())
		}
	}
	if len(names) == 0 {
		return nil, fmt.Errorf("load %s: no .png, .jpg or .jpeg images in the folder", dir)
	}
	sort.Strings(names)
	return names, nil
}
