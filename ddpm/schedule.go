package ddpm

import (
	"fmt"
	"math"
)

// Schedule is a discrete noise schedule of T steps with every derived
// quantity precomputed in float64.
type Schedule struct {
	Name  string
	T     int
	Betas []float64 // β_t
	// AlphasCumprod is ᾱ_t = Π_{s≤t} (1-β_s).
	AlphasCumprod []float64
	// SqrtAlphasCumprod is α_t = √ᾱ_t; SqrtOneMinusAlphasCumprod is σ_t = √(1-ᾱ_t).
	SqrtAlphasCumprod, SqrtOneMinusAlphasCumprod []float64
	// PosteriorVariance is β̃_t = β_t·(1-ᾱ_{t-1})/(1-ᾱ_t), the variance of q(x_{t-1} | x_t, x_0).
	PosteriorVariance []float64
	// PosteriorMeanCoef1·x_0 + PosteriorMeanCoef2·x_t is its mean (Ho et al. eq. 7).
	PosteriorMeanCoef1, PosteriorMeanCoef2 []float64
}

// MaxTimesteps bounds T (checked before anything is allocated).
const MaxTimesteps = 100_000

// NewSchedule builds a schedule of T steps:
//
//	linear         β from 1e-4 to 0.02, evenly spaced (Ho et al. 2020)
//	scaled_linear  √β evenly spaced from √1e-4 to √0.02, squared (the latent-diffusion form)
//	cosine         ᾱ(t) = f(t)/f(0), f(t) = cos²((t/T + s)/(1 + s)·π/2), s = 0.008,
//	               β_t = min(1 - ᾱ(t+1)/ᾱ(t), 0.999) (Nichol & Dhariwal 2021; diffusers' squaredcos_cap_v2)
//	sigmoid        β = 1e-4 + (0.02 - 1e-4)·sigmoid(x), x evenly spaced in [-6, 6] (Xu et al., GeoDiff)
func NewSchedule(kind BetaSchedule, T int) (*Schedule, error) {
	if T < 2 || T > MaxTimesteps {
		return nil, fmt.Errorf("schedule: want 2 … %d timesteps, have %d", MaxTimesteps, T)
	}
	const start, end = 1e-4, 0.02
	betas := make([]float64, T)
	lin := func(a, b float64, i int) float64 { return a + (b-a)*float64(i)/float64(T-1) }
	switch kind {
	case Linear:
		for i := range betas {
			betas[i] = lin(start, end, i)
		}
	case ScaledLinear:
		for i := range betas {
			v := lin(math.Sqrt(start), math.Sqrt(end), i)
			betas[i] = v * v
		}
	case Cosine:
		for i := range betas {
			betas[i] = math.Min(1-CosineAlphaBar(float64(i+1)/float64(T))/CosineAlphaBar(float64(i)/float64(T)), 0.999)
		}
	case Sigmoid:
		for i := range betas {
			x := lin(-6, 6, i)
			betas[i] = start + (end-start)/(1+math.Exp(-x))
		}
	default:
		return nil, fmt.Errorf("schedule: unknown %v", kind)
	}
	return FromBetas(kind.String(), betas), nil
}

// CosineAlphaBar is f(u) = cos²((u + s)/(1 + s)·π/2) with s = 0.008, u = t/T.
// With β_i = 1 - f((i+1)/T)/f(i/T) the product telescopes: ᾱ_t = f((t+1)/T)/f(0)
// wherever the 0.999 cap does not bite (it only does at the last steps).
func CosineAlphaBar(u float64) float64 {
	c := math.Cos((u + 0.008) / 1.008 * math.Pi / 2)
	return c * c
}

// FromBetas derives every quantity from a list of betas.
func FromBetas(name string, betas []float64) *Schedule {
	T := len(betas)
	s := &Schedule{Name: name, T: T, Betas: betas,
		AlphasCumprod: make([]float64, T), SqrtAlphasCumprod: make([]float64, T), SqrtOneMinusAlphasCumprod: make([]float64, T),
		PosteriorVariance: make([]float64, T), PosteriorMeanCoef1: make([]float64, T), PosteriorMeanCoef2: make([]float64, T)}
	prod := 1.0
	for t, b := range betas {
		prev := prod
		prod *= 1 - b
		s.AlphasCumprod[t] = prod
		s.SqrtAlphasCumprod[t] = math.Sqrt(prod)
		s.SqrtOneMinusAlphasCumprod[t] = math.Sqrt(1 - prod)
		s.PosteriorVariance[t] = b * (1 - prev) / (1 - prod)
		s.PosteriorMeanCoef1[t] = b * math.Sqrt(prev) / (1 - prod)
		s.PosteriorMeanCoef2[t] = (1 - prev) * math.Sqrt(1-b) / (1 - prod)
	}
	return s
}

// AlphaBar returns ᾱ_t, with ᾱ_{-1} = 1 (the clean image) for t < 0.
func (s *Schedule) AlphaBar(t int) float64 {
	if t < 0 {
		return 1
	}
	return s.AlphasCumprod[t]
}

// stepAlphaBars returns ᾱ at point i of a descending list of timesteps, ᾱ at
// the next point (1 after the last), and that next timestep (-1 after the last).
func (s *Schedule) stepAlphaBars(steps []int, i int) (abT, abNext float64, next int) {
	next = -1
	if i+1 < len(steps) {
		next = steps[i+1]
	}
	return s.AlphaBar(steps[i]), s.AlphaBar(next), next
}

// ShiftSNR returns the schedule whose every SNR is this one's divided by k:
// ᾱ'_t = ᾱ_t/(ᾱ_t + k·(1 − ᾱ_t)), β'_t = 1 − ᾱ'_t/ᾱ'_{t−1}. This is the
// shifted schedule of Hoogeboom et al. 2023 ("simple diffusion", log SNR
// moved by −log k): a schedule made for 32×32 images leaves the coarse
// structure of a larger signal (a 32³ volume holds 32 times the values)
// nearly intact up to high t, so training and sampling see little of the
// noise levels where that structure is decided; dividing the SNR by the
// ratio of sizes gives them their share back.
func (s *Schedule) ShiftSNR(k float64) *Schedule {
	betas := make([]float64, s.T)
	prev := 1.0
	for t, ab := range s.AlphasCumprod {
		shifted := ab / (ab + k*(1-ab))
		betas[t] = 1 - shifted/prev
		prev = shifted
	}
	return FromBetas(fmt.Sprintf("%s, SNR/%g", s.Name, k), betas)
}

// SNR is ᾱ_t/(1-ᾱ_t).
func (s *Schedule) SNR(t int) float64 { return s.AlphasCumprod[t] / (1 - s.AlphasCumprod[t]) }
