package pipeline

import (
	"fmt"
	"image"
	"math/rand/v2"

	"golang.org/x/image/draw"

	"github.com/godiffuse/godiffuse/ddpm"
	"github.com/godiffuse/godiffuse/tensor"
)

// Img2ImgOptions adds the input image and the strength to Options.
type Img2ImgOptions struct {
	Options
	Image image.Image // resized to Width×Height (default: its own size, which must fit SizeStep)
	// Strength in (0, 1]: how far into the noise the image is taken; the run
	// does round(Steps·Strength) of the Steps steps (diffusers' get_timesteps).
	Strength float64
	// EncoderNoise and Noise, when set, replace the draws of the VAE latent
	// sample and of the noise added to it (to reproduce another run).
	EncoderNoise, Noise *tensor.Tensor
}

// Img2Img runs image-to-image as diffusers' StableDiffusionImg2ImgPipeline:
// the image is VAE-encoded (a sample of the latent distribution) and scaled,
// strength picks the first of the Steps timesteps (the last
// ⌊Steps·strength⌋ are run), the latents are noised to that point and
// denoised from there.
func (p *Pipeline) Img2Img(o Img2ImgOptions) (*Result, error) {
	if o.Image == nil {
		return nil, fmt.Errorf("img2img: no input image")
	}
	opts, err := p.fromImageDefaults("img2img", o.Options, o.Image, o.Strength)
	if err != nil {
		return nil, err
	}
	latents, err := p.encodeSample(imageTensor(p.Device, o.Image, opts.Width, opts.Height), o.EncoderNoise, opts.Seed, 0xe7c)
	if err != nil {
		return nil, err
	}
	return p.run(opts, &img2img{latents: latents, strength: o.Strength, noise: o.Noise})
}

// fromImageDefaults checks the strength and completes o for a run that
// starts from img: without a width and height, the image's own size (which
// must then fit SizeStep).
func (p *Pipeline) fromImageDefaults(task string, o Options, img image.Image, strength float64) (Options, error) {
	if !(strength > 0 && strength <= 1) {
		return o, fmt.Errorf("strength %g: want 0 < strength ≤ 1", strength)
	}
	if b := img.Bounds(); o.Width == 0 && o.Height == 0 {
		o.Width, o.Height = b.Dx(), b.Dy()
		if step := p.SizeStep(); o.Width%step != 0 || o.Height%step != 0 {
			return o, fmt.Errorf("%s: the image is %d×%d; give -width and -height (multiples of %d) to resize it", task, o.Width, o.Height, step)
		}
	}
	return p.withDefaults(o)
}

// sampleFromImage noises the image latents to the first kept step and
// runs the rest: t_start = Steps − min(⌊Steps·strength⌋, Steps). Inpainting
// at strength 1 starts from pure noise instead (diffusers' is_strength_max),
// and keeps the latents outside the mask.
func (p *Pipeline) sampleFromImage(sm ddpm.SigmaSampler, model ddpm.SigmaModel, i2i *img2img, rng *rand.Rand, opt ddpm.SigmaSampleOptions) (*tensor.Tensor, error) {
	n := len(sm.Timesteps())
	keep := min(int(float64(n)*i2i.strength), n)
	if keep < 1 {
		return nil, fmt.Errorf("strength %g keeps no step of %d: raise the strength or the steps", i2i.strength, n)
	}
	noise := i2i.noise
	if noise == nil {
		noise = ddpm.Randn(p.Device, rng, i2i.latents.Shape()...)
	}
	if i2i.inpaint {
		if !p.IsInpainting() {
			opt.Keep = &ddpm.KeepLatents{Latents: i2i.latents, Mask: i2i.mask, Noise: noise}
		}
		if i2i.strength >= 1 {
			return ddpm.SampleSigma(sm, model, noise, rng, opt)
		}
	}
	start := n - keep
	s := sm.ModelSigma(start)
	var x *tensor.Tensor // x_σ = x_0 + σ·noise at the first kept point
	if err := tensor.Catch(func() { x = tensor.Add(i2i.latents, tensor.Scale(noise, float32(s))) }); err != nil {
		return nil, err
	}
	opt.Start, opt.StartX = start, x
	return ddpm.SampleSigma(sm, model, nil, rng, opt)
}

// imageTensor converts an image to (1, 3, H, W) in [−1, 1], resized to w×h
// first (Catmull-Rom, golang.org/x/image/draw) when its size differs.
func imageTensor(dev tensor.Device, img image.Image, w, h int) *tensor.Tensor {
	if b := img.Bounds(); b.Dx() != w || b.Dy() != h {
		dst := image.NewNRGBA(image.Rect(0, 0, w, h))
		draw.CatmullRom.Scale(dst, dst.Bounds(), img, b, draw.Src, nil)
		img = dst
	}
	b := img.Bounds()
	v := make([]float32, 3*h*w)
	for y := range h {
		for x := range w {
			r, g, bl, _ := img.At(b.Min.X+x, b.Min.Y+y).RGBA()
			for c, u := range [3]uint32{r, g, bl} {
				v[(c*h+y)*w+x] = float32(float64(u>>8)/255*2 - 1)
			}
		}
	}
	return tensor.FromFloat32(dev, v, 1, 3, h, w)
}
