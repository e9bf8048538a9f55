package pipeline

import (
	"fmt"
	"image"
	"image/color"
	"math/rand/v2"

	"github.com/godiffuse/godiffuse/ddpm"
	"github.com/godiffuse/godiffuse/tensor"
)

// InpaintOptions adds the image, the mask and the strength to Options.
type InpaintOptions struct {
	Options
	Image image.Image // resized to Width×Height (default: its own size, which must fit SizeStep)
	// Mask: white (grey ≥ 50 %) is repainted, black is kept; resized to the
	// image's size by nearest neighbour when it differs.
	Mask image.Image
	// Strength in (0, 1] (default 1: the masked region starts from pure
	// noise), as for Img2Img.
	Strength float64
	// EncoderNoise, MaskedEncoderNoise and Noise, when set, replace the draws
	// of the image's latent sample, the masked image's latent sample and the
	// noise (of the start and of the kept latents), to reproduce another run.
	EncoderNoise, MaskedEncoderNoise, Noise *tensor.Tensor
}

// Inpaint repaints the masked part of an image as diffusers'
// StableDiffusionInpaintPipeline does:
//
//   - any model: the image is VAE-encoded and, after every step, the latents
//     outside the mask (downsampled to the latent grid by nearest neighbour,
//     as torch's interpolate) are replaced by the image's latents noised to
//     the next step's level (clean after the last step);
//   - an inpainting U-Net (in_channels 2·latent+1): the U-Net sees the mask
//     and the latents of the masked image (image · (mask < ½)) beside the
//     latents, and no latents are replaced.
//
// The kept region comes back as the VAE round trip of the input (the
// latents are kept, not the pixels).
func (p *Pipeline) Inpaint(o InpaintOptions) (*Result, error) {
	if o.Strength == 0 {
		o.Strength = 1
	}
	if o.Image == nil || o.Mask == nil {
		return nil, fmt.Errorf("inpaint: an image and a mask are needed")
	}
	opts, err := p.fromImageDefaults("inpaint", o.Options, o.Image, o.Strength)
	if err != nil {
		return nil, err
	}
	x := imageTensor(p.Device, o.Image, opts.Width, opts.Height)
	pixMask := MaskTensor(p.Device, o.Mask, opts.Width, opts.Height)
	latents, err := p.encodeSample(x, o.EncoderNoise, opts.Seed, 0xe7c)
	if err != nil {
		return nil, err
	}
	f := p.ImageFactor()
	h, w := opts.Height/f, opts.Width/f
	run := &img2img{latents: latents, strength: o.Strength, noise: o.Noise, inpaint: true}
	err = tensor.Catch(func() { run.mask = downsampleNearest(pixMask, h, w) })
	if err != nil {
		return nil, err
	}
	if p.IsInpainting() {
		var masked *tensor.Tensor
		if err := tensor.Catch(func() { masked = tensor.Mul(x, tensor.Affine(pixMask, -1, 1)) }); err != nil {
			return nil, err
		}
		if run.masked, err = p.encodeSample(masked, o.MaskedEncoderNoise, opts.Seed, 0x3a5c); err != nil {
			return nil, err
		}
	}
	return p.run(opts, run)
}

// encodeSample VAE-encodes x and returns a sample of the latent
// distribution × scaling_factor (eps, or a draw from seed and stream).
func (p *Pipeline) encodeSample(x, eps *tensor.Tensor, seed, stream uint64) (*tensor.Tensor, error) {
	if p.VAE == nil { // pixel space: the image is the sample
		return x, nil
	}
	mean, logvar, err := p.VAE.Encode(x)
	if err != nil {
		return nil, err
	}
	var latents *tensor.Tensor
	err = tensor.Catch(func() {
		if eps == nil {
			eps = ddpm.Randn(p.Device, rand.New(rand.NewPCG(seed, stream)), mean.Shape()...)
		}
		z := tensor.Add(mean, tensor.Mul(tensor.Exp(tensor.Scale(logvar, 0.5)), eps))
		latents = tensor.Scale(z, float32(p.scaling()))
	})
	return latents, err
}

// MaskTensor converts a mask image to (1, 1, H, W) of 0 (keep) and 1
// (repaint): grey ≥ 50 % is 1 (diffusers' mask processor binarizes at
// 0.5), resized to w×h by nearest neighbour first when its size differs.
func MaskTensor(dev tensor.Device, mask image.Image, w, h int) *tensor.Tensor {
	return tensor.FromFloat32(dev, MaskValues(mask, w, h), 1, 1, h, w)
}

// MaskValues is MaskTensor's h×w values (row-major).
func MaskValues(mask image.Image, w, h int) []float32 {
	b := mask.Bounds()
	v := make([]float32, h*w)
	for y := range h {
		for x := range w {
			sx, sy := b.Min.X+x*b.Dx()/w, b.Min.Y+y*b.Dy()/h
			if color.GrayModel.Convert(mask.At(sx, sy)).(color.Gray).Y >= 128 {
				v[y*w+x] = 1
			}
		}
	}
	return v
}

// downsampleNearest picks, for each of h×w cells, the pixel torch's
// nearest interpolation picks: source index ⌊i·in/out⌋.
func downsampleNearest(m *tensor.Tensor, h, w int) *tensor.Tensor {
	H, W := m.Dim(2), m.Dim(3)
	v := m.MustFloat32s()
	out := make([]float32, h*w)
	for y := range h {
		for x := range w {
			out[y*w+x] = v[(y*H/h)*W+x*W/w]
		}
	}
	return tensor.FromFloat32(m.Device(), out, 1, 1, h, w)
}

// withMaskInputs feeds an inpainting U-Net: its input is the latents, the
// latent mask and the masked image's latents, concatenated on channels.
func withMaskInputs(model ddpm.SigmaModel, mask, masked *tensor.Tensor) ddpm.SigmaModel {
	return func(xt *tensor.Tensor, t float64) (*tensor.Tensor, error) {
		var in *tensor.Tensor
		if err := tensor.Catch(func() { in = tensor.Concat(1, xt, mask, masked) }); err != nil {
			return nil, err
		}
		return model(in, t)
	}
}
