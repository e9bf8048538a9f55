package ddpm

import (
	"fmt"
	"math"

	"github.com/godiffuse/godiffuse/tensor"
)

// DPMPP2M is DPM-Solver++(2M), the multistep second-order solver of the
// diffusion ODE in data prediction (Lu et al. 2022, Algorithm 2). With
// α_t = √ᾱ_t, σ_t = √(1-ᾱ_t), λ_t = ln(α_t/σ_t) and h = λ_t' - λ_t:
//
//	D   = x̂_0                                   (first step)
//	D   = (1 + 1/(2r))·x̂_0 - 1/(2r)·x̂_0,prev,   r = h_prev/h   (later steps)
//	x_t' = (σ_t'/σ_t)·x_t - α_t'·(e^(-h) - 1)·D
//
// The points are T-1 … down to the smallest of n+1 evenly spaced times
// (diffusers' linspace spacing), and the final step goes to σ = 0 with the
// first-order update, which returns x̂_0 (diffusers' lower_order_final).
type DPMPP2M struct {
	S     *Schedule
	steps []int
	prev  *tensor.Tensor // x̂_0 of the previous step
	hPrev float64
}

// NewDPMPP2M samples in `steps` model evaluations.
func NewDPMPP2M(s *Schedule, steps int) (*DPMPP2M, error) {
	if steps < 1 || steps > s.T {
		return nil, fmt.Errorf("steps: want 1 … %d (the schedule's T), have %d", s.T, steps)
	}
	ts, err := SpacedTimesteps(Linspace, s.T, min(steps+1, s.T))
	if err != nil {
		return nil, err
	}
	if steps < s.T {
		ts = ts[:steps] // drop t = 0: the last step goes to σ = 0
	}
	return &DPMPP2M{S: s, steps: ts}, nil
}

// Name implements Sampler.
func (d *DPMPP2M) Name() string { return "dpm++2m" }

// Timesteps implements Sampler.
func (d *DPMPP2M) Timesteps() []int { return d.steps }

// Reset implements Sampler.
func (d *DPMPP2M) Reset() { d.prev, d.hPrev = nil, 0 }

func (d *DPMPP2M) lambda(t int) float64 {
	return math.Log(d.S.SqrtAlphasCumprod[t]) - math.Log(d.S.SqrtOneMinusAlphasCumprod[t])
}

// Step implements Sampler.
func (d *DPMPP2M) Step(i int, x *tensor.Tensor, p Prediction, noise func() *tensor.Tensor) *tensor.Tensor {
	if i == len(d.steps)-1 {
		d.Reset()
		return p.X0
	}
	t, next := d.steps[i], d.steps[i+1]
	h := d.lambda(next) - d.lambda(t)
	D := p.X0
	if d.prev != nil {
		r := d.hPrev / h
		D = lin2(1+1/(2*r), p.X0, -1/(2*r), d.prev)
	}
	d.prev, d.hPrev = p.X0, h
	ratio := d.S.SqrtOneMinusAlphasCumprod[next] / d.S.SqrtOneMinusAlphasCumprod[t]
	return lin2(ratio, x, -d.S.SqrtAlphasCumprod[next]*(math.Exp(-h)-1), D)
}
