package ddpm

import (
	"fmt"
	"math"

	"github.com/godiffuse/godiffuse/tensor"
)

// DDPM is ancestral sampling (Ho et al. 2020, Algorithm 2, in its
// posterior-mean form). Between consecutive points t > t' (t' = -1 at the
// end, where ᾱ = 1), with β' = 1 - ᾱ_t/ᾱ_t':
//
//	μ = √ᾱ_t'·β'/(1-ᾱ_t')·x̂_0 + √(1-β')·(1-ᾱ_t')/(1-ᾱ_t)·x_t      (eq. 7)
//	x_t' = μ + σ·z,  σ² = β'·(1-ᾱ_t')/(1-ᾱ_t) ("fixed_small", β̃) or β' ("fixed_large")
//
// and no noise on the last step. With all T steps β' = β_t.
type DDPM struct {
	S        *Schedule
	steps    []int
	Variance Variance
}

// NewDDPM samples on `steps` points of the schedule (T for the original).
func NewDDPM(s *Schedule, steps int, spacing Spacing, variance Variance) (*DDPM, error) {
	if variance != FixedSmall && variance != FixedLarge {
		return nil, fmt.Errorf("ddpm: variance %v (want fixed_small or fixed_large)", variance)
	}
	ts, err := SpacedTimesteps(spacing.or(Leading), s.T, steps)
	if err != nil {
		return nil, err
	}
	return &DDPM{S: s, steps: ts, Variance: variance}, nil
}

// Name implements Sampler.
func (d *DDPM) Name() string { return "ddpm" }

// Timesteps implements Sampler.
func (d *DDPM) Timesteps() []int { return d.steps }

// Reset implements Sampler.
func (d *DDPM) Reset() {}

// Step implements Sampler.
func (d *DDPM) Step(i int, x *tensor.Tensor, p Prediction, noise func() *tensor.Tensor) *tensor.Tensor {
	abT, abP, prev := d.S.stepAlphaBars(d.steps, i)
	beta := 1 - abT/abP
	c1 := math.Sqrt(abP) * beta / (1 - abT)
	c2 := math.Sqrt(1-beta) * (1 - abP) / (1 - abT)
	mean := lin2(c1, p.X0, c2, x)
	if prev < 0 {
		return mean
	}
	v := beta
	if d.Variance == FixedSmall {
		v = math.Max(beta*(1-abP)/(1-abT), 1e-20)
	}
	return tensor.Add(mean, tensor.Scale(noise(), float32(math.Sqrt(v))))
}
