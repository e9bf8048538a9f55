package main

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	"image/color/palette"
	"image/draw"
	"image/gif"
	"image/png"
	"math"

	"github.com/godiffuse/godiffuse/internal/atomicfile"
)

// toByte maps [-1, 1] to 0…255.
func toByte(v float32) uint8 {
	x := math.Round(float64(v+1) * 127.5)
	return uint8(min(max(x, 0), 255))
}

// grid lays out n images (C, H, W each, values in [-1, 1]) in rows of `cols`
// with a 2-pixel border.
func grid(pix []float32, n, c, h, w, cols int) *image.RGBA {
	if cols <= 0 {
		cols = int(math.Ceil(math.Sqrt(float64(n))))
	}
	rows := (n + cols - 1) / cols
	const pad = 2
	img := image.NewRGBA(image.Rect(0, 0, cols*(w+pad)+pad, rows*(h+pad)+pad))
	draw.Draw(img, img.Bounds(), &image.Uniform{color.RGBA{40, 40, 40, 255}}, image.Point{}, draw.Src)
	for i := range n {
		x0, y0 := pad+(i%cols)*(w+pad), pad+(i/cols)*(h+pad)
		drawImage(img, pix[i*c*h*w:(i+1)*c*h*w], c, h, w, x0, y0)
	}
	return img
}

func drawImage(dst *image.RGBA, p []float32, c, h, w, x0, y0 int) {
	for y := range h {
		for x := range w {
			var r, g, b uint8
			if c >= 3 {
				r, g, b = toByte(p[y*w+x]), toByte(p[(h+y)*w+x]), toByte(p[(2*h+y)*w+x])
			} else {
				r = toByte(p[y*w+x])
				g, b = r, r
			}
			dst.SetRGBA(x0+x, y0+y, color.RGBA{r, g, b, 255})
		}
	}
}

// scaleUp enlarges an image by an integer factor (nearest), so 28×28 grids are visible.
func scaleUp(src *image.RGBA, k int) *image.RGBA {
	if k <= 1 {
		return src
	}
	b := src.Bounds()
	dst := image.NewRGBA(image.Rect(0, 0, b.Dx()*k, b.Dy()*k))
	for y := range b.Dy() * k {
		for x := range b.Dx() * k {
			dst.SetRGBA(x, y, src.RGBAAt(x/k, y/k))
		}
	}
	return dst
}

// writePNG encodes img and writes it atomically.
func writePNG(path string, img image.Image) error {
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		return fmt.Errorf("encode %s: %w", path, err)
	}
	return atomicfile.Write(path, buf.Bytes())
}

// writeGIF writes frames as an animated GIF (delay in 1/100 s), atomically.
func writeGIF(path string, frames []*image.RGBA, delay int) error {
	anim := &gif.GIF{}
	for i, f := range frames {
		p := image.NewPaletted(f.Bounds(), palette.Plan9)
		draw.FloydSteinberg.Draw(p, f.Bounds(), f, image.Point{})
		d := delay
		if i == len(frames)-1 {
			d = 200 // hold the final frame
		}
		anim.Image = append(anim.Image, p)
		anim.Delay = append(anim.Delay, d)
	}
	var buf bytes.Buffer
	if err := gif.EncodeAll(&buf, anim); err != nil {
		return fmt.Errorf("encode %s: %w", path, err)
	}
	return atomicfile.Write(path, buf.Bytes())
}
