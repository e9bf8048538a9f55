package ddpm

import (
	"math"

	"github.com/godiffuse/godiffuse/tensor"
)

// DDIM (Song et al. 2021, eq. 12). From t to the next point t' (ᾱ_t' = 1 at
// the end, diffusers' set_alpha_to_one):
//
//	σ = η·√((1-ᾱ_t')/(1-ᾱ_t))·√(1 - ᾱ_t/ᾱ_t')
//	x_t' = √ᾱ_t'·x̂_0 + √(1-ᾱ_t'-σ²)·ε̂ + σ·z
//
// η = 0 is the deterministic sampler; η = 1 matches DDPM's variance.
type DDIM struct {
	S     *Schedule
	steps []int
	Eta   float64
}

// NewDDIM samples on `steps` points with the given spacing (default leading).
func NewDDIM(s *Schedule, steps int, spacing Spacing, eta float64) (*DDIM, error) {
	ts, err := SpacedTimesteps(spacing.or(Leading), s.T, steps)
	if err != nil {
		return nil, err
	}
	return &DDIM{S: s, steps: ts, Eta: eta}, nil
}

// Name implements Sampler.
func (d *DDIM) Name() string { return "ddim" }

// Timesteps implements Sampler.
func (d *DDIM) Timesteps() []int { return d.steps }

// Reset implements Sampler.
func (d *DDIM) Reset() {}

// Step implements Sampler.
func (d *DDIM) Step(i int, x *tensor.Tensor, p Prediction, noise func() *tensor.Tensor) *tensor.Tensor {
	abT, abP, _ := d.S.stepAlphaBars(d.steps, i)
	sigma := d.Eta * math.Sqrt((1-abP)/(1-abT)) * math.Sqrt(1-abT/abP)
	out := lin2(math.Sqrt(abP), p.X0, math.Sqrt(math.Max(1-abP-sigma*sigma, 0)), p.Eps)
	if sigma > 0 {
		out = tensor.Add(out, tensor.Scale(noise(), float32(sigma)))
	}
	return out
}
