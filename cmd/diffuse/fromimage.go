package main

import (
	"flag"
	"fmt"
	"image"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/godiffuse/godiffuse/ddpm"
	"github.com/godiffuse/godiffuse/nn"
	"github.com/godiffuse/godiffuse/tensor"
)

// imageRun is what the commands that start from an image with a checkpoint
// of this engine share (inpaint and img2img -checkpoint): their flags, and
// after load the model, its image shape and the input image.
type imageRun struct {
	spec                      sampleSpec
	ckpt, imgPath, class, out *string
	noEMA                     *bool
	clip                      *float64
	scale                     *int
	device                    deviceFlags
	output                    outputFlags
	m                         *nn.UNet2D
	info                      ddpm.CheckpointInfo
	c, h, w                   int
	input                     []float32 // the image, c×h×w in [-1, 1]
}

func addImageRunFlags(fs *flag.FlagSet, r *imageRun, out, nHelp string) {
	r.ckpt = fs.String("checkpoint", "out/checkpoint", "checkpoint folder (written by diffuse train)")
	r.noEMA = fs.Bool("no-ema", false, "use the raw weights instead of the EMA ones")
	r.imgPath = fs.String("image", "", "PNG or JPEG input (resized and converted to the model's size and channels)")
	samplerFlags(fs, &r.spec)
	fs.IntVar(&r.spec.n, "n", 1, nHelp)
	r.class = fs.String("class", "", "class name or index for a class-conditional model (default: unconditional)")
	r.clip = fs.Float64("clip", 1, "clamp the predicted x0 to [-clip, clip] (0: off)")
	r.out = fs.String("out", out, "PNG of the results (a grid when -n > 1)")
	r.scale = fs.Int("scale", 4, "enlarge images by this factor in the PNGs (and the GIF)")
	r.device = deviceFlag(fs)
	r.output = addOutputFlags(fs, "auto")
}

// check validates the shared flags; outputs are more (flag, path) pairs
// whose folders must exist.
func (r *imageRun) check(outputs ...string) error {
	switch {
	case *r.imgPath == "":
		return fmt.Errorf("-image: give the input image")
	case r.spec.n < 1 || r.spec.n > 256:
		return fmt.Errorf("-n: want 1 … 256, have %d", r.spec.n)
	case *r.scale < 1 || *r.scale > 16:
		return fmt.Errorf("-scale: want 1 … 16, have %d", *r.scale)
	}
	r.spec.clip = float32(*r.clip)
	if math.IsNaN(*r.clip) || math.IsInf(*r.clip, 0) {
		r.spec.clip = -1 // refused by check
	}
	if err := r.spec.check(); err != nil {
		return err
	}
	if err := checkOutputs(append([]string{"-out", *r.out}, outputs...)...); err != nil {
		return err
	}
	_, err := r.output.check()
	return err
}

// load picks the device, loads the checkpoint, the input image and the
// labels (task names the command in errors).
func (r *imageRun) load(task string) error {
	dev, err := pickDevice(r.device)
	if err != nil {
		return err
	}
	if r.m, r.info, err = ddpm.LoadCheckpoint(dev, *r.ckpt, !*r.noEMA); err != nil {
		return err
	}
	r.c = r.m.Config.InChannels
	r.h, r.w, _ = r.m.Config.SampleHW()
	if r.h != r.w || (r.c != 1 && r.c != 3) {
		return fmt.Errorf("%s: %s takes square grey or RGB models; this one makes %d×%d×%d images", *r.ckpt, task, r.c, r.h, r.w)
	}
	if r.input, err = modelInput(*r.imgPath, r.c, r.h); err != nil {
		return err
	}
	return r.spec.setConditioning(r.info, *r.class)
}

// repeated is the input image n times, as a (n, c, h, w) tensor's values.
func (r *imageRun) repeated() []float32 {
	var v []float32
	for range r.spec.n {
		v = append(v, r.input...)
	}
	return v
}

// provenance is the record of the run's images.
func (r *imageRun) provenance(task string, extra map[string]any) provenance {
	p := newProvenance(task)
	p.Model, p.ModelHash = filepath.Base(filepath.Clean(*r.ckpt)), fileHash(filepath.Join(r.info.Dir, "unet_ema", nn.WeightsFile))
	p.Sampler, p.Steps, p.Guidance, p.Seed, p.Class = r.spec.sampler, r.spec.steps, r.spec.guidance, r.spec.seed, *r.class
	extra["image"] = *r.imgPath
	p.Extra = extra
	return p
}

// finish screens and writes the results grid.
func (r *imageRun) finish(task string, pix []float32, extra map[string]any) ([]float32, error) {
	checker, err := r.output.loadChecker(r.m.Device)
	if err != nil {
		return nil, err
	}
	return writeGrid(*r.out, pix, r.spec.n, r.c, r.h, r.w, *r.scale, r.provenance(task, extra), r.output, checker)
}

func runInpaint(args []string) error {
	if usesModel(args) {
		return runInpaintSD(args)
	}
	fs := newFlags("inpaint", "Fills in the masked part of an image with a checkpoint's model, keeping the rest exactly.\n"+
		"Methods: repaint (RePaint's resampling, the best), replace (the kept part noised to each step's level),\n"+
		"replace-clean (the seed's variant: the clean kept part pasted at every level; it drifts, for teaching).\n"+
		"With -model DIR instead: Stable Diffusion inpainting (see diffuse inpaint -model x -h).")
	var r imageRun
	addImageRunFlags(fs, &r, "inpainted.png", "fillings to make (different noise)")
	mf := addMaskFlags(fs, "the model's")
	method := fs.String("method", ddpm.InpaintRePaint, strings.Join(ddpm.InpaintMethods, ", "))
	jump := fs.Int("jump", ddpm.DefaultJump, "RePaint: steps to jump back")
	resample := fs.Int("resample", ddpm.DefaultResample, "RePaint: resamplings at each jump point")
	side := fs.String("side-by-side", "", "also write a PNG of input, mask, masked input and results in a row")
	gifPath := fs.String("gif", "", "also write an animated GIF of the trajectory")
	if err := parse(fs, args); err != nil {
		return err
	}
	switch {
	case *r.imgPath == "":
		return fmt.Errorf("-image: the image to fill in is missing")
	case !mf.oneGiven():
		return fmt.Errorf("give exactly one of -mask, -rect and -mask-shape")
	case !slices.Contains(ddpm.InpaintMethods, *method):
		return fmt.Errorf("-method: unknown method %q (want %s)", *method, strings.Join(ddpm.InpaintMethods, ", "))
	case *jump < 1 || *jump > ddpm.MaxTimesteps:
		return fmt.Errorf("-jump: want 1 … %d, have %d", ddpm.MaxTimesteps, *jump)
	case *resample < 1 || *resample > 100:
		return fmt.Errorf("-resample: want 1 … 100, have %d", *resample)
	}
	if err := r.check("-side-by-side", *side, "-gif", *gifPath); err != nil {
		return err
	}
	if err := r.load("inpainting"); err != nil {
		return err
	}
	c, h, w, n := r.c, r.h, r.w, r.spec.n
	mask, err := mf.values(h, w, r.spec.seed)
	if err != nil {
		return err
	}
	if !slices.Contains(mask, 1) {
		fmt.Fprintln(os.Stderr, "note: the mask is all black: nothing to fill in; the results are the input")
	}
	var masks []float32 // the mask over the batch and the channels
	for range n * c {
		masks = append(masks, mask...)
	}
	dev := r.m.Device
	opts := ddpm.InpaintOptions{Method: *method, Jump: *jump, Resample: *resample,
		Image: tensor.FromFloat32(dev, r.repeated(), n, c, h, w), Mask: tensor.FromFloat32(dev, masks, n, c, h, w)}
	inpaint := func(s *ddpm.Schedule, sm ddpm.Sampler, model ddpm.Model, xT *tensor.Tensor, rng *rand.Rand, opt ddpm.SampleOptions) (*tensor.Tensor, error) {
		return ddpm.Inpaint(s, sm, model, xT, rng, opt, opts)
	}
	var frames []*image.RGBA
	var onStep func(int, []float32)
	if *gifPath != "" {
		onStep = func(i int, x []float32) { frames = append(frames, scaleUp(grid(x, n, c, h, w, 0), *r.scale)) }
	}
	pix, err := runImages(r.m, r.info.Schedule, r.info.Objective, r.spec, onStep, inpaint)
	if err != nil {
		return err
	}
	extra := map[string]any{"method": *method, "jump": *jump, "resample": *resample}
	pix, withheld := r.finish("inpaint", pix, extra)
	if pix == nil {
		return withheld
	}
	if *side != "" {
		maskImg, masked := make([]float32, c*h*w), make([]float32, c*h*w)
		for ch := range c {
			for i, v := range mask {
				maskImg[ch*h*w+i] = 2*v - 1 // white = fill
				masked[ch*h*w+i] = r.input[ch*h*w+i] * (1 - v)
			}
		}
		row := append(append(append(slices.Clone(r.input), maskImg...), masked...), pix...)
		sp := r.provenance("inpaint", extra)
		sp.Images = 3 + n
		if err := writeImage(*side, scaleUp(grid(row, 3+n, c, h, w, 3+n), *r.scale), parametersText(sp), sp, r.output); err != nil {
			return err
		}
		fmt.Fprintln(os.Stderr, "wrote", *side, "(input, mask, masked input, results)")
	}
	if *gifPath != "" && withheld == nil {
		if err := writeGIF(*gifPath, frames, 12); err != nil {
			return err
		}
		fmt.Fprintf(os.Stderr, "wrote %s (%d frames)\n", *gifPath, len(frames))
	}
	return withheld
}

// runImg2ImgCheckpoint is diffuse img2img -checkpoint: SDEdit with a
// checkpoint's pixel-space model.
func runImg2ImgCheckpoint(args []string) error {
	fs := newFlags("img2img", "With -checkpoint: SDEdit (Meng et al.): the image is noised to -strength of the way and\n"+
		"denoised by the checkpoint's model, so small strengths keep it and 1 redraws it.")
	var r imageRun
	addImageRunFlags(fs, &r, "img2img.png", "images to make (different noise)")
	strength := fs.Float64("strength", 0.6, "0 < strength ≤ 1: how far into the noise the image is taken")
	if err := parse(fs, args); err != nil {
		return err
	}
	if !(*strength > 0 && *strength <= 1) {
		return fmt.Errorf("-strength %v: want 0 < strength ≤ 1", *strength)
	}
	if err := r.check(); err != nil {
		return err
	}
	if err := r.load("img2img"); err != nil {
		return err
	}
	x0 := tensor.FromFloat32(r.m.Device, r.repeated(), r.spec.n, r.c, r.h, r.w)
	sdedit := func(s *ddpm.Schedule, sm ddpm.Sampler, model ddpm.Model, _ *tensor.Tensor, rng *rand.Rand, opt ddpm.SampleOptions) (*tensor.Tensor, error) {
		return ddpm.SDEdit(s, sm, model, x0, *strength, rng, opt)
	}
	pix, err := runImages(r.m, r.info.Schedule, r.info.Objective, r.spec, nil, sdedit)
	if err != nil {
		return err
	}
	_, err = r.finish("img2img", pix, map[string]any{"strength": *strength})
	return err
}
