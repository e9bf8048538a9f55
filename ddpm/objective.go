package ddpm

import (
	"fmt"
	"math"

	"github.com/godiffuse/godiffuse/tensor"
)

// Objective is what the network is trained to predict.
type Objective string

// The three parameterizations.
const (
	// PredictEpsilon: the noise ε (Ho et al. 2020).
	PredictEpsilon Objective = "epsilon"
	// PredictV: v = α_t·ε - σ_t·x_0 (Salimans & Ho 2022).
	PredictV Objective = "v_prediction"
	// PredictX0: x_0 itself ("sample" in diffusers).
	PredictX0 Objective = "sample"
)

// ParseObjective accepts "epsilon"/"eps", "v_prediction"/"v", "sample"/"x0".
func ParseObjective(s string) (Objective, error) {
	switch s {
	case "epsilon", "eps":
		return PredictEpsilon, nil
	case "v_prediction", "v":
		return PredictV, nil
	case "sample", "x0":
		return PredictX0, nil
	}
	return "", fmt.Errorf("unknown objective %q (want epsilon, v_prediction or sample)", s)
}

// Target returns the regression target for a batch noised with noise at ts.
func (s *Schedule) Target(obj Objective, x0, noise *tensor.Tensor, ts []int) (*tensor.Tensor, error) {
	if err := s.checkBatch(x0, ts); err != nil {
		return nil, err
	}
	var out *tensor.Tensor
	err := tensor.Catch(func() {
		switch obj {
		case PredictEpsilon:
			out = noise
		case PredictX0:
			out = x0
		case PredictV:
			dev := x0.Device()
			a := perSample(dev, ts, func(t int) float64 { return s.SqrtAlphasCumprod[t] })
			b := perSample(dev, ts, func(t int) float64 { return s.SqrtOneMinusAlphasCumprod[t] })
			out = tensor.Sub(tensor.Mul(noise, a), tensor.Mul(x0, b))
		default:
			panic(&tensor.Error{Op: "target", Msg: fmt.Sprintf("unknown objective %q", obj)})
		}
	})
	return out, err
}

// LossWeights returns the per-sample min-SNR-γ weights (Hang et al. 2023)
// that make the loss of each objective equal to min(SNR, γ)·‖x̂_0 - x_0‖²:
//
//	ε: min(SNR, γ)/SNR,   v: min(SNR, γ)/(SNR + 1),   x0: min(SNR, γ)
//
// gamma ≤ 0 gives all ones (the plain MSE).
func (s *Schedule) LossWeights(obj Objective, ts []int, gamma float64) []float32 {
	w := make([]float32, len(ts))
	for i, t := range ts {
		if gamma <= 0 {
			w[i] = 1
			continue
		}
		snr := s.SNR(t)
		m := math.Min(snr, gamma)
		switch obj {
		case PredictEpsilon:
			w[i] = float32(m / snr)
		case PredictV:
			w[i] = float32(m / (snr + 1))
		default:
			w[i] = float32(m)
		}
	}
	return w
}

// WeightedMSE is mean_b w_b·mean((pred_b - target_b)²) for (B, ...) tensors.
func WeightedMSE(pred, target *tensor.Tensor, w []float32) *tensor.Tensor {
	B := pred.Dim(0)
	d := tensor.Square(tensor.Sub(pred, target)).Reshape(B, -1)
	per := tensor.MeanAxis(d, 1, false)
	allOne := true
	for _, v := range w {
		allOne = allOne && v == 1
	}
	if !allOne {
		per = tensor.Mul(per, tensor.FromFloat32(pred.Device(), w, B))
	}
	return tensor.Mean(per)
}

// Prediction is a model output converted to both estimates at one timestep.
type Prediction struct {
	X0, Eps *tensor.Tensor
}

// Convert turns a model output at timestep t (the same for the whole batch)
// into x̂_0 and ε̂, given x_t (α = √ᾱ_t, σ = √(1-ᾱ_t)):
//
//	ε:  x̂_0 = (x_t - σ·ε̂)/α
//	v:  x̂_0 = α·x_t - σ·v̂,  ε̂ = σ·x_t + α·v̂
//	x0: ε̂ = (x_t - α·x̂_0)/σ
//
// clip > 0 clamps x̂_0 to [-clip, clip] and recomputes ε̂ from it. An
// unknown objective, a timestep outside the schedule or tensors of unlike
// shapes are an error.
func (s *Schedule) Convert(obj Objective, out, xt *tensor.Tensor, t int, clip float32) (p Prediction, err error) {
	if t < 0 || t >= s.T {
		return p, fmt.Errorf("convert: timestep %d outside [0, %d)", t, s.T)
	}
	err = tensor.Catch(func() { p = s.convert(obj, out, xt, t, clip) })
	return p, err
}

func (s *Schedule) convert(obj Objective, out, xt *tensor.Tensor, t int, clip float32) Prediction {
	a, b := float32(s.SqrtAlphasCumprod[t]), float32(s.SqrtOneMinusAlphasCumprod[t])
	var p Prediction
	switch obj {
	case PredictEpsilon:
		p.Eps = out
		p.X0 = tensor.Scale(tensor.Sub(xt, tensor.Scale(out, b)), 1/a)
	case PredictV:
		p.X0 = tensor.Sub(tensor.Scale(xt, a), tensor.Scale(out, b))
		p.Eps = tensor.Add(tensor.Scale(xt, b), tensor.Scale(out, a))
	case PredictX0:
		p.X0 = out
		p.Eps = tensor.Scale(tensor.Sub(xt, tensor.Scale(out, a)), 1/b)
	default:
		panic(&tensor.Error{Op: "convert", Msg: fmt.Sprintf("unknown objective %q", obj)})
	}
	if clip > 0 {
		p.X0 = tensor.Clamp(p.X0, -clip, clip)
		p.Eps = tensor.Scale(tensor.Sub(xt, tensor.Scale(p.X0, a)), 1/b)
	}
	return p
}
