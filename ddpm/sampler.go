package ddpm

import (
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/godiffuse/godiffuse/tensor"
)

// Model returns the network's raw output for x at integer timestep t (the
// same t for the whole batch). Conditioning and guidance are closed over.
type Model func(x *tensor.Tensor, t int) (*tensor.Tensor, error)

// Sampler is one reverse-process solver. Sample drives it: for each i it
// evaluates the model at Timesteps()[i] and hands the converted prediction
// to Step, which returns x at the next point (x_0 after the last step).
type Sampler interface {
	Name() string
	// Timesteps are the model evaluation points, descending.
	Timesteps() []int
	// Reset clears multistep state before a new trajectory.
	Reset()
	// Step maps x at point i to the next point. noise draws N(0, I) of x's shape.
	Step(i int, x *tensor.Tensor, p Prediction, noise func() *tensor.Tensor) *tensor.Tensor
}

// SampleOptions tunes Sample.
type SampleOptions struct {
	Objective Objective // what the model predicts (default epsilon)
	Clip      float32   // clamp x̂_0 to [-Clip, Clip] when > 0
	// OnStep, when set, sees x after every step and the x̂_0 that produced it.
	OnStep func(i, t int, x, x0 *tensor.Tensor)
}

// Sample runs the sampler from x_T, drawing any noise from rng.
func Sample(s *Schedule, sm Sampler, model Model, xT *tensor.Tensor, rng *rand.Rand, opt SampleOptions) (*tensor.Tensor, error) {
	return sampleFrom(s, sm, model, xT, 0, rng, opt)
}

// sampleFrom runs the sampler's steps from point start on, x being x at
// that point.
func sampleFrom(s *Schedule, sm Sampler, model Model, x *tensor.Tensor, start int, rng *rand.Rand, opt SampleOptions) (*tensor.Tensor, error) {
	if opt.Objective == "" {
		opt.Objective = PredictEpsilon
	}
	sm.Reset()
	noise := func() *tensor.Tensor { return Randn(x.Device(), rng, x.Shape()...) }
	for i := start; i < len(sm.Timesteps()); i++ {
		var err error
		if x, err = s.step(sm, model, x, i, noise, opt, nil); err != nil {
			return nil, err
		}
	}
	return x, nil
}

// step evaluates the model at point i and takes the sampler's step from x;
// after (may be nil) then rewrites the result (inpainting's kept region),
// and opt.OnStep sees it.
func (s *Schedule) step(sm Sampler, model Model, x *tensor.Tensor, i int, noise func() *tensor.Tensor, opt SampleOptions, after func(*tensor.Tensor) *tensor.Tensor) (*tensor.Tensor, error) {
	t := sm.Timesteps()[i]
	out, err := model(x, t)
	if err != nil {
		return nil, fmt.Errorf("%s step %d (t=%d): %w", sm.Name(), i, t, err)
	}
	err = tensor.Catch(func() {
		p := s.convert(opt.Objective, out, x, t, opt.Clip)
		x = sm.Step(i, x, p, noise)
		if after != nil {
			x = after(x)
		}
		if opt.OnStep != nil {
			opt.OnStep(i, t, x, p.X0)
		}
	})
	if err != nil {
		return nil, fmt.Errorf("%s step %d (t=%d): %w", sm.Name(), i, t, err)
	}
	return x, nil
}

// Randn draws a tensor of N(0, 1) values from rng (on the host, then uploaded,
// so the same seed gives the same noise on every device).
func Randn(dev tensor.Device, rng *rand.Rand, shape ...int) *tensor.Tensor {
	n := 1
	for _, s := range shape {
		n *= s
	}
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(rng.NormFloat64())
	}
	return tensor.FromFloat32(dev, v, shape...)
}

// lin2 returns a·x + b·y for scalar a, b.
func lin2(a float64, x *tensor.Tensor, b float64, y *tensor.Tensor) *tensor.Tensor {
	return tensor.Add(tensor.Scale(x, float32(a)), tensor.Scale(y, float32(b)))
}

// SpacedTimesteps picks n of T timesteps, descending, as diffusers'
// schedulers do (Lin et al. 2024 compare them):
//
//	leading   (n-1-i)·⌊T/n⌋                  ends at 0, never reaches T-1
//	trailing  round(T - i·T/n) - 1           starts at T-1
//	linspace  round of n evenly spaced points from T-1 down to 0
func SpacedTimesteps(spacing Spacing, T, n int) ([]int, error) {
	if n < 1 || n > T {
		return nil, fmt.Errorf("steps: want 1 … %d, have %d", T, n)
	}
	ts := make([]int, n)
	switch spacing {
	case Leading:
		r := T / n
		for i := range ts {
			ts[i] = (n - 1 - i) * r
		}
	case Trailing:
		r := float64(T) / float64(n)
		for i := range ts {
			ts[i] = int(math.Round(float64(T)-float64(i)*r)) - 1
		}
	case Linspace:
		for i := range ts {
			if n == 1 {
				ts[i] = T - 1
				break
			}
			ts[i] = int(math.Round(float64(T-1) * float64(n-1-i) / float64(n-1)))
		}
	default:
		return nil, fmt.Errorf("timestep spacing %v: want leading, trailing or linspace", spacing)
	}
	return ts, nil
}

// NewSampler builds a sampler of a DDPM checkpoint's schedule.
func NewSampler(kind SamplerKind, s *Schedule, steps int, spacing Spacing, eta float64) (Sampler, error) {
	switch kind {
	case SamplerDDPM:
		return NewDDPM(s, steps, spacing, FixedSmall)
	case SamplerDDPMLarge:
		return NewDDPM(s, steps, spacing, FixedLarge)
	case SamplerDDIM:
		return NewDDIM(s, steps, spacing, eta)
	case SamplerDPMPP2M:
		return NewDPMPP2M(s, steps)
	}
	return nil, fmt.Errorf("unknown %v", kind)
}
