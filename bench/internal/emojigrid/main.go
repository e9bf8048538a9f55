// Command emojigrid samples a text-to-image pipeline trained on the emoji
// (diffuse train -data emoji, issue 19) for names it was trained on and for
// names it never saw, and draws them as a grid: for each name the training
// image when there is one, then the samples, the name above. For every
// sample it finds the nearest training emoji (pixel distance over all of
// them) and prints a markdown table: how often that is the prompted emoji
// (memorised recall), and for unseen names which trained emoji the sample
// resembles.
//
//	go run ./bench/internal/emojigrid -model out/checkpoint -grid bench/emoji_grid.png
package main

import (
	"flag"
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"image/png"
	"io"
	"log"
	"slices"
	"strings"

	"golang.org/x/image/font"
	"golang.org/x/image/font/basicfont"
	"golang.org/x/image/math/fixed"

	"github.com/godiffuse/godiffuse/data"
	"github.com/godiffuse/godiffuse/ddpm"
	"github.com/godiffuse/godiffuse/device"
	"github.com/godiffuse/godiffuse/internal/atomicfile"
	"github.com/godiffuse/godiffuse/pipeline"
	"github.com/godiffuse/godiffuse/safety"
)

// Trained names: a spread over the groups (faces, animals, food, nature,
// objects, symbols) and some colour pairs (red/green apple, red/blue heart).
var seen = []string{
	"grinning face", "face with tears of joy", "smiling face with sunglasses", "pile of poo",
	"cat face", "dog face", "rabbit face", "ghost",
	"red apple", "green apple", "banana", "pineapple",
	"red heart", "blue heart", "yellow circle", "green square",
	"fire", "rainbow", "evergreen tree", "rocket",
}

// Unseen names: new combinations of words that the training names use
// ("blue heart", "red apple" → "blue apple"; "pink heart", "red circle" →
// "pink circle"; "green book", "yellow heart" → "yellow book"; "grinning
// cat", "dog face" → "grinning dog"; "star", "red heart" → "red star").
var unseen = []string{"blue apple", "pink circle", "yellow book", "grinning dog", "red star"}

func main() {
	model := flag.String("model", "out/checkpoint", "pipeline folder written by diffuse train -data emoji")
	gridPath := flag.String("grid", "bench/emoji_grid.png", "output PNG")
	guidance := flag.Float64("guidance", 3, "classifier-free guidance scale")
	steps := flag.Int("steps", 20, "sampler steps (DPM-Solver++ 2M)")
	perName := flag.Int("n", 3, "samples per name")
	flag.Parse()
	dev, _, err := device.Select("cpu")
	if err != nil {
		log.Fatal(err)
	}
	p, err := pipeline.Load(dev, *model)
	if err != nil {
		log.Fatal(err)
	}
	ds, err := data.LoadEmoji(data.NotoEmojiFont, data.EmojiTestFile, data.ShapesSize)
	if err != nil {
		log.Fatal(err)
	}
	size := data.ShapesSize
	real := make([][]float32, ds.Len())
	index := map[string]int{}
	for i := range ds.Len() {
		real[i] = make([]float32, 3*size*size)
		ds.Image(i, real[i])
		index[ds.Caption(i)] = i
	}
	names := append(slices.Clone(seen), unseen...)
	var rows []row
	hits, total := 0, 0
	fmt.Printf("guidance %g, %d steps, %d samples per name; nearest training emoji of each sample (pixel L2 over all %d):\n\n", *guidance, *steps, *perName, ds.Len())
	fmt.Println("| name | trained | nearest training emoji of each sample |\n|---|---|---|")
	for _, name := range names {
		r := row{name: name, trainIdx: -1}
		if i, ok := index[name]; ok {
			r.trainIdx = i
		}
		res, err := p.Generate(pipeline.Options{Prompt: name, Steps: *steps, Guidance: *guidance, Sampler: ddpm.SigmaDPMPP2M,
			Seed: 1, N: *perName, Width: size, Height: size, NoWatermark: true, SafetyPolicy: safety.Off})
		if err != nil {
			log.Fatalf("%q: %v", name, err)
		}
		var near []string
		for _, img := range res.Images {
			x := toFloats(img)
			r.samples = append(r.samples, x)
			k := nearest(x, real)
			near = append(near, ds.Caption(k))
			if r.trainIdx >= 0 {
				total++
				if k == r.trainIdx {
					hits++
				}
			}
		}
		trained := "no"
		if r.trainIdx >= 0 {
			trained = "yes"
		}
		fmt.Printf("| %s | %s | %s |\n", name, trained, strings.Join(near, "; "))
		rows = append(rows, r)
	}
	fmt.Printf("\ntrained names: the nearest training emoji is the prompted one for %d of %d samples\n", hits, total)
	if err := writeGrid(*gridPath, rows, real, size); err != nil {
		log.Fatal(err)
	}
	fmt.Println("wrote", *gridPath)
}

type row struct {
	name     string
	trainIdx int // -1: not a training name
	samples  [][]float32
}

// toFloats turns an RGB image into 3×H×W values in [-1, 1].
func toFloats(img *image.NRGBA) []float32 {
	b := img.Bounds()
	n := b.Dx() * b.Dy()
	out := make([]float32, 3*n)
	for y := range b.Dy() {
		for x := range b.Dx() {
			c := img.NRGBAAt(b.Min.X+x, b.Min.Y+y)
			p := y*b.Dx() + x
			out[p], out[n+p], out[2*n+p] = float32(c.R)/127.5-1, float32(c.G)/127.5-1, float32(c.B)/127.5-1
		}
	}
	return out
}

// nearest is the index of the training image closest to x (squared L2).
func nearest(x []float32, real [][]float32) int {
	best, bestD := 0, float32(-1)
	for i, r := range real {
		var d float32
		for k, v := range r {
			e := v - x[k]
			d += e * e
		}
		if bestD < 0 || d < bestD {
			best, bestD = i, d
		}
	}
	return best
}

// writeGrid draws one row per name: the name, then the training image (a
// grey cell for unseen names) in a blue frame, then the samples.
func writeGrid(path string, rows []row, real [][]float32, size int) error {
	const scale, nameW, pad = 3, 200, 6
	side := size * scale
	cols := 1
	for _, r := range rows {
		cols = max(cols, 1+len(r.samples))
	}
	cellH := side + pad
	out := image.NewRGBA(image.Rect(0, 0, nameW+cols*(side+pad), pad+len(rows)*cellH+20))
	draw.Draw(out, out.Bounds(), image.White, image.Point{}, draw.Src)
	d := font.Drawer{Dst: out, Src: image.Black, Face: basicfont.Face7x13}
	d.Dot = fixed.P(nameW, 14)
	d.DrawString("training image | samples")
	for i, r := range rows {
		y0 := 20 + i*cellH
		label := r.name
		if r.trainIdx < 0 {
			label += " (unseen)"
		}
		d.Dot = fixed.P(4, y0+side/2+4)
		d.DrawString(label)
		x0 := nameW
		draw.Draw(out, image.Rect(x0-2, y0-2, x0+side+2, y0+side+2), &image.Uniform{color.RGBA{60, 90, 200, 255}}, image.Point{}, draw.Src)
		if r.trainIdx >= 0 {
			blit(out, real[r.trainIdx], x0, y0, size, scale)
		} else {
			draw.Draw(out, image.Rect(x0, y0, x0+side, y0+side), &image.Uniform{color.RGBA{220, 220, 220, 255}}, image.Point{}, draw.Src)
		}
		for k, s := range r.samples {
			blit(out, s, x0+(k+1)*(side+pad), y0, size, scale)
		}
	}
	return atomicfile.WriteWith(path, func(w io.Writer) error { return png.Encode(w, out) })
}

// blit draws a 3×size×size image in [-1, 1] at (x0, y0), scaled up.
func blit(dst *image.RGBA, img []float32, x0, y0, size, scale int) {
	n := size * size
	for y := range size * scale {
		for x := range size * scale {
			p := (y/scale)*size + x/scale
			var c [3]uint8
			for k := range 3 {
				c[k] = uint8(max(0, min(255, (img[k*n+p]+1)*127.5+0.5)))
			}
			dst.SetRGBA(x0+x, y0+y, color.RGBA{c[0], c[1], c[2], 255})
		}
	}
}
