package pipeline

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"image"
	"image/draw"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"github.com/godiffuse/godiffuse/ddpm"
	"github.com/godiffuse/godiffuse/safety"
	"github.com/godiffuse/godiffuse/tensor"
	"github.com/godiffuse/godiffuse/watermark"
)

// Options are the settings of one text-to-image (or image-to-image) run.
type Options struct {
	Prompt   string
	Negative string                // the negative prompt; "" is the empty (unconditional) prompt
	Steps    int                   // model evaluations (default 25)
	Guidance float64               // classifier-free guidance scale (default 7.5; ≤ 1 runs the prompt alone)
	Sampler  ddpm.SigmaSamplerKind // zero: dpm++2m-karras
	Seed     uint64
	Width    int // pixels, a multiple of SizeStep, 8 for SD (default DefaultSize)
	Height   int
	N        int // images (default 1), each with seed Seed+i, made one after another
	ClipSkip int // use the text encoder's layer −(1+ClipSkip) for the prompt, as diffusers' clip_skip

	// Latents, when set, replaces the initial noise (1, latent, h, w) of a
	// one-image run (to reproduce another implementation's run); without
	// Width and Height the image size follows from it.
	Latents *tensor.Tensor
	// OnStep, when set, is called after every step of every image.
	OnStep func(image, step, steps int)
	// Trace, when set, sees every step's guided model output, x̂_0 and latents.
	Trace func(step int, modelOut, x0, latents *tensor.Tensor)
	// SafetyPolicy is what happens to an image the pipeline's Safety
	// checker flags (default safety.Blur; Block leaves a nil image).
	SafetyPolicy safety.Policy
	// NoWatermark leaves out the invisible watermark (package watermark:
	// a hash of the model's name and the seed) that images of
	// watermark.MinSide pixels or more get.
	NoWatermark bool
	// Context, when set, stops the run before its next model evaluation
	// once it is done (cancelled or past its deadline); the run then
	// returns the context's error (context.Cause).
	Context context.Context
}

// Result is what a run makes.
type Result struct {
	Images     []*image.NRGBA
	Decoded    []*tensor.Tensor // the VAE's raw output per image (1, 3, H, W)
	Latents    []*tensor.Tensor // the final latents per image
	Parameters []string         // the PNG "parameters" text of each image
	Warnings   []string         // e.g. a prompt truncated to 77 tokens
	// Safety is the safety check's outcome per image (Action "unchecked"
	// without a checker or with the policy Off); an image it withheld is nil
	// in Images.
	Safety []safety.Outcome
	// Watermarks are the payloads hidden in the images (0: none, the image
	// being too small or NoWatermark set).
	Watermarks []uint64
}

// Limits on one run.
const (
	MaxSteps  = 1000
	MaxImages = 10000
	MaxSide   = 4096
)

func (p *Pipeline) withDefaults(o Options) (Options, error) {
	if o.Steps == 0 {
		o.Steps = 25
	}
	if o.Guidance == 0 {
		o.Guidance = 7.5
	}
	o.Sampler = o.Sampler.Or()
	if o.Latents != nil && o.Latents.Rank() == 4 && o.Width == 0 && o.Height == 0 { // the size the latents give
		o.Height, o.Width = o.Latents.Dim(2)*p.ImageFactor(), o.Latents.Dim(3)*p.ImageFactor()
	}
	if o.Width == 0 {
		o.Width = p.DefaultSize()
	}
	if o.Height == 0 {
		o.Height = p.DefaultSize()
	}
	if o.N == 0 {
		o.N = 1
	}
	step := p.SizeStep()
	switch {
	case o.Steps < 1 || o.Steps > min(MaxSteps, p.Scheduler.NumTrainTimesteps):
		return o, fmt.Errorf("steps %d: want 1 … %d", o.Steps, min(MaxSteps, p.Scheduler.NumTrainTimesteps))
	case math.IsNaN(o.Guidance) || math.IsInf(o.Guidance, 0) || o.Guidance < 0 || o.Guidance > 100:
		return o, fmt.Errorf("guidance %g: want 0 … 100", o.Guidance)
	case o.Width < step || o.Height < step || o.Width > MaxSide || o.Height > MaxSide || o.Width%step != 0 || o.Height%step != 0:
		return o, fmt.Errorf("size %d×%d: width and height must be multiples of %d (the VAE's factor) from %d to %d",
			o.Width, o.Height, step, step, MaxSide)
	case o.N < 1 || o.N > MaxImages:
		return o, fmt.Errorf("n %d: want 1 … %d images", o.N, MaxImages)
	case o.ClipSkip < 0 || o.ClipSkip >= p.TextEncoder.Config.NumHiddenLayers:
		return o, fmt.Errorf("clip skip %d: want 0 … %d", o.ClipSkip, p.TextEncoder.Config.NumHiddenLayers-1)
	case o.Latents != nil && o.N != 1:
		return o, fmt.Errorf("given initial latents make one image, not %d", o.N)
	case o.Latents != nil && !slices.Equal(o.Latents.Shape(), []int{1, p.LatentChannels(), o.Height / p.ImageFactor(), o.Width / p.ImageFactor()}):
		return o, fmt.Errorf("initial latents %v, want (1, %d, %d, %d) for %d×%d", o.Latents.Shape(), p.LatentChannels(),
			o.Height/p.ImageFactor(), o.Width/p.ImageFactor(), o.Width, o.Height)
	}
	if _, err := ddpm.NewSigmaSampler(o.Sampler, p.Scheduler, o.Steps); err != nil {
		return o, err
	}
	return o, nil
}

// EncodePrompt returns the text states (1, 77, D) of a prompt: the text
// encoder's last_hidden_state, or with clipSkip k the final layer norm of
// the output of layer N−k. truncated reports a prompt cut to 77 tokens.
func (p *Pipeline) EncodePrompt(prompt string, clipSkip int) (states *tensor.Tensor, truncated bool, err error) {
	ids, truncated := p.Tokenizer.Tokenize(prompt)
	out, err := p.TextEncoder.Forward(ids, 1)
	if err != nil {
		return nil, truncated, err
	}
	if clipSkip == 0 {
		return out.LastHidden, truncated, nil
	}
	err = tensor.Catch(func() {
		states = p.TextEncoder.FinalLayerNorm.Forward(out.Hidden[len(out.Hidden)-1-clipSkip])
	})
	return states, truncated, err
}

// guidedModel is the U-Net with classifier-free guidance:
// ε = ε_u + g·(ε_c − ε_u), one batched pass with the unconditional half first.
func (p *Pipeline) guidedModel(cond, uncond *tensor.Tensor, g float64) ddpm.SigmaModel {
	return func(xt *tensor.Tensor, t float64) (*tensor.Tensor, error) {
		ts := []float32{float32(t)}
		if g <= 1 {
			return p.UNet.Forward(xt, ts, cond, nil, nil)
		}
		var x2, ctx *tensor.Tensor
		if err := tensor.Catch(func() { x2, ctx = tensor.Concat(0, xt, xt), tensor.Concat(0, uncond, cond) }); err != nil {
			return nil, err
		}
		out, err := p.UNet.Forward(x2, ts, ctx, nil, nil)
		if err != nil {
			return nil, err
		}
		var eps *tensor.Tensor
		err = tensor.Catch(func() {
			u, c := out.Narrow(0, 0, 1), out.Narrow(0, 1, 1)
			eps = tensor.Add(u, tensor.Scale(tensor.Sub(c, u), float32(g)))
		})
		return eps, err
	}
}

// Generate runs text-to-image.
func (p *Pipeline) Generate(o Options) (*Result, error) {
	return p.run(o, nil)
}

// img2img holds what image-to-image and inpainting add to a run.
type img2img struct {
	latents  *tensor.Tensor // the encoded image, already × scaling_factor
	strength float64
	noise    *tensor.Tensor // optional: the noise added to the image latents
	inpaint  bool
	mask     *tensor.Tensor // inpainting: (1, 1, h, w), 1 = repaint
	masked   *tensor.Tensor // inpainting U-Net: the masked image's latents
}

func (p *Pipeline) run(o Options, i2i *img2img) (*Result, error) {
	o, err := p.withDefaults(o)
	if err != nil {
		return nil, err
	}
	defer p.freeze()()
	res := &Result{}
	cond, truncated, err := p.EncodePrompt(o.Prompt, o.ClipSkip)
	if err != nil {
		return nil, err
	}
	if truncated {
		res.Warnings = append(res.Warnings, fmt.Sprintf("the prompt is longer than %d tokens; the rest was dropped, as diffusers does", p.Tokenizer.MaxLength-2))
	}
	var uncond *tensor.Tensor // only guidance uses it
	if o.Guidance > 1 {
		if uncond, truncated, err = p.EncodePrompt(o.Negative, 0); err != nil {
			return nil, err
		}
		if truncated {
			res.Warnings = append(res.Warnings, fmt.Sprintf("the negative prompt is longer than %d tokens; the rest was dropped", p.Tokenizer.MaxLength-2))
		}
	}
	f, L := p.ImageFactor(), p.LatentChannels()
	h, w := o.Height/f, o.Width/f
	model := p.guidedModel(cond, uncond, o.Guidance)
	if ctx := o.Context; ctx != nil {
		inner := model
		model = func(xt *tensor.Tensor, t float64) (*tensor.Tensor, error) {
			if ctx.Err() != nil {
				return nil, context.Cause(ctx)
			}
			return inner(xt, t)
		}
	}
	if p.IsInpainting() {
		if i2i == nil || !i2i.inpaint {
			return nil, fmt.Errorf("%s: an inpainting U-Net (in_channels %d) needs an image and a mask (Inpaint; diffuse inpaint -model)", p.Dir, p.UNet.Config.InChannels)
		}
		model = withMaskInputs(model, i2i.mask, i2i.masked)
	}
	for img := range o.N {
		seed := o.Seed + uint64(img)
		sm, err := ddpm.NewSigmaSampler(o.Sampler, p.Scheduler, o.Steps)
		if err != nil {
			return nil, err
		}
		rng := rand.New(rand.NewPCG(seed, 0x5d))
		noise := o.Latents
		if noise == nil {
			noise = ddpm.Randn(p.Device, rng, 1, L, h, w)
		}
		opt := ddpm.SigmaSampleOptions{Objective: p.Objective()}
		if p.VAE == nil {
			opt.Clip = 1 // pixel space: x̂_0 clipped to the data range
		}
		opt.OnStep = func(i int, out, x0, latents *tensor.Tensor) {
			if o.Trace != nil {
				o.Trace(i, out, x0, latents)
			}
			if o.OnStep != nil {
				o.OnStep(img, i+1, len(sm.Timesteps()))
			}
		}
		// Each stage (the text encoder, the U-Net's steps, the VAE) asks for
		// lengths of its own: what the device keeps of the one before is let go.
		tensor.ForgetRecycled(p.Device)
		var latents *tensor.Tensor
		if i2i != nil {
			latents, err = p.sampleFromImage(sm, model, i2i, rng, opt)
		} else {
			latents, err = ddpm.SampleSigma(sm, model, noise, rng, opt)
		}
		if err != nil {
			return nil, err
		}
		tensor.ForgetRecycled(p.Device)
		decoded, err := p.decode(latents)
		if err != nil {
			return nil, err
		}
		im, err := ToImage(decoded)
		if err != nil {
			return nil, err
		}
		res.Images = append(res.Images, im)
		res.Decoded = append(res.Decoded, decoded)
		res.Latents = append(res.Latents, latents)
		res.Parameters = append(res.Parameters, p.parameters(o, seed, i2i))
	}
	tensor.ForgetRecycled(p.Device) // the safety checker's lengths are its own too
	return res, p.screen(o, res)
}

// screen runs the safety check on a run's images under o.SafetyPolicy and
// watermarks what is kept.
func (p *Pipeline) screen(o Options, res *Result) error {
	policy := o.SafetyPolicy
	if policy == "" {
		policy = safety.Blur
	}
	imgs := make([]image.Image, len(res.Images))
	for i, im := range res.Images {
		imgs[i] = im
	}
	outs, err := safety.Apply(p.Safety, policy, imgs)
	if err != nil {
		return err
	}
	res.Safety = outs
	res.Watermarks = make([]uint64, len(outs))
	for i, out := range outs {
		res.Images[i] = nil
		if out.Image == nil {
			continue
		}
		img := out.Image
		if !o.NoWatermark {
			payload := watermark.PayloadFor(p.Name, o.Seed+uint64(i))
			if wm, err := watermark.Embed(img, payload); err == nil {
				img, res.Watermarks[i] = wm, payload
			}
		}
		nrgba, ok := img.(*image.NRGBA)
		if !ok {
			nrgba = image.NewNRGBA(img.Bounds())
			draw.Draw(nrgba, nrgba.Bounds(), img, img.Bounds().Min, draw.Src)
		}
		res.Images[i] = nrgba
	}
	return nil
}

// decode maps latents to the VAE's image (1, 3, H, W) in about [−1, 1].
func (p *Pipeline) decode(latents *tensor.Tensor) (*tensor.Tensor, error) {
	var z *tensor.Tensor
	if p.VAE == nil {
		return latents, nil
	}
	if err := tensor.Catch(func() { z = tensor.Scale(latents, float32(1/p.scaling())) }); err != nil {
		return nil, err
	}
	return p.VAE.Decode(z)
}

// ToImage maps a decoded (1, 3, H, W) tensor to 8-bit pixels as diffusers
// does: clamp(x/2 + 0.5, 0, 1)·255 in float32, rounded half to even. A
// non-finite value is an error: no image is made from it.
func ToImage(decoded *tensor.Tensor) (*image.NRGBA, error) {
	v, err := decoded.Float32s()
	if err != nil {
		return nil, err
	}
	if decoded.Rank() != 4 || decoded.Dim(0) != 1 || decoded.Dim(1) != 3 {
		return nil, fmt.Errorf("image tensor %v, want (1, 3, H, W)", decoded.Shape())
	}
	H, W := decoded.Dim(2), decoded.Dim(3)
	im := image.NewNRGBA(image.Rect(0, 0, W, H))
	for c := range 3 {
		for y := range H {
			for x := range W {
				d := v[(c*H+y)*W+x]
				if math.IsNaN(float64(d)) || math.IsInf(float64(d), 0) {
					return nil, fmt.Errorf("the decoded image holds %v at channel %d (%d, %d): the model produced non-finite values", d, c, x, y)
				}
				u := min(max(d/2+0.5, 0), 1)
				im.Pix[y*im.Stride+x*4+c] = uint8(math.RoundToEven(float64(u * 255)))
			}
		}
	}
	for i := 3; i < len(im.Pix); i += 4 {
		im.Pix[i] = 255
	}
	return im, nil
}

// parameters is the "parameters" text that SD front-ends write into PNGs:
//
//	prompt
//	Negative prompt: …
//	Steps: 25, Sampler: Euler a, CFG scale: 7.5, Seed: 1, Size: 512x512, Model hash: …, Model: …
func (p *Pipeline) parameters(o Options, seed uint64, i2i *img2img) string {
	var b strings.Builder
	b.WriteString(o.Prompt)
	if o.Negative != "" {
		b.WriteString("\nNegative prompt: " + o.Negative)
	}
	label := o.Sampler.Label()
	fmt.Fprintf(&b, "\nSteps: %d, Sampler: %s, CFG scale: %g, Seed: %d, Size: %dx%d, Model hash: %s, Model: %s",
		o.Steps, label, o.Guidance, seed, o.Width, o.Height, p.ModelHash(), p.Name)
	if i2i != nil {
		fmt.Fprintf(&b, ", Denoising strength: %g", i2i.strength)
	}
	if o.ClipSkip > 0 {
		fmt.Fprintf(&b, ", Clip skip: %d", o.ClipSkip+1)
	}
	b.WriteString(", Version: godiffuse")
	return b.String()
}

var hashes sync.Map // dir → hash

// ModelHash is the first 10 hex digits of the SHA-256 of the U-Net's weights
// file (A1111's short hash form, over the file that carries the model).
func (p *Pipeline) ModelHash() string {
	if h, ok := hashes.Load(p.Dir); ok {
		return h.(string)
	}
	h := "unknown"
	for _, name := range []string{"diffusion_pytorch_model.safetensors", "diffusion_pytorch_model.fp16.safetensors"} {
		f, err := os.Open(filepath.Join(p.Dir, "unet", name))
		if err != nil {
			continue
		}
		s := sha256.New()
		_, err = io.Copy(s, f)
		f.Close()
		if err == nil {
			h = hex.EncodeToString(s.Sum(nil))[:10]
		}
		break
	}
	hashes.Store(p.Dir, h)
	return h
}
