package watermark

import (
	"bytes"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"math"
	"math/bits"
	"math/rand/v2"
	"os"
	"strconv"
	"testing"

	"golang.org/x/image/draw"

	"github.com/godiffuse/godiffuse/data"
)

// naturalImage is a colour image with the statistics of natural images:
// hard-edged shapes (a dozen random rectangles of random colours) under
// fractal value noise with the same amplitude in every octave (a 1/f
// amplitude spectrum: random grids of 2^k cells, bilinearly interpolated),
// with no periodicity a tiled pattern could lock onto.
func naturalImage(r *rand.Rand, size int) *image.NRGBA {
	img := image.NewNRGBA(image.Rect(0, 0, size, size))
	v := make([][3]float64, size*size)
	for range 12 {
		x0, y0 := r.IntN(size), r.IntN(size)
		x1, y1 := min(size, x0+r.IntN(size/2)+8), min(size, y0+r.IntN(size/2)+8)
		col := [3]float64{r.Float64()*160 - 80, r.Float64()*160 - 80, r.Float64()*160 - 80}
		for y := y0; y < y1; y++ {
			for x := x0; x < x1; x++ {
				v[y*size+x] = col
			}
		}
	}
	for c := range 3 {
		for cs := size / 2; cs >= 2; cs /= 2 {
			g := size/cs + 2
			grid := make([]float64, g*g)
			for i := range grid {
				grid[i] = r.NormFloat64()
			}
			const amp = 12.0
			for y := range size {
				fy := float64(y) / float64(cs)
				y0, ty := int(fy), fy-math.Floor(fy)
				for x := range size {
					fx := float64(x) / float64(cs)
					x0, tx := int(fx), fx-math.Floor(fx)
					a := grid[y0*g+x0]*(1-tx) + grid[y0*g+x0+1]*tx
					b := grid[(y0+1)*g+x0]*(1-tx) + grid[(y0+1)*g+x0+1]*tx
					v[y*size+x][c] += amp * (a*(1-ty) + b*ty)
				}
			}
		}
	}
	for i, p := range v {
		img.Pix[4*i], img.Pix[4*i+1], img.Pix[4*i+2], img.Pix[4*i+3] = clamp(128+p[0]), clamp(128+p[1]), clamp(128+p[2]), 255
	}
	return img
}

func clamp(v float64) uint8 { return uint8(min(max(math.Round(v), 0), 255)) }

func jpegRoundTrip(img image.Image, q int) image.Image {
	var buf bytes.Buffer
	jpeg.Encode(&buf, img, &jpeg.Options{Quality: q})
	out, _ := jpeg.Decode(&buf)
	return out
}

func resizeRoundTrip(img image.Image, f float64) image.Image {
	b := img.Bounds()
	small := image.NewNRGBA(image.Rect(0, 0, int(float64(b.Dx())*f), int(float64(b.Dy())*f)))
	draw.CatmullRom.Scale(small, small.Bounds(), img, b, draw.Src, nil)
	back := image.NewNRGBA(image.Rect(0, 0, b.Dx(), b.Dy()))
	draw.CatmullRom.Scale(back, back.Bounds(), small, small.Bounds(), draw.Src, nil)
	return back
}

func crop(img image.Image, frac float64) image.Image {
	b := img.Bounds()
	dx, dy := int(float64(b.Dx())*frac/2), int(float64(b.Dy())*frac/2)
	out := image.NewNRGBA(image.Rect(0, 0, b.Dx()-2*dx, b.Dy()-2*dy))
	draw.Draw(out, out.Bounds(), img, image.Pt(b.Min.X+dx, b.Min.Y+dy), draw.Src)
	return out
}

func brightness(img image.Image, f float64) image.Image {
	b := img.Bounds()
	out := image.NewNRGBA(image.Rect(0, 0, b.Dx(), b.Dy()))
	for y := range b.Dy() {
		for x := range b.Dx() {
			c := color.NRGBAModel.Convert(img.At(b.Min.X+x, b.Min.Y+y)).(color.NRGBA)
			out.SetNRGBA(x, y, color.NRGBA{clamp(float64(c.R) * f), clamp(float64(c.G) * f), clamp(float64(c.B) * f), 255})
		}
	}
	return out
}

func psnr(a, b image.Image) float64 {
	bb := a.Bounds()
	se := 0.0
	for y := range bb.Dy() {
		for x := range bb.Dx() {
			r1, g1, b1, _ := a.At(bb.Min.X+x, bb.Min.Y+y).RGBA()
			r2, g2, b2, _ := b.At(x, y).RGBA()
			for _, d := range [3]float64{float64(r1>>8) - float64(r2>>8), float64(g1>>8) - float64(g2>>8), float64(b1>>8) - float64(b2>>8)} {
				se += d * d
			}
		}
	}
	return 10 * math.Log10(255*255/(se/float64(3*bb.Dx()*bb.Dy())))
}

// fmnistImage is Fashion-MNIST test image i enlarged to size×size (Catmull-Rom), grey as RGB.
func fmnistImage(t *testing.T, ds data.Dataset, i, size int) *image.NRGBA {
	buf := make([]float32, 28*28)
	ds.Image(i%ds.Len(), buf)
	g := image.NewGray(image.Rect(0, 0, 28, 28))
	for k, v := range buf {
		g.Pix[k] = uint8((v + 1) * 127.5)
	}
	out := image.NewNRGBA(image.Rect(0, 0, size, size))
	draw.CatmullRom.Scale(out, out.Bounds(), g, g.Bounds(), draw.Src, nil)
	return out
}

// TestWatermarkRobustness embeds and detects on 512×512 images of natural
// statistics and on enlarged Fashion-MNIST test images, under each attack;
// GODIFFUSE_WATERMARK_N sets the image count per source (10 in CI; the
// bench/RESULTS.md table uses 500).
func TestWatermarkRobustness(t *testing.T) {
	n := 10
	if s := os.Getenv("GODIFFUSE_WATERMARK_N"); s != "" {
		n, _ = strconv.Atoi(s)
	}
	ds, err := data.LoadIDX("../features/testdata/t10k-images-idx3-ubyte.gz", "../features/testdata/t10k-labels-idx1-ubyte.gz", data.FashionMNISTClasses)
	if err != nil {
		t.Fatal(err)
	}
	for _, src := range []string{"natural", "fmnist"} {
		t.Run(src, func(t *testing.T) { robustness(t, src, ds, n) })
	}
}

func robustness(t *testing.T, src string, ds data.Dataset, n int) {
	attacks := []struct {
		name string
		f    func(image.Image) image.Image
		min  float64 // required bit accuracy
	}{
		{"png", func(i image.Image) image.Image { return i }, 1},
		{"jpeg75", func(i image.Image) image.Image { return jpegRoundTrip(i, 75) }, 0.95},
		{"resize0.5", func(i image.Image) image.Image { return resizeRoundTrip(i, 0.5) }, 0.90},
		{"crop10%", func(i image.Image) image.Image { return crop(i, 0.1) }, 0.90},
		{"bright+10%", func(i image.Image) image.Image { return brightness(i, 1.1) }, 0.90},
		{"bright-10%", func(i image.Image) image.Image { return brightness(i, 0.9) }, 0.90},
	}
	r := rand.New(rand.NewPCG(1, 2))
	correct := make([]int, len(attacks))
	found := make([]int, len(attacks))
	falsePos, minPSNR := 0, math.Inf(1)
	for i := range n {
		img := naturalImage(r, 512)
		if src == "fmnist" {
			img = fmnistImage(t, ds, i, 512)
		}
		payload := PayloadFor("model", uint64(i))
		wm, err := Embed(img, payload)
		if err != nil {
			t.Fatal(err)
		}
		minPSNR = min(minPSNR, psnr(img, wm))
		if Detect(img).Present {
			falsePos++
		}
		for k, a := range attacks {
			d := Detect(a.f(wm))
			correct[k] += 48 - bits.OnesCount64((d.Payload^payload)&(1<<48-1))
			if d.Present && d.Payload == payload&(1<<48-1) {
				found[k]++
			}
		}
	}
	t.Logf("%d %s 512×512 images: PSNR ≥ %.1f dB, false positives on unmarked %d", n, src, minPSNR, falsePos)
	for k, a := range attacks {
		acc := float64(correct[k]) / float64(48*n)
		t.Logf("%-11s bit accuracy %.2f %%, payload recovered %d/%d", a.name, 100*acc, found[k], n)
		if acc < a.min {
			t.Errorf("%s: bit accuracy %.3f, want ≥ %.2f", a.name, acc, a.min)
		}
	}
	if minPSNR < 38 {
		t.Errorf("PSNR %.1f dB, want ≥ 38", minPSNR)
	}
	if falsePos > 0 {
		t.Errorf("%d false positives", falsePos)
	}
}

// TestSmallImages: Embed refuses what cannot carry the mark reliably.
func TestSmallImages(t *testing.T) {
	if _, err := Embed(image.NewNRGBA(image.Rect(0, 0, 32, 32)), Payload(1)); err == nil {
		t.Error("a 32×32 image was watermarked")
	}
	if d := Detect(image.NewNRGBA(image.Rect(0, 0, 32, 32))); d.Present {
		t.Error("a watermark was found in a blank 32×32 image")
	}
}

// FuzzDetect: any decodable image, of any size, is read without a panic,
// and a blank one never shows a watermark.
func FuzzDetect(f *testing.F) {
	for _, size := range [][2]int{{1, 1}, {64, 32}, {65, 33}, {128, 128}, {300, 40}} {
		var buf bytes.Buffer
		png.Encode(&buf, image.NewGray(image.Rect(0, 0, size[0], size[1])))
		f.Add(buf.Bytes())
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := png.DecodeConfig(bytes.NewReader(data))
		if err != nil || cfg.Width*cfg.Height > 1<<20 {
			return
		}
		img, err := png.Decode(bytes.NewReader(data))
		if err != nil {
			return
		}
		_ = Detect(img)
	})
}
