package ddpm

import (
	"fmt"

	"github.com/godiffuse/godiffuse/tensor"
)

// perSample makes a (B, 1, 1, 1) tensor of coefficients c(t_b) for a batch.
func perSample(dev tensor.Device, ts []int, c func(t int) float64) *tensor.Tensor {
	v := make([]float32, len(ts))
	for i, t := range ts {
		v[i] = float32(c(t))
	}
	return tensor.FromFloat32(dev, v, len(ts), 1, 1, 1)
}

// AddNoise samples q(x_t | x_0) for a batch (Ho et al. eq. 4):
//
//	x_t = √ᾱ_t·x_0 + √(1-ᾱ_t)·ε
//
// x0 and noise are (B, C, H, W); ts holds one timestep per sample.
func (s *Schedule) AddNoise(x0, noise *tensor.Tensor, ts []int) (*tensor.Tensor, error) {
	if err := s.checkBatch(x0, ts); err != nil {
		return nil, err
	}
	var out *tensor.Tensor
	err := tensor.Catch(func() {
		dev := x0.Device()
		a := perSample(dev, ts, func(t int) float64 { return s.SqrtAlphasCumprod[t] })
		b := perSample(dev, ts, func(t int) float64 { return s.SqrtOneMinusAlphasCumprod[t] })
		out = tensor.Add(tensor.Mul(x0, a), tensor.Mul(noise, b))
	})
	return out, err
}

func (s *Schedule) checkBatch(x *tensor.Tensor, ts []int) error {
	if x.Rank() != 4 || x.Dim(0) != len(ts) {
		return fmt.Errorf("ddpm: batch %v with %d timesteps (want (B, C, H, W) and B timesteps)", x.Shape(), len(ts))
	}
	for _, t := range ts {
		if t < 0 || t >= s.T {
			return fmt.Errorf("ddpm: timestep %d outside [0, %d)", t, s.T)
		}
	}
	return nil
}
