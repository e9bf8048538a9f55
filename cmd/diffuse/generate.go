package main

import (
	"bytes"
	"flag"
	"fmt"
	"image"
	_ "image/jpeg" // -image may be a JPEG
	"math"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"time"

	"github.com/godiffuse/godiffuse/ddpm"
	"github.com/godiffuse/godiffuse/nn"
	"github.com/godiffuse/godiffuse/pipeline"
	"github.com/godiffuse/godiffuse/safetensors"
	"github.com/godiffuse/godiffuse/safety"
	"github.com/godiffuse/godiffuse/tensor"
)

// sdFlags are the flags text-to-image and image-to-image share.
type sdFlags struct {
	model, prompt, negative, sampler, out, latents, weights string
	steps, width, height, n, clipSkip                       int
	guidance                                                float64
	seed                                                    uint64
	device                                                  deviceFlags
	output                                                  outputFlags
	set                                                     func(name string) bool // whether the command line set a flag
}

func addSDFlags(fs *flag.FlagSet, f *sdFlags) {
	fs.StringVar(&f.model, "model", "", "a diffusers Stable Diffusion folder (model_index.json, unet/, vae/, text_encoder/, tokenizer/, scheduler/)")
	fs.StringVar(&f.prompt, "prompt", "", "what to draw")
	fs.StringVar(&f.negative, "negative", "", "negative prompt (what to steer away from)")
	fs.IntVar(&f.steps, "steps", 25, "model evaluations (default: the folder's suggestion if it has one, else 25)")
	fs.Float64Var(&f.guidance, "guidance", 7.5, "classifier-free guidance scale (≤ 1: the prompt alone, one pass per step)\n"+
		"(default: the folder's suggestion if it has one, as folders diffuse train writes do, else 7.5)")
	f.set = func(name string) bool { return flagSet(fs, name) }
	fs.StringVar(&f.sampler, "sampler", ddpm.DefaultSigmaSampler.String(), strings.Join(ddpm.SigmaSamplerNames, ", ")+"\n(default: the folder's suggestion if it has one, else this)")
	fs.Uint64Var(&f.seed, "seed", 0, "seed of the noise; image i uses seed+i")
	fs.IntVar(&f.width, "width", 0, "image width in pixels, a multiple of 8 (default: the model's, 512 for SD 1.5)")
	fs.IntVar(&f.height, "height", 0, "image height in pixels, a multiple of 8 (default: the model's)")
	fs.IntVar(&f.n, "n", 1, "number of images")
	fs.IntVar(&f.clipSkip, "clip-skip", 0, "skip the text encoder's last k layers for the prompt (diffusers' clip_skip)")
	fs.StringVar(&f.out, "out", "out.png", "PNG to write; with -n > 1, NAME-0001.png … next to it")
	fs.StringVar(&f.weights, "weights", "auto", "precision the weights are kept in: auto (half where the files are F16), f16 (half the memory), f32")
	fs.StringVar(&f.latents, "latents", "", "start from these latents instead of seeded noise: FILE.safetensors:TENSOR, shape (1, 4, h, w)")
	f.device = deviceFlag(fs)
	f.output = addOutputFlags(fs, "auto")
}

func (f *sdFlags) check() error {
	switch {
	case f.model == "":
		return fmt.Errorf("-model: give a Stable Diffusion folder")
	case f.out == "":
		return fmt.Errorf("-out: give a PNG path")
	case math.IsNaN(f.guidance) || math.IsInf(f.guidance, 0):
		return fmt.Errorf("-guidance %v: want a finite number", f.guidance)
	case f.steps < 1 || f.steps > pipeline.MaxSteps:
		return fmt.Errorf("-steps %d: want 1 … %d", f.steps, pipeline.MaxSteps)
	case f.n < 1 || f.n > pipeline.MaxImages:
		return fmt.Errorf("-n %d: want 1 … %d", f.n, pipeline.MaxImages)
	case f.width < 0 || f.height < 0:
		return fmt.Errorf("-width/-height: want positive sizes (or 0 for the model's)")
	}
	if _, err := f.output.check(); err != nil {
		return err
	}
	return checkOutputs("-out", f.out)
}

// takeSuggested uses the folder's suggested guidance, steps and sampler
// where the command line gave none, and says so.
func (f *sdFlags) takeSuggested(s pipeline.Suggested) {
	var took []string
	if s.Guidance > 0 && !f.set("guidance") {
		f.guidance = s.Guidance
		took = append(took, fmt.Sprintf("guidance %g", s.Guidance))
	}
	if s.Steps > 0 && !f.set("steps") {
		f.steps = s.Steps
		took = append(took, fmt.Sprintf("%d steps", s.Steps))
	}
	if s.Sampler != ddpm.DefaultSigmaSampler && !f.set("sampler") {
		f.sampler = s.Sampler.String()
		took = append(took, "sampler "+f.sampler)
	}
	if len(took) > 0 {
		fmt.Fprintf(os.Stderr, "note: %s, as the folder suggests (-guidance, -steps and -sampler override it)\n", strings.Join(took, ", "))
	}
}

func (f *sdFlags) options(dev tensor.Device) (pipeline.Options, error) {
	o := pipeline.Options{Prompt: f.prompt, Negative: f.negative, Steps: f.steps, Guidance: f.guidance,
		Seed: f.seed, Width: f.width, Height: f.height, N: f.n, ClipSkip: f.clipSkip}
	var err error
	if o.Sampler, err = ddpm.ParseSigmaSampler(f.sampler); err != nil {
		return o, fmt.Errorf("-sampler: %w", err)
	}
	if f.latents != "" {
		path, name, ok := strings.Cut(f.latents, ":")
		if !ok {
			return o, fmt.Errorf("-latents %q: want FILE.safetensors:TENSOR", f.latents)
		}
		st, err := safetensors.Read(path)
		if err != nil {
			return o, fmt.Errorf("-latents: %w", err)
		}
		v, shape, err := st.Float32(name)
		if err != nil {
			return o, fmt.Errorf("-latents: %w", err)
		}
		if len(shape) != 4 || shape[0] != 1 {
			return o, fmt.Errorf("-latents: %s is %v, want (1, C, h, w)", name, shape)
		}
		o.Latents = tensor.FromFloat32(dev, v, shape...)
	}
	return o, nil
}

func runGenerate(args []string) error {
	fs := newFlags("generate", "Text-to-image with a Stable Diffusion 1.x/2.x folder in diffusers layout.\n"+
		"Each PNG carries its parameters (prompt, sampler, steps, guidance, seed, size, model hash) as SD front-ends write them.")
	var f sdFlags
	addSDFlags(fs, &f)
	if err := parse(fs, args); err != nil {
		return err
	}
	if err := f.check(); err != nil {
		return err
	}
	return generate(&f, "txt2img", nil)
}

// readImage decodes a PNG or JPEG file named by flag.
func readImage(flag, path string) (image.Image, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	img, _, err := image.Decode(bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("%s %s: not a PNG or JPEG image: %v", flag, path, err)
	}
	return img, nil
}

func runImg2Img(args []string) error {
	if !usesModel(args) && usesFlag(args, "checkpoint") {
		return runImg2ImgCheckpoint(args)
	}
	fs := newFlags("img2img", "Image-to-image with a Stable Diffusion folder: the image is encoded, noised to -strength\n"+
		"and denoised under the prompt (diffusers' StableDiffusionImg2ImgPipeline).")
	var f sdFlags
	addSDFlags(fs, &f)
	in := fs.String("image", "", "input image (PNG or JPEG); resized to -width×-height when given")
	strength := fs.Float64("strength", 0.6, "0 < strength ≤ 1: how much of the image to redraw")
	if err := parse(fs, args); err != nil {
		return err
	}
	if err := f.check(); err != nil {
		return err
	}
	if *in == "" {
		return fmt.Errorf("-image: give the input image")
	}
	if !(*strength > 0 && *strength <= 1) {
		return fmt.Errorf("-strength %v: want 0 < strength ≤ 1", *strength)
	}
	img, err := readImage("-image", *in)
	if err != nil {
		return err
	}
	return generate(&f, "img2img", func(p *pipeline.Pipeline, o pipeline.Options) (*pipeline.Result, error) {
		return p.Img2Img(pipeline.Img2ImgOptions{Options: o, Image: img, Strength: *strength})
	})
}

// inferenceGC sets the collector for a sampling command: GOGC=10 unless the
// environment sets GOGC or GOMEMLIMIT. A run holds its weights while each
// step makes and drops its activations; with Go's default GOGC=100 the heap
// grows to twice the live set. For a 512×512 SD 1.5 run (F16 weights) GOGC=10
// kept the peak RSS at 3.97 GB against 7.26 GB (GOGC=20: 4.07, 5: 3.70) at
// the same speed within noise; and a fresh process's first ~150 batch-1
// steps of a small U-Net were slower at GOGC=100, each allocation landing on
// pages the growing heap had never touched (tiny-mnist b1 over its first
// 100 calls: 411–426 img/s against 449–475 at GOGC=10; bench/RESULTS.md).
func inferenceGC() {
	if os.Getenv("GOGC") == "" && os.Getenv("GOMEMLIMIT") == "" {
		debug.SetGCPercent(10)
	}
}

// generate loads the folder and makes the images with run (nil: text-to-image).
func generate(f *sdFlags, task string, run func(p *pipeline.Pipeline, o pipeline.Options) (*pipeline.Result, error)) error {
	inferenceGC()
	dev, err := pickDevice(f.device)
	if err != nil {
		return err
	}
	storage, err := nn.ParseStorage(f.weights)
	if err != nil {
		return fmt.Errorf("-weights: %w", err)
	}
	start := time.Now()
	skip := *f.output.policy == string(safety.Off) || *f.output.checker != "auto"
	p, err := pipeline.LoadWithOptions(dev, f.model, pipeline.LoadOptions{Storage: storage, SkipSafetyChecker: skip})
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "loaded %s (%s) in %.1f s\n", p.Name, p.Class, time.Since(start).Seconds())
	for _, n := range p.Notes {
		fmt.Fprintln(os.Stderr, "note:", n)
	}
	f.takeSuggested(p.Suggested)
	o, err := f.options(dev)
	if err != nil {
		return err
	}
	bar := newProgress(os.Stderr, 0, o.Steps*o.N, isTerminal(os.Stderr))
	var total int
	o.OnStep = func(img, step, steps int) {
		total = steps * o.N
		bar.total = total
		bar.update(img*steps+step, fmt.Sprintf("image %d/%d", img+1, o.N), 0, step == steps && img == o.N-1)
	}
	policy, _ := f.output.check()
	o.SafetyPolicy, o.NoWatermark = policy, *f.output.watermark == "off"
	switch *f.output.checker {
	case "auto":
		if p.Safety == nil && policy != safety.Off {
			fmt.Fprintf(os.Stderr, "note: %s has no safety_checker/: images are not checked (-safety-checker judge:… picks another checker)\n", f.model)
		}
	default:
		if p.Safety, err = f.output.loadChecker(dev); err != nil {
			return err
		}
	}
	if run == nil {
		run = (*pipeline.Pipeline).Generate
	}
	res, err := run(p, o)
	bar.finish()
	if err != nil {
		return err
	}
	for _, w := range res.Warnings {
		fmt.Fprintln(os.Stderr, "warning:", w)
	}
	withheld := 0
	for i, im := range res.Images {
		out := res.Safety[i]
		if out.Verdict.Flagged {
			fmt.Fprintf(os.Stderr, "safety: image %d %s: %s\n", i+1, out.Action, out.Verdict.Message)
		}
		if im == nil {
			withheld++
			continue
		}
		path := f.out
		if len(res.Images) > 1 {
			ext := filepath.Ext(path)
			path = fmt.Sprintf("%s-%04d%s", strings.TrimSuffix(path, ext), i+1, ext)
		}
		prov := newProvenance(task)
		prov.Model, prov.ModelHash, prov.Sampler, prov.Steps, prov.Guidance = p.Name, p.ModelHash(), o.Sampler.String(), o.Steps, o.Guidance
		prov.Seed, prov.Prompt, prov.Negative = o.Seed+uint64(i), o.Prompt, o.Negative
		prov.Safety = &safetyRecord{Checker: out.Verdict.Checker, Policy: string(policy), Action: out.Action, Flagged: out.Verdict.Flagged,
			Scores: out.Verdict.Scores, Message: out.Verdict.Message}
		if err := writeMarked(path, im, res.Parameters[i], prov, f.output, res.Watermarks[i]); err != nil {
			return err
		}
		fmt.Fprintln(os.Stderr, "wrote", path)
	}
	fmt.Fprintf(os.Stderr, "%d image(s) in %.1f s\n", len(res.Images)-withheld, time.Since(start).Seconds())
	if withheld > 0 {
		return withheldError{withheld, len(res.Images)}
	}
	return nil
}
