package main

import (
	"bytes"
	"flag"
	"fmt"
	"image"
	_ "image/jpeg"
	"image/png"
	"math"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/godiffuse/godiffuse/data"
	"github.com/godiffuse/godiffuse/ddpm"
	"github.com/godiffuse/godiffuse/internal/atomicfile"
	"github.com/godiffuse/godiffuse/pipeline"
)

// maskShapes are the built-in masks of -mask-shape (1 = fill in).
var maskShapes = []string{"center", "left", "right", "top", "bottom", "random-strokes"}

// shapeMask returns an h×w mask of a built-in shape: center is the middle
// square of half the side, left … bottom the halves, random-strokes a few
// thick random strokes drawn from seed.
func shapeMask(shape string, h, w int, seed uint64) ([]float32, error) {
	m := make([]float32, h*w)
	set := func(y, x int) {
		if y >= 0 && y < h && x >= 0 && x < w {
			m[y*w+x] = 1
		}
	}
	for y := range h {
		for x := range w {
			fill := false
			switch shape {
			case "center":
				fill = y >= h/4 && y < h/4+(h+1)/2 && x >= w/4 && x < w/4+(w+1)/2
			case "left":
				fill = x < w/2
			case "right":
				fill = x >= w/2
			case "top":
				fill = y < h/2
			case "bottom":
				fill = y >= h/2
			case "random-strokes":
			default:
				return nil, fmt.Errorf("-mask-shape: unknown shape %q (want %s)", shape, strings.Join(maskShapes, ", "))
			}
			if fill {
				m[y*w+x] = 1
			}
		}
	}
	if shape == "random-strokes" {
		r := rand.New(rand.NewPCG(seed, 0x57e0))
		radius := max(1, min(h, w)/14)
		for range 4 {
			y, x := r.Float64()*float64(h), r.Float64()*float64(w)
			angle := r.Float64() * 2 * math.Pi
			for range max(h, w) / 2 {
				for dy := -radius; dy <= radius; dy++ {
					for dx := -radius; dx <= radius; dx++ {
						set(int(y)+dy, int(x)+dx)
					}
				}
				angle += (r.Float64() - 0.5) * 0.6
				y, x = y+math.Sin(angle), x+math.Cos(angle)
			}
		}
	}
	return m, nil
}

// rectMask parses -rect x,y,w,h into an h×w mask (clipped to the image).
func rectMask(spec string, h, w int) ([]float32, error) {
	var v [4]int
	parts := strings.Split(spec, ",")
	if len(parts) != 4 {
		return nil, fmt.Errorf("-rect %q: want x,y,w,h", spec)
	}
	for i, p := range parts {
		n, err := strconv.Atoi(strings.TrimSpace(p))
		if err != nil || n < 0 || (i >= 2 && n == 0) {
			return nil, fmt.Errorf("-rect %q: want four integers x,y,w,h ≥ 0 with w, h ≥ 1", spec)
		}
		v[i] = n
	}
	if v[0] >= w || v[1] >= h {
		return nil, fmt.Errorf("-rect %q: starts outside the %d×%d image", spec, w, h)
	}
	m := make([]float32, h*w)
	for y := v[1]; y < min(h, v[1]+v[3]); y++ {
		for x := v[0]; x < min(w, v[0]+v[2]); x++ {
			m[y*w+x] = 1
		}
	}
	return m, nil
}

// pngMask reads a mask image: white (grey ≥ 50 %) fills in, black keeps;
// an image of another size is resized to h×w by nearest neighbour, and
// resized reports it.
func pngMask(path string, h, w int) (m []float32, resized bool, err error) {
	img, err := readImage("-mask", path)
	if err != nil {
		return nil, false, err
	}
	b := img.Bounds()
	return pipeline.MaskValues(img, w, h), b.Dx() != w || b.Dy() != h, nil
}

// maskFlags are -mask, -rect and -mask-shape, of which a command takes one.
type maskFlags struct{ path, rect, shape *string }

func addMaskFlags(fs *flag.FlagSet, pixels string) maskFlags {
	return maskFlags{
		path:  fs.String("mask", "", "mask image: white fills in, black keeps (grey thresholded at 50 %, resized to the image by nearest neighbour)"),
		rect:  fs.String("rect", "", "or: fill the rectangle x,y,w,h (in "+pixels+" pixels)"),
		shape: fs.String("mask-shape", "", "or: a built-in mask: "+strings.Join(maskShapes, ", ")),
	}
}

func (m maskFlags) oneGiven() bool {
	n := 0
	for _, s := range []*string{m.path, m.rect, m.shape} {
		if *s != "" {
			n++
		}
	}
	return n == 1
}

// values makes the h×w mask from whichever flag was given (seed draws the
// random strokes).
func (m maskFlags) values(h, w int, seed uint64) ([]float32, error) {
	switch {
	case *m.path != "":
		v, resized, err := pngMask(*m.path, h, w)
		if err == nil && resized {
			fmt.Fprintf(os.Stderr, "note: -mask is not %d×%d: resized to the image by nearest neighbour\n", w, h)
		}
		return v, err
	case *m.rect != "":
		return rectMask(*m.rect, h, w)
	}
	return shapeMask(*m.shape, h, w, seed)
}

// usesModel reports a -model flag among args: a Stable Diffusion run.
func usesModel(args []string) bool { return usesFlag(args, "model") }

// usesFlag reports whether args set the flag name (-name, --name, -name=…).
func usesFlag(args []string, name string) bool {
	for _, a := range args {
		if n, _, _ := strings.Cut(strings.TrimLeft(a, "-"), "="); strings.HasPrefix(a, "-") && n == name {
			return true
		}
	}
	return false
}

// runInpaintSD is diffuse inpaint -model: Stable Diffusion's inpainting
// (latent masking, or the folder's inpainting U-Net).
func runInpaintSD(args []string) error {
	fs := newFlags("inpaint", "With -model, repaints the masked part of an image with a Stable Diffusion folder as diffusers'\n"+
		"StableDiffusionInpaintPipeline does: an inpainting U-Net (in_channels 9) sees the mask and the masked image;\n"+
		"any other model keeps the latents outside the mask (latent masking).")
	var f sdFlags
	addSDFlags(fs, &f)
	in := fs.String("image", "", "input image (PNG or JPEG); resized to -width×-height when given")
	mf := addMaskFlags(fs, "the input's")
	strength := fs.Float64("strength", 1, "0 < strength ≤ 1: 1 starts the masked part from pure noise")
	if err := parse(fs, args); err != nil {
		return err
	}
	if err := f.check(); err != nil {
		return err
	}
	switch {
	case *in == "":
		return fmt.Errorf("-image: give the input image")
	case !mf.oneGiven():
		return fmt.Errorf("give exactly one of -mask, -rect and -mask-shape")
	case !(*strength > 0 && *strength <= 1):
		return fmt.Errorf("-strength %v: want 0 < strength ≤ 1", *strength)
	}
	img, err := readImage("-image", *in)
	if err != nil {
		return err
	}
	h, w := img.Bounds().Dy(), img.Bounds().Dx()
	m, err := mf.values(h, w, f.seed) // at the input's size
	if err != nil {
		return err
	}
	mask := image.NewGray(image.Rect(0, 0, w, h))
	for i, v := range m {
		mask.Pix[i] = uint8(255 * v)
	}
	if !slices.Contains(m, 1) { // nothing to repaint: the input, as it is
		fmt.Fprintln(os.Stderr, "note: the mask is all black: nothing to repaint; writing the input unchanged")
		var buf bytes.Buffer
		if err := png.Encode(&buf, img); err != nil {
			return err
		}
		return atomicfile.Write(f.out, buf.Bytes())
	}
	return generate(&f, "inpaint", func(p *pipeline.Pipeline, o pipeline.Options) (*pipeline.Result, error) {
		return p.Inpaint(pipeline.InpaintOptions{Options: o, Image: img, Mask: mask, Strength: *strength})
	})
}

// modelInput reads -image as a c×size×size model input in [-1, 1],
// resized, centre-cropped and converted (grey ↔ RGB) when it differs, with
// a note saying so.
func modelInput(path string, c, size int) ([]float32, error) {
	if cfg, _, err := decodeConfig(path); err != nil {
		return nil, fmt.Errorf("-image: %w", err)
	} else if cfg.Width != size || cfg.Height != size {
		fmt.Fprintf(os.Stderr, "note: -image is %d×%d; the model makes %d×%d×%d images, so it is resized (and centre-cropped)\n", cfg.Width, cfg.Height, c, size, size)
	}
	ds, err := data.LoadFile(path, size, c)
	if err != nil {
		return nil, fmt.Errorf("-image: %w", err)
	}
	input := make([]float32, c*size*size)
	ds.Image(0, input)
	return input, nil
}

// setConditioning sets the labels of a run that starts from an image: all
// of class, or the null label (unconditional) when class is empty.
func (spec *sampleSpec) setConditioning(info ddpm.CheckpointInfo, class string) error {
	if class != "" {
		return spec.setClass(info, class)
	}
	if len(info.Classes) > 0 {
		spec.null = info.NullClass()
		for range spec.n {
			spec.labels = append(spec.labels, spec.null)
		}
	}
	return nil
}

// decodeConfig reads an image file's size without decoding it.
func decodeConfig(path string) (image.Config, string, error) {
	f, err := os.Open(path)
	if err != nil {
		return image.Config{}, "", err
	}
	defer f.Close()
	cfg, format, err := image.DecodeConfig(f)
	if err != nil {
		return cfg, "", fmt.Errorf("%s: not a readable PNG or JPEG image: %w", path, err)
	}
	return cfg, format, nil
}
