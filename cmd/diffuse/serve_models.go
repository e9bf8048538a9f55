package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"image"
	"image/color"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/godiffuse/godiffuse/data"
	"github.com/godiffuse/godiffuse/ddpm"
	"github.com/godiffuse/godiffuse/nn"
	"github.com/godiffuse/godiffuse/pipeline"
	"github.com/godiffuse/godiffuse/safety"
	"github.com/godiffuse/godiffuse/tensor"
	"github.com/godiffuse/godiffuse/watermark"
)

// The models `diffuse serve` serves: Stable Diffusion folders (a prompt)
// and checkpoints of this engine (the prompt names a class). A backend is
// a loaded model; the registry loads them on first use and keeps them
// within a memory budget, the least recently used leaving first.

// Kinds of served models.
const (
	kindSD         = "stable-diffusion"
	kindCheckpoint = "checkpoint"
)

// Tasks a request can ask for.
const (
	taskTxt2Img = "txt2img"
	taskImg2Img = "img2img"
	taskInpaint = "inpaint"
)

// genRequest is one generation request, whatever API it came through,
// after the API's defaults are filled in and it has been checked against
// its model (genRequest.check).
type genRequest struct {
	Model            string
	Task             string
	Prompt, Negative string
	Sampler          string
	Steps            int
	Guidance         float64
	Seed             uint64
	Width, Height, N int
	Image, Mask      image.Image // img2img and inpaint; Mask white = repaint
	Strength         float64     // img2img and inpaint, in (0, 1]
	class            int64       // checkpoint models: the class index (-1: cycle through all)
}

// genImage is one image a request made.
type genImage struct {
	ID         string    `json:"id"`
	Model      string    `json:"model"`
	Seed       uint64    `json:"seed"`
	Parameters string    `json:"parameters"` // the PNG's parameters text
	Width      int       `json:"width"`
	Height     int       `json:"height"`
	Safety     string    `json:"safety"` // ok, warned, blurred, unchecked
	Created    time.Time `json:"created"`
	req        *genRequest
	png        []byte
}

// modelInfo is what clients see of a served model.
type modelInfo struct {
	Name     string   `json:"name"`
	Kind     string   `json:"kind"`
	Hash     string   `json:"hash"`
	Classes  []string `json:"classes,omitempty"`
	Width    int      `json:"width"` // the default size
	Height   int      `json:"height"`
	SizeStep int      `json:"size_step"` // width and height are multiples of this
	MaxSide  int      `json:"max_side"`
	Samplers []string `json:"samplers"`
	Sampler  string   `json:"sampler"` // the defaults
	Steps    int      `json:"steps"`
	Guidance float64  `json:"guidance"`
	Tasks    []string `json:"tasks"`
}

// progressFunc is told a run's progress: steps done of total, and a way
// to draw the current estimate of the first image (called only when a
// preview is wanted).
type progressFunc func(done, total int, preview func() image.Image)

// backend is a loaded model.
type backend interface {
	info() modelInfo
	// mergeable says whether b can run in one batch with a (same model).
	mergeable(a, b *genRequest) bool
	// run makes the images of reqs (one request, or several mergeable
	// ones), each request's from its own seed.
	run(ctx context.Context, reqs []*genRequest, prog progressFunc) ([][]*genImage, error)
}

// Request limits of the server (the memory estimate may lower the size).
const (
	serveMaxImages = 16
	serveMaxSteps  = 150
	serveMaxSide   = 2048
	serveMaxBatch  = 64 // images of merged requests run at once
)

// modelSource is a model the server may load.
type modelSource struct {
	name, path, kind string
	bytes            int64 // estimate of its memory: the size of its weight files
	info             modelInfo
}

// findSources resolves the -model arguments (folders or checkpoints), or
// with none the models under out/. Names are the folders' base names,
// made unique.
func findSources(paths []string, outDir string) ([]*modelSource, error) {
	if len(paths) == 0 {
		paths = discoverModels(outDir)
	}
	var srcs []*modelSource
	seen := map[string]bool{}
	for _, p := range paths {
		src := &modelSource{path: p}
		switch {
		case fileExists(filepath.Join(p, "model_index.json")):
			src.kind = kindSD
		case isCheckpoint(p):
			src.kind = kindCheckpoint
		case ddpm.IsVolumeCheckpoint(p):
			return nil, fmt.Errorf("-model %s: a 3-D checkpoint; serve serves images (use diffuse sample3d)", p)
		default:
			return nil, fmt.Errorf("-model %s: neither a Stable Diffusion folder (no model_index.json) nor a checkpoint of diffuse train", p)
		}
		base := filepath.Base(filepath.Clean(p))
		if base == "checkpoint" { // out/checkpoint is named by its run's folder
			base = filepath.Base(filepath.Dir(filepath.Clean(p)))
		}
		name := base
		for k := 2; seen[name]; k++ {
			name = fmt.Sprintf("%s-%d", base, k)
		}
		seen[name] = true
		src.name = name
		src.bytes = weightBytes(p)
		srcs = append(srcs, src)
	}
	return srcs, nil
}

// discoverModels lists the models in dir: dir/checkpoint, and every
// sub-folder that is a Stable Diffusion folder or holds a checkpoint.
func discoverModels(dir string) []string {
	var out []string
	if c := filepath.Join(dir, "checkpoint"); isCheckpoint(c) || fileExists(filepath.Join(c, "model_index.json")) {
		out = append(out, c) // diffuse train's output: a checkpoint, or a text-to-image pipeline folder
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		p := filepath.Join(dir, e.Name())
		switch {
		case !e.IsDir() || e.Name() == "checkpoint":
		case fileExists(filepath.Join(p, "model_index.json")):
			out = append(out, p)
		case isCheckpoint(filepath.Join(p, "checkpoint")):
			out = append(out, filepath.Join(p, "checkpoint"))
		}
	}
	return out
}

func fileExists(path string) bool {
	st, err := os.Stat(path)
	return err == nil && !st.IsDir()
}

// isCheckpoint reports a checkpoint of images (serve has nothing to do
// with a 3-D one, which discovery passes over).
func isCheckpoint(dir string) bool {
	_, err := ddpm.ReadCheckpointInfo(dir)
	return err == nil && !ddpm.IsVolumeCheckpoint(dir)
}

// weightBytes is the size of the weight files under dir.
func weightBytes(dir string) int64 {
	var n int64
	filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && (strings.HasSuffix(path, ".safetensors") || strings.HasSuffix(path, ".bin")) {
			if st, err := d.Info(); err == nil {
				n += st.Size()
			}
		}
		return nil
	})
	return n
}

// registry holds the served models, loading them on demand within budget
// bytes (the least recently used loaded model leaves first; one model is
// always kept, whatever its size).
type registry struct {
	mu      sync.Mutex
	sources []*modelSource
	loaded  map[string]*loadedModel
	budget  int64
	current string // the default model (A1111's sd_model_checkpoint)
	load    func(*modelSource) (backend, error)
	clock   int64
}

type loadedModel struct {
	b    backend
	used int64
}

func (r *registry) source(name string) *modelSource {
	if name == "" {
		name = r.current
	}
	for _, s := range r.sources {
		if s.name == name {
			return s
		}
	}
	return nil
}

// get returns the loaded model called name ("" for the current one),
// loading it and evicting others as the budget needs.
func (r *registry) get(name string) (backend, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	src := r.source(name)
	if src == nil {
		return nil, fmt.Errorf("model %q: not served here", name)
	}
	r.clock++
	if m, ok := r.loaded[src.name]; ok {
		m.used = r.clock
		return m.b, nil
	}
	// Evict until the new model fits (never below zero models).
	for len(r.loaded) > 0 && r.loadedBytes()+src.bytes > r.budget {
		oldest := ""
		for n, m := range r.loaded {
			if oldest == "" || m.used < r.loaded[oldest].used {
				oldest = n
			}
		}
		delete(r.loaded, oldest)
	}
	b, err := r.load(src)
	if err != nil {
		return nil, err
	}
	src.info = b.info()
	r.loaded[src.name] = &loadedModel{b: b, used: r.clock}
	return b, nil
}

// peek returns the model called name if it is loaded, else nil.
func (r *registry) peek(name string) backend {
	r.mu.Lock()
	defer r.mu.Unlock()
	if src := r.source(name); src != nil {
		if m, ok := r.loaded[src.name]; ok {
			return m.b
		}
	}
	return nil
}

func (r *registry) loadedBytes() int64 {
	var n int64
	for name := range r.loaded {
		n += r.source(name).bytes
	}
	return n
}

// infos lists the served models (as loaded at start).
func (r *registry) infos() []modelInfo {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]modelInfo, len(r.sources))
	for i, s := range r.sources {
		out[i] = s.info
	}
	return out
}

func (r *registry) isLoaded(name string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	_, ok := r.loaded[name]
	return ok
}

func (r *registry) setCurrent(name string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, s := range r.sources {
		if s.name == name {
			r.current = name
			return nil
		}
	}
	return fmt.Errorf("model %q: not served here", name)
}

func (r *registry) currentName() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.current
}

// serveOutput is what every served image goes through: the safety policy
// and checker, the watermark and the metadata, as -safety, -safety-checker,
// -watermark and -no-metadata say.
type serveOutput struct {
	flags  outputFlags
	policy safety.Policy
}

// ---------------------------------------------------------------------------
// Stable Diffusion folders.

type sdBackend struct {
	p    *pipeline.Pipeline
	out  serveOutput
	meta modelInfo
}

func loadSD(dev tensor.Device, src *modelSource, out serveOutput) (backend, error) {
	skip := out.policy == safety.Off || *out.flags.checker != "auto"
	p, err := pipeline.LoadWithOptions(dev, src.path, pipeline.LoadOptions{Storage: nn.StoreAsFile, SkipSafetyChecker: skip})
	if err != nil {
		return nil, err
	}
	if *out.flags.checker != "auto" {
		if p.Safety, err = out.flags.loadChecker(dev); err != nil {
			return nil, err
		}
	}
	tasks := []string{taskTxt2Img, taskImg2Img, taskInpaint}
	if p.IsInpainting() {
		tasks = []string{taskInpaint}
	}
	b := &sdBackend{p: p, out: out}
	b.meta = modelInfo{Name: src.name, Kind: kindSD, Hash: p.ModelHash(), Width: p.DefaultSize(), Height: p.DefaultSize(),
		SizeStep: p.SizeStep(), MaxSide: serveMaxSide, Samplers: ddpm.SigmaSamplerNames, Sampler: p.Suggested.Sampler.String(),
		Steps: cmp.Or(p.Suggested.Steps, 25), Guidance: cmp.Or(p.Suggested.Guidance, 7.5), Tasks: tasks}
	return b, nil
}

func (b *sdBackend) info() modelInfo                 { return b.meta }
func (b *sdBackend) mergeable(_, _ *genRequest) bool { return false } // the pipeline makes images one at a time

func (b *sdBackend) run(ctx context.Context, reqs []*genRequest, prog progressFunc) ([][]*genImage, error) {
	r := reqs[0]
	sampler, err := ddpm.ParseSigmaSampler(r.Sampler)
	if err != nil {
		return nil, err
	}
	o := pipeline.Options{Prompt: r.Prompt, Negative: r.Negative, Steps: r.Steps, Guidance: r.Guidance, Sampler: sampler,
		Seed: r.Seed, Width: r.Width, Height: r.Height, N: r.N, SafetyPolicy: b.out.policy,
		NoWatermark: *b.out.flags.watermark == "off", Context: ctx}
	var x0 *tensor.Tensor
	o.Trace = func(step int, _, est, _ *tensor.Tensor) { x0 = est }
	o.OnStep = func(img, step, steps int) {
		est := x0
		prog(img*steps+step, r.N*steps, func() image.Image { return latentPreview(est) })
	}
	var res *pipeline.Result
	switch r.Task {
	case taskImg2Img:
		res, err = b.p.Img2Img(pipeline.Img2ImgOptions{Options: o, Image: r.Image, Strength: r.Strength})
	case taskInpaint:
		res, err = b.p.Inpaint(pipeline.InpaintOptions{Options: o, Image: r.Image, Mask: r.Mask, Strength: r.Strength})
	default:
		res, err = b.p.Generate(o)
	}
	if err != nil {
		return nil, err
	}
	var imgs []*genImage
	for i, im := range res.Images {
		if im == nil { // withheld by the safety check
			continue
		}
		out := res.Safety[i]
		prov := newProvenance(r.Task)
		prov.Model, prov.ModelHash, prov.Sampler, prov.Steps, prov.Guidance = b.meta.Name, b.meta.Hash, r.Sampler, r.Steps, r.Guidance
		prov.Seed, prov.Prompt, prov.Negative = r.Seed+uint64(i), r.Prompt, r.Negative
		prov.Safety = &safetyRecord{Checker: out.Verdict.Checker, Policy: string(b.out.policy), Action: out.Action,
			Flagged: out.Verdict.Flagged, Scores: out.Verdict.Scores, Message: out.Verdict.Message}
		png, err := encodeMarked(im, res.Parameters[i], prov, b.out.flags, res.Watermarks[i])
		if err != nil {
			return nil, err
		}
		imgs = append(imgs, &genImage{Model: b.meta.Name, Seed: prov.Seed, Parameters: res.Parameters[i], Width: im.Bounds().Dx(),
			Height: im.Bounds().Dy(), Safety: out.Action, req: r, png: png})
	}
	return [][]*genImage{imgs}, nil
}

// latentRGB maps Stable Diffusion's four latent channels to an approximate
// RGB picture (the linear fit front-ends use for live previews of SD 1.x).
var latentRGB = [4][3]float32{
	{0.3512, 0.2297, 0.3227},
	{0.3250, 0.4974, 0.2350},
	{-0.2829, 0.1762, 0.2721},
	{-0.2120, -0.2616, -0.7177},
}

// latentPreview draws the first image of latents (n, C, h, w) cheaply:
// through latentRGB for four channels, as it is for three (pixel space),
// else its first channel in grey.
func latentPreview(latents *tensor.Tensor) image.Image {
	if latents == nil || latents.Rank() != 4 {
		return nil
	}
	v, err := latents.Float32s()
	if err != nil {
		return nil
	}
	c, h, w := latents.Dim(1), latents.Dim(2), latents.Dim(3)
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			var rgb [3]float32
			switch c {
			case 4:
				for k := range 4 {
					for j := range 3 {
						rgb[j] += latentRGB[k][j] * v[(k*h+y)*w+x]
					}
				}
			case 3: // a pixel-space pipeline: x̂_0 is the picture
				for j := range 3 {
					rgb[j] = v[(j*h+y)*w+x]
				}
			default:
				rgb = [3]float32{v[y*w+x], v[y*w+x], v[y*w+x]}
			}
			img.SetRGBA(x, y, color.RGBA{toByte(rgb[0]), toByte(rgb[1]), toByte(rgb[2]), 255})
		}
	}
	return img
}

// ---------------------------------------------------------------------------
// Checkpoints of this engine.

type ckptBackend struct {
	m       *nn.UNet2D
	ckpt    ddpm.CheckpointInfo
	checker safety.Checker
	out     serveOutput
	meta    modelInfo
	c, h, w int
	mu      sync.Mutex // the U-Net's no-grad switch is not for concurrent runs
}

func loadCheckpointBackend(dev tensor.Device, src *modelSource, out serveOutput) (backend, error) {
	m, info, err := ddpm.LoadCheckpoint(dev, src.path, true)
	if err != nil {
		return nil, err
	}
	h, w, ok := m.Config.SampleHW()
	if !ok {
		return nil, fmt.Errorf("%s: the model config has no sample_size", src.path)
	}
	if c := m.Config.InChannels; c != 1 && c != 3 {
		return nil, fmt.Errorf("%s: the model makes %d-channel images; serve takes grey or RGB models", src.path, c)
	}
	checker, err := out.flags.loadChecker(dev)
	if err != nil {
		return nil, err
	}
	b := &ckptBackend{m: m, ckpt: info, checker: checker, out: out, c: m.Config.InChannels, h: h, w: w}
	k := max(1, (watermark.MinSide+max(h, w)-1)/max(h, w)) // the smallest enlargement that carries the watermark
	b.meta = modelInfo{Name: src.name, Kind: kindCheckpoint, Hash: fileHash(filepath.Join(info.Dir, "unet_ema", nn.WeightsFile)),
		Classes: info.Classes, Width: k * w, Height: k * h, SizeStep: max(h, w), MaxSide: max(16, 1024/max(h, w)) * max(h, w),
		Samplers: ddpm.SamplerNames, Sampler: defaultSampler, Steps: defaultSampleSteps, Guidance: defaultGuidance,
		Tasks: []string{taskTxt2Img, taskImg2Img, taskInpaint}}
	if h != w {
		b.meta.Tasks = []string{taskTxt2Img}
	}
	return b, nil
}

func (b *ckptBackend) info() modelInfo { return b.meta }

// mergeable: text-to-image with a deterministic sampler and the same
// settings, so that every image depends only on its own seed.
func (b *ckptBackend) mergeable(a, o *genRequest) bool {
	return a.Task == taskTxt2Img && o.Task == taskTxt2Img && a.Sampler == o.Sampler && a.Sampler != "ddpm" && a.Sampler != "ddpm-large" &&
		a.Steps == o.Steps && a.Guidance == o.Guidance && a.Width == o.Width && a.Height == o.Height
}

// classFor finds the class a prompt names (the longest class name in it,
// case-insensitive): -1 for an empty prompt (all classes in turn).
func classFor(classes []string, prompt string) (int64, error) {
	p := strings.ToLower(strings.TrimSpace(prompt))
	if len(classes) == 0 || p == "" {
		return -1, nil
	}
	best := -1
	for i, c := range classes {
		if strings.Contains(p, strings.ToLower(c)) && (best < 0 || len(c) > len(classes[best])) {
			best = i
		}
	}
	if best < 0 {
		if k, err := data.ClassIndex(classes, p); err == nil {
			return int64(k), nil
		}
		return 0, fmt.Errorf("prompt %q names none of this model's classes (%s)", prompt, strings.Join(classes, ", "))
	}
	return int64(best), nil
}

func (b *ckptBackend) run(ctx context.Context, reqs []*genRequest, prog progressFunc) ([][]*genImage, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	restore := b.m.NoGrad()
	defer restore()
	defer nn.Freeze(b.m.Params())()
	c, h, w, dev := b.c, b.h, b.w, b.m.Device
	r0 := reqs[0]
	// Image i of a request starts from noise drawn from seed+i, so it does
	// not depend on what it was batched with (as the SD pipeline's images).
	var noise []float32
	var labels []int64
	total := 0
	rng := rand.New(rand.NewPCG(r0.Seed, 0x5a3b1f)) // the sampler's own draws (one request only: not mergeable)
	for _, r := range reqs {
		for i := range r.N {
			x, err := ddpm.Randn(dev, rand.New(rand.NewPCG(r.Seed+uint64(i), 0x5a3b1e)), 1, c, h, w).Float32s()
			if err != nil {
				return nil, err
			}
			noise = append(noise, x...)
			k := r.class
			if k < 0 {
				k = int64(i % max(1, len(b.ckpt.Classes)))
			}
			labels = append(labels, k)
		}
		total += r.N
	}
	kind, err := ddpm.ParseSampler(r0.Sampler)
	if err != nil {
		return nil, err
	}
	sm, err := ddpm.NewSampler(kind, b.ckpt.Schedule, r0.Steps, ddpm.DefaultSpacing, 0)
	if err != nil {
		return nil, err
	}
	net := func(x *tensor.Tensor, t int, labels []int64) (*tensor.Tensor, error) {
		if ctx.Err() != nil {
			return nil, context.Cause(ctx)
		}
		return b.m.Forward(x, []float32{float32(t)}, labels, nil)
	}
	var model ddpm.Model
	if len(b.ckpt.Classes) > 0 {
		if r0.Task != taskTxt2Img && r0.class < 0 { // from an image with no class named: unconditional
			for i := range labels {
				labels[i] = b.ckpt.NullClass()
			}
		}
		model = ddpm.Guided(net, labels, b.ckpt.NullClass(), r0.Guidance, 0)
	} else {
		model = func(x *tensor.Tensor, t int) (*tensor.Tensor, error) { return net(x, t, nil) }
	}
	steps := len(sm.Timesteps())
	opt := ddpm.SampleOptions{Objective: b.ckpt.Objective, Clip: 1}
	opt.OnStep = func(i, _ int, _, x0 *tensor.Tensor) {
		prog(min(i+1, steps), steps, func() image.Image {
			v, err := x0.Narrow(0, 0, 1).Float32s()
			if err != nil {
				return nil
			}
			return grid(v, 1, c, h, w, 1).SubImage(image.Rect(2, 2, 2+w, 2+h))
		})
	}
	xT := tensor.FromFloat32(dev, noise, total, c, h, w)
	var x *tensor.Tensor
	switch r0.Task {
	case taskTxt2Img:
		x, err = ddpm.Sample(b.ckpt.Schedule, sm, model, xT, rng, opt)
	default:
		x, err = b.fromImage(r0, sm, model, xT, rng, opt)
	}
	if err != nil {
		return nil, err
	}
	pix, err := x.Float32s()
	if err != nil {
		return nil, err
	}
	return b.finish(reqs, pix)
}

// fromImage runs img2img (SDEdit) or inpainting (RePaint) for one request.
func (b *ckptBackend) fromImage(r *genRequest, sm ddpm.Sampler, model ddpm.Model, xT *tensor.Tensor, rng *rand.Rand, opt ddpm.SampleOptions) (*tensor.Tensor, error) {
	c, h, w, dev := b.c, b.h, b.w, b.m.Device
	in := data.ImageValues(r.Image, h, c)
	var rep []float32
	for range r.N {
		rep = append(rep, in...)
	}
	x0 := tensor.FromFloat32(dev, rep, r.N, c, h, w)
	if r.Task == taskImg2Img {
		return ddpm.SDEdit(b.ckpt.Schedule, sm, model, x0, r.Strength, rng, opt)
	}
	mask := pipeline.MaskValues(r.Mask, w, h)
	var masks []float32
	for range r.N * c {
		masks = append(masks, mask...)
	}
	return ddpm.Inpaint(b.ckpt.Schedule, sm, model, xT, rng, opt, ddpm.InpaintOptions{Method: ddpm.InpaintRePaint,
		Jump: ddpm.DefaultJump, Resample: ddpm.DefaultResample, Image: x0, Mask: tensor.FromFloat32(dev, masks, r.N, c, h, w)})
}

// finish screens, enlarges, watermarks and encodes the images of reqs.
func (b *ckptBackend) finish(reqs []*genRequest, pix []float32) ([][]*genImage, error) {
	c, h, w := b.c, b.h, b.w
	size := c * h * w
	out := make([][]*genImage, len(reqs))
	at := 0
	for ri, r := range reqs {
		imgs := make([]image.Image, r.N)
		for i := range r.N {
			g := grid(pix[(at+i)*size:(at+i+1)*size], 1, c, h, w, 1)
			imgs[i] = scaleUp(toRGBA(g.SubImage(image.Rect(2, 2, 2+w, 2+h))), r.Width/w)
		}
		at += r.N
		outs, err := safety.Apply(b.checker, b.out.policy, imgs)
		if err != nil {
			return nil, err
		}
		for i, o := range outs {
			if o.Image == nil {
				continue // withheld
			}
			prov := newProvenance(r.Task)
			prov.Model, prov.ModelHash, prov.Sampler, prov.Steps, prov.Guidance = b.meta.Name, b.meta.Hash, r.Sampler, r.Steps, r.Guidance
			prov.Seed, prov.Prompt = r.Seed+uint64(i), r.Prompt
			k := r.class
			if k < 0 && len(b.ckpt.Classes) > 0 && r.Task == taskTxt2Img {
				k = int64(i % len(b.ckpt.Classes))
			}
			if k >= 0 {
				prov.Class = b.ckpt.Classes[k]
			}
			prov.Safety = &safetyRecord{Checker: o.Verdict.Checker, Policy: string(b.out.policy), Action: o.Action,
				Flagged: o.Verdict.Flagged, Scores: o.Verdict.Scores, Message: o.Verdict.Message}
			img, payload := markImage(o.Image, prov, b.out.flags)
			params := parametersText(prov)
			png, err := encodeMarked(img, params, prov, b.out.flags, payload)
			if err != nil {
				return nil, err
			}
			out[ri] = append(out[ri], &genImage{Model: b.meta.Name, Seed: prov.Seed, Parameters: params, Width: img.Bounds().Dx(),
				Height: img.Bounds().Dy(), Safety: o.Action, req: r, png: png})
		}
	}
	return out, nil
}

// toRGBA copies an image into a fresh RGBA at the origin.
func toRGBA(img image.Image) *image.RGBA {
	b := img.Bounds()
	out := image.NewRGBA(image.Rect(0, 0, b.Dx(), b.Dy()))
	for y := range b.Dy() {
		for x := range b.Dx() {
			out.Set(x, y, img.At(b.Min.X+x, b.Min.Y+y))
		}
	}
	return out
}

// ---------------------------------------------------------------------------
// Checking a request against its model.

// errBadRequest marks an error in what a client sent (a 4xx).
type badRequest struct {
	param, msg string
	status     int // 0: 400
}

func (e *badRequest) Error() string { return e.msg }

func badParam(param, format string, a ...any) error {
	return &badRequest{param: param, msg: fmt.Sprintf(format, a...)}
}

// check fills in the model's defaults and refuses what the model cannot
// make or what would not fit the memory budget.
func (r *genRequest) check(mi modelInfo, budget, modelBytes int64) error {
	if r.Sampler == "" {
		r.Sampler = mi.Sampler
	}
	if r.Steps == 0 {
		r.Steps = mi.Steps
	}
	if r.Guidance < 0 {
		r.Guidance = mi.Guidance
	}
	if r.N == 0 {
		r.N = 1
	}
	if r.Width == 0 && r.Height == 0 && r.Image != nil && mi.Kind == kindSD { // the input's size, fitted to the step
		b := r.Image.Bounds()
		r.Width, r.Height = b.Dx()/mi.SizeStep*mi.SizeStep, b.Dy()/mi.SizeStep*mi.SizeStep
	}
	if r.Width == 0 {
		r.Width = mi.Width
	}
	if r.Height == 0 {
		r.Height = mi.Height
	}
	if r.Task == "" {
		r.Task = taskTxt2Img
	}
	switch {
	case !slices.Contains(mi.Tasks, r.Task):
		return badParam("model", "model %s does not do %s (it does %s)", mi.Name, r.Task, strings.Join(mi.Tasks, ", "))
	case !slices.Contains(mi.Samplers, r.Sampler):
		return badParam("sampler", "sampler %q: model %s takes %s", r.Sampler, mi.Name, strings.Join(mi.Samplers, ", "))
	case r.Steps < 1 || r.Steps > serveMaxSteps:
		return badParam("steps", "steps %d: want 1 … %d", r.Steps, serveMaxSteps)
	case !(r.Guidance >= 0 && r.Guidance <= 30):
		return badParam("guidance_scale", "guidance %g: want 0 … 30", r.Guidance)
	case r.N < 1 || r.N > serveMaxImages:
		return badParam("n", "n %d: want 1 … %d images per request", r.N, serveMaxImages)
	case r.Width < mi.SizeStep || r.Height < mi.SizeStep || r.Width > mi.MaxSide || r.Height > mi.MaxSide ||
		r.Width%mi.SizeStep != 0 || r.Height%mi.SizeStep != 0:
		return badParam("size", "size %dx%d: width and height must be multiples of %d from %d to %d for model %s",
			r.Width, r.Height, mi.SizeStep, mi.SizeStep, mi.MaxSide, mi.Name)
	case mi.Kind == kindCheckpoint && r.Width*mi.Height != r.Height*mi.Width:
		return badParam("size", "size %dx%d: model %s makes %dx%d images (enlarged by a whole factor)", r.Width, r.Height, mi.Name, mi.Width, mi.Height)
	case r.Task != taskTxt2Img && r.Image == nil:
		return badParam("image", "%s needs an image", r.Task)
	case r.Task == taskInpaint && r.Mask == nil:
		return badParam("mask", "inpainting needs a mask")
	case r.Task != taskTxt2Img && !(r.Strength > 0 && r.Strength <= 1):
		return badParam("denoising_strength", "strength %g: want 0 < strength ≤ 1", r.Strength)
	}
	if r.Task == taskInpaint && r.Mask.Bounds().Size() != r.Image.Bounds().Size() {
		return badParam("mask", "the mask is %v, the image %v: they must be the same size", r.Mask.Bounds().Size(), r.Image.Bounds().Size())
	}
	if mi.Kind == kindCheckpoint {
		k, err := classFor(mi.Classes, r.Prompt)
		if err != nil {
			return badParam("prompt", "%v", err)
		}
		r.class = k
	}
	if need := modelBytes + activationBytes(mi, r); need > budget {
		return &badRequest{param: "size", status: 413, msg: fmt.Sprintf("size %dx%d × %d images would need about %.1f GB; the server's budget is %.1f GB (-memory)",
			r.Width, r.Height, r.N, float64(need)/1e9, float64(budget)/1e9)}
	}
	return nil
}

// activationBytes estimates the working memory of a request beyond the
// weights: Stable Diffusion makes one image at a time (about 2 KB per
// output pixel at its peak, measured on 512×512 SD 1.5 runs with blocked
// attention); a checkpoint's batch holds all its images (64 values per
// pixel and base channel is generous for these U-Nets).
func activationBytes(mi modelInfo, r *genRequest) int64 {
	if mi.Kind == kindSD {
		px := int64(r.Width) * int64(r.Height)
		return 2048*px + px*px/1024 // attention's quadratic part, blocked
	}
	return int64(r.N) * int64(mi.SizeStep) * int64(mi.SizeStep) * 64 * 4 * 64
}

// sortedNames is the served models' names in order.
func sortedNames(infos []modelInfo) []string {
	var names []string
	for _, i := range infos {
		names = append(names, i.Name)
	}
	sort.Strings(names)
	return names
}

var errNoModels = errors.New("no model is served: train one with 'go run ./cmd/diffuse train' (it writes out/checkpoint) and start the server again")
