package ddpm

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"

	"github.com/godiffuse/godiffuse/tensor"
)

// Inpainting: the sampler runs as usual, and after every step the region to
// keep is overwritten with the input image at the noise level of the new
// point, so the model fills in the rest to agree with it. How the kept
// region is written is the method:
//
//	replace        the image noised to the current level, q(x_t | x_0) with
//	               fresh noise (Song et al. 2021, appendix; Lugmayr et al.
//	               2022, eq. 8)
//	replace-clean  the clean image itself, at every level (the seed's slide
//	               7): the model then sees a kept region with no noise next
//	               to a filled region at level t, an input it never saw in
//	               training, and the fill drifts off the true conditional
//	               (TestInpaintGaussianOracle measures by how much)
//	repaint        replace, plus RePaint's resampling (Lugmayr et al. 2022):
//	               every `jump` steps the result is noised back up `jump`
//	               steps (q(x_t+j | x_t)) and denoised again, `resample`
//	               times in all, which lets the two regions agree
//
// The kept region of the result is the input image exactly.
const (
	InpaintReplace      = "replace"
	InpaintReplaceClean = "replace-clean"
	InpaintRePaint      = "repaint"
)

// InpaintMethods are the methods Inpaint takes.
var InpaintMethods = []string{InpaintReplace, InpaintReplaceClean, InpaintRePaint}

// InpaintOptions says what to keep and how.
type InpaintOptions struct {
	Method string         // one of InpaintMethods (default replace)
	Image  *tensor.Tensor // x_0 whose kept region is returned as is, shape of x_T
	Mask   *tensor.Tensor // 1 where the image is filled in, 0 where it is kept; shape of x_T
	// RePaint's time travel: jump back Jump steps, Resample times at each
	// jump point (the paper's defaults, 10 and 10, when 0).
	Jump, Resample int
}

// RePaint's defaults (Lugmayr et al. 2022, section 4.3).
const (
	DefaultJump     = 10
	DefaultResample = 10
)

func (o *InpaintOptions) check(xT *tensor.Tensor) error {
	if o.Method == "" {
		o.Method = InpaintReplace
	}
	if !slices.Contains(InpaintMethods, o.Method) {
		return fmt.Errorf("inpaint: unknown method %q (want %s)", o.Method, strings.Join(InpaintMethods, ", "))
	}
	if o.Image == nil || o.Mask == nil {
		return fmt.Errorf("inpaint: an image and a mask are needed")
	}
	if !slices.Equal(o.Image.Shape(), xT.Shape()) || !slices.Equal(o.Mask.Shape(), xT.Shape()) {
		return fmt.Errorf("inpaint: image %v and mask %v must have the shape of x_T %v", o.Image.Shape(), o.Mask.Shape(), xT.Shape())
	}
	m, err := o.Mask.Float32s()
	if err != nil {
		return err
	}
	for i, v := range m {
		if v != 0 && v != 1 {
			return fmt.Errorf("inpaint: mask value %g at %d (want 0 to keep or 1 to fill)", v, i)
		}
	}
	if o.Jump == 0 {
		o.Jump = DefaultJump
	}
	if o.Resample == 0 {
		o.Resample = DefaultResample
	}
	if o.Jump < 1 || o.Resample < 1 || o.Resample > 1000 {
		return fmt.Errorf("inpaint: jump %d and resample %d (want jump ≥ 1 and 1 ≤ resample ≤ 1000)", o.Jump, o.Resample)
	}
	return nil
}

// A move of the inpainting walk over the sampler's points: down from point
// p to p+1 (a sampler step), or up from p+1 back to p (forward noising).
type move struct {
	p    int
	down bool
}

// walk lists the moves over n points (point n is x_0): straight down, or
// with RePaint's time travel (the paper's get_schedule_jump in points:
// after arriving r points from the end, r ∈ {0, jump, 2·jump, …} below
// n - jump, go back up jump points, resample-1 times per such r).
func walk(n, jump, resample int, repaint bool) []move {
	var moves []move
	if !repaint {
		for p := range n {
			moves = append(moves, move{p, true})
		}
		return moves
	}
	left := map[int]int{}
	for r := 0; r < n-jump; r += jump {
		left[r] = resample - 1
	}
	for r := n; r >= 1; {
		r--
		moves = append(moves, move{n - r - 1, true})
		if left[r] > 0 {
			left[r]--
			for range jump {
				r++
				moves = append(moves, move{n - r, false})
			}
		}
	}
	return moves
}

// Inpaint samples like Sample, keeping the masked-out region of in.Image
// (see the methods above). It works with every sampler and with guidance
// (pass the guided model). OnStep sees each downward step's result.
func Inpaint(s *Schedule, sm Sampler, model Model, xT *tensor.Tensor, rng *rand.Rand, opt SampleOptions, in InpaintOptions) (*tensor.Tensor, error) {
	if err := in.check(xT); err != nil {
		return nil, err
	}
	if opt.Objective == "" {
		opt.Objective = PredictEpsilon
	}
	points := sm.Timesteps()
	n := len(points)
	alphaBar := func(p int) float64 { // ᾱ at point p; 1 at x_0
		if p >= n {
			return 1
		}
		return s.AlphaBar(points[p])
	}
	dev := xT.Device()
	noise := func() *tensor.Tensor { return Randn(dev, rng, xT.Shape()...) }
	var keep, fill *tensor.Tensor
	// kept returns the kept region's values at point p.
	kept := func(p int) *tensor.Tensor {
		if in.Method == InpaintReplaceClean || p >= n {
			return in.Image
		}
		ab := alphaBar(p)
		return lin2(math.Sqrt(ab), in.Image, math.Sqrt(1-ab), noise())
	}
	// combine takes x where the mask is 1 and k where it is 0.
	combine := func(x, k *tensor.Tensor) *tensor.Tensor {
		return tensor.Add(tensor.Mul(x, fill), tensor.Mul(k, keep))
	}
	var x *tensor.Tensor
	err := tensor.Catch(func() {
		fill = in.Mask
		keep = tensor.Affine(in.Mask, -1, 1)
		x = combine(xT, kept(0))
	})
	if err != nil {
		return nil, err
	}
	sm.Reset()
	for _, mv := range walk(n, in.Jump, in.Resample, in.Method == InpaintRePaint) {
		if !mv.down { // q(x_p | x_p+1): back up one point
			ratio := alphaBar(mv.p) / alphaBar(mv.p+1)
			if err := tensor.Catch(func() { x = lin2(math.Sqrt(ratio), x, math.Sqrt(1-ratio), noise()) }); err != nil {
				return nil, err
			}
			sm.Reset() // a multistep solver's history is of another trajectory now
			continue
		}
		var err error
		x, err = s.step(sm, model, x, mv.p, noise, opt, func(x *tensor.Tensor) *tensor.Tensor { return combine(x, kept(mv.p+1)) })
		if err != nil {
			return nil, err
		}
	}
	return x, nil
}

// SDEdit is image-to-image (Meng et al. 2022): the image is noised to the
// sampler's point nearest strength·T (q(x_t | x_0)) and denoised from there,
// so strength 1 ignores the image and small strengths change it little.
// Like diffusers' img2img, the run takes the last ⌈strength·steps⌉ of the
// sampler's points.
func SDEdit(s *Schedule, sm Sampler, model Model, image *tensor.Tensor, strength float64, rng *rand.Rand, opt SampleOptions) (*tensor.Tensor, error) {
	if !(strength > 0 && strength <= 1) {
		return nil, fmt.Errorf("sdedit: strength %g (want 0 < strength ≤ 1)", strength)
	}
	points := sm.Timesteps()
	start := len(points) - int(math.Ceil(strength*float64(len(points))))
	start = min(max(start, 0), len(points)-1)
	var x *tensor.Tensor
	err := tensor.Catch(func() {
		ab := s.AlphaBar(points[start])
		x = lin2(math.Sqrt(ab), image, math.Sqrt(1-ab), Randn(image.Device(), rng, image.Shape()...))
	})
	if err != nil {
		return nil, err
	}
	return sampleFrom(s, sm, model, x, start, rng, opt)
}
