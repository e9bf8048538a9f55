package main

import (
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"

	"github.com/godiffuse/godiffuse/data"
	"github.com/godiffuse/godiffuse/ddpm"
	"github.com/godiffuse/godiffuse/kernels"
	"github.com/godiffuse/godiffuse/tensor"
)

func runNoise(args []string) error {
	fs := newFlags("noise", "Draws one image at several noise levels of the forward process q(x_t | x_0),\n"+
		"side by side: one row per schedule given.")
	img := fs.String("image", "", "a PNG or JPEG image (default: an image of the embedded dataset)")
	index := fs.Int("index", 0, "which embedded image, when -image is not given")
	size := fs.Int("size", 64, "size the -image is resized and cropped to")
	schedules := fs.String("schedule", "linear,cosine", "comma-separated schedules, one row each")
	T := fs.Int("timesteps", 1000, "diffusion steps T")
	levels := fs.String("t", "0,50,100,200,300,500,700,999", "comma-separated timesteps")
	seed := fs.Uint64("seed", 0, "noise seed")
	out := fs.String("out", "noise.png", "PNG to write")
	scale := fs.Int("scale", 3, "enlarge by this factor")
	if err := parse(fs, args); err != nil {
		return err
	}
	switch {
	case *T < 2 || *T > ddpm.MaxTimesteps:
		return fmt.Errorf("-timesteps: want 2 … %d, have %d", ddpm.MaxTimesteps, *T)
	case *size < 1 || *size > maxImageSize:
		return fmt.Errorf("-size: want 1 … %d, have %d", maxImageSize, *size)
	case *scale < 1 || *scale > 16:
		return fmt.Errorf("-scale: want 1 … 16, have %d", *scale)
	}
	if err := checkOutputs("-out", *out); err != nil {
		return err
	}
	var ds data.Dataset
	var err error
	if *img != "" {
		ds, err = data.LoadFile(*img, *size, 3)
		*index = 0
	} else {
		ds, err = data.Embedded()
		if err == nil && (*index < 0 || *index >= ds.Len()) {
			err = fmt.Errorf("-index: want 0 … %d, have %d", ds.Len()-1, *index)
		}
	}
	if err != nil {
		return err
	}
	var ts []int
	for _, f := range strings.Split(*levels, ",") {
		t, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || t < 0 || t >= *T {
			return fmt.Errorf("-t: %q is not a timestep in [0, %d)", f, *T)
		}
		ts = append(ts, t)
	}
	c, h, w := ds.Shape()
	x0 := make([]float32, c*h*w)
	ds.Image(*index%ds.Len(), x0)
	names := strings.Split(*schedules, ",")
	var pix []float32
	dev := kernels.CPU()
	for _, name := range names {
		kind, err := ddpm.ParseBetaSchedule(strings.TrimSpace(name))
		if err != nil {
			return fmt.Errorf("-schedule: %w", err)
		}
		s, err := ddpm.NewSchedule(kind, *T)
		if err != nil {
			return fmt.Errorf("-schedule: %w", err)
		}
		rng := rand.New(rand.NewPCG(*seed, 1))
		batch := make([]float32, 0, len(ts)*len(x0))
		for range ts {
			batch = append(batch, x0...)
		}
		x := tensor.FromFloat32(dev, batch, len(ts), c, h, w)
		// The same noise for every level, so the row shows one trajectory.
		eps := ddpm.Randn(dev, rng, 1, c, h, w)
		eps = tensor.Concat(0, repeat(eps, len(ts))...)
		xt, err := s.AddNoise(x, eps, ts)
		if err != nil {
			return err
		}
		v, err := xt.Float32s()
		if err != nil {
			return err
		}
		pix = append(pix, v...)
	}
	g := grid(pix, len(ts)*len(names), c, h, w, len(ts))
	if err := writePNG(*out, scaleUp(g, *scale)); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "wrote %s: rows %v, columns t = %v\n", *out, names, ts)
	return nil
}

func repeat(t *tensor.Tensor, n int) []*tensor.Tensor {
	out := make([]*tensor.Tensor, n)
	for i := range out {
		out[i] = t
	}
	return out
}
