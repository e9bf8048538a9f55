package ddpm

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
)

// SchedulerConfig is a diffusers scheduler/scheduler_config.json. Stable
// Diffusion folders name various classes there (PNDMScheduler,
// DDIMScheduler, …); whatever the class, the betas, the timestep settings and
// the prediction type are read from it and the sampler is the one the user
// picks. Keys the file lacks take the defaults of that sampler's diffusers
// class (TimestepSpacing "" means "the sampler's default").
type SchedulerConfig struct {
	ClassName         string    `json:"_class_name"`
	NumTrainTimesteps int       `json:"num_train_timesteps"`
	BetaStart         float64   `json:"beta_start"`
	BetaEnd           float64   `json:"beta_end"`
	BetaSchedule      string    `json:"beta_schedule"`
	TrainedBetas      []float64 `json:"trained_betas"`
	SetAlphaToOne     bool      `json:"set_alpha_to_one"`
	StepsOffset       int       `json:"steps_offset"`
	PredictionType    string    `json:"prediction_type"`
	TimestepSpacing   string    `json:"timestep_spacing"`
	ClipSample        bool      `json:"clip_sample"`
	ClipSampleRange   float64   `json:"clip_sample_range"`
	UseKarrasSigmas   bool      `json:"use_karras_sigmas"`
	Thresholding      bool      `json:"thresholding"`
	RescaleZeroSNR    bool      `json:"rescale_betas_zero_snr"`
}

// DefaultSchedulerConfig is DDIMScheduler's default.
func DefaultSchedulerConfig() SchedulerConfig {
	return SchedulerConfig{NumTrainTimesteps: 1000, BetaStart: 0.0001, BetaEnd: 0.02, BetaSchedule: "linear",
		SetAlphaToOne: true, PredictionType: "epsilon", ClipSample: true, ClipSampleRange: 1}
}

// ParseSchedulerConfig parses scheduler_config.json bytes (name is used in errors).
func ParseSchedulerConfig(name string, data []byte) (SchedulerConfig, error) {
	c := DefaultSchedulerConfig()
	if err := json.Unmarshal(data, &c); err != nil {
		return c, fmt.Errorf("%s: not a scheduler config: %v", name, err)
	}
	var raw map[string]json.RawMessage
	json.Unmarshal(data, &raw)
	if _, ok := raw["timestep_spacing"]; !ok {
		c.TimestepSpacing = ""
	}
	switch {
	case c.NumTrainTimesteps < 2 || c.NumTrainTimesteps > 100000:
		return c, fmt.Errorf("%s: num_train_timesteps = %d, want 2 … 100000", name, c.NumTrainTimesteps)
	case c.TrainedBetas != nil && len(c.TrainedBetas) != c.NumTrainTimesteps:
		return c, fmt.Errorf("%s: trained_betas has %d values, num_train_timesteps is %d", name, len(c.TrainedBetas), c.NumTrainTimesteps)
	case c.Thresholding:
		return c, fmt.Errorf("%s: thresholding = true is not supported", name)
	case c.RescaleZeroSNR:
		return c, fmt.Errorf("%s: rescale_betas_zero_snr = true is not supported", name)
	case c.StepsOffset < 0 || c.StepsOffset >= c.NumTrainTimesteps:
		return c, fmt.Errorf("%s: steps_offset = %d, want 0 … %d", name, c.StepsOffset, c.NumTrainTimesteps-1)
	}
	if _, err := ParseObjective(c.PredictionType); err != nil {
		return c, fmt.Errorf("%s: prediction_type: %v", name, err)
	}
	if _, err := ParseSpacing(c.TimestepSpacing); err != nil {
		return c, fmt.Errorf("%s: timestep_spacing: %v", name, err)
	}
	for i, b := range c.TrainedBetas {
		if !(b >= 0 && b < 1) {
			return c, fmt.Errorf("%s: trained_betas[%d] = %g, want 0 ≤ β < 1", name, i, b)
		}
	}
	if c.TrainedBetas == nil {
		switch c.BetaSchedule {
		case "linear", "scaled_linear":
			if !(c.BetaStart > 0 && c.BetaEnd < 1 && c.BetaStart <= c.BetaEnd) {
				return c, fmt.Errorf("%s: beta_start %g and beta_end %g, want 0 < start ≤ end < 1", name, c.BetaStart, c.BetaEnd)
			}
		case "squaredcos_cap_v2":
		default:
			return c, fmt.Errorf("%s: beta_schedule %q is not supported (linear, scaled_linear, squaredcos_cap_v2)", name, c.BetaSchedule)
		}
	}
	return c, nil
}

// LoadSchedulerConfig reads a scheduler_config.json file.
func LoadSchedulerConfig(path string) (SchedulerConfig, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return SchedulerConfig{}, err
	}
	return ParseSchedulerConfig(path, b)
}

// AlphasCumprod computes ᾱ as diffusers does: betas in float32 (linspace of
// √β for scaled_linear, squared), ᾱ = cumprod(1 − β) as torch computes it.
// The values are returned as float64 copies of those float32 numbers.
func (c SchedulerConfig) AlphasCumprod() []float64 {
	T := c.NumTrainTimesteps
	betas := make([]float32, T)
	linspace := func(a, b float64) []float32 { return torchLinspace32(float32(a), float32(b), T) }
	switch {
	case c.TrainedBetas != nil:
		for i, b := range c.TrainedBetas {
			betas[i] = float32(b)
		}
	case c.BetaSchedule == "scaled_linear":
		for i, v := range linspace(math.Sqrt(c.BetaStart), math.Sqrt(c.BetaEnd)) {
			betas[i] = v * v
		}
	case c.BetaSchedule == "squaredcos_cap_v2":
		for i := range betas {
			betas[i] = float32(math.Min(1-CosineAlphaBar(float64(i+1)/float64(T))/CosineAlphaBar(float64(i)/float64(T)), 0.999))
		}
	default:
		copy(betas, linspace(c.BetaStart, c.BetaEnd))
	}
	// torch.cumprod on the CPU accumulates float32 in double (its acc_type)
	// and rounds each output to float32.
	out := make([]float64, T)
	prod := 1.0
	for i, b := range betas {
		prod *= float64(1 - b)
		out[i] = float64(float32(prod))
	}
	return out
}

// torchLinspace32 reproduces torch.linspace(start, end, n, dtype=float32) on
// the CPU bit for bit, as PyTorch 1.13's AVX2 kernel computes it: step =
// (end − start)/(n − 1) in float32; the first half counts up from start and
// the second down from end; values come in vectors of 8 whose base is
// start + step·i₀ (or end − step·(n − 1 − i₀)) with a fused multiply-add,
// plus step·j (also fused); the tail past the last full vector is scalar.
// Checked against torch on SD's scaled_linear betas (all 1,000 equal; the
// plain formula differs in 272, unfused vectors in 128).
func torchLinspace32(start, end float32, n int) []float32 {
	out := make([]float32, n)
	if n == 1 {
		out[0] = start
		return out
	}
	step := (end - start) / float32(n-1)
	fma := func(a, b, c float32) float32 { return float32(math.FMA(float64(a), float64(b), float64(c))) }
	half := n / 2
	const vec = 8
	full := n - n%vec
	for i0 := 0; i0 < full; i0 += vec {
		base := fma(step, float32(i0), start)
		if i0 >= half {
			base = fma(-step, float32(n-1-i0), end)
		}
		for j := range vec {
			out[i0+j] = fma(step, float32(j), base)
		}
	}
	for i := full; i < n; i++ {
		if i < half {
			out[i] = fma(step, float32(i), start)
		} else {
			out[i] = fma(-step, float32(n-1-i), end)
		}
	}
	return out
}

// spacing is the config's timestep_spacing (checked when it was parsed).
func (c SchedulerConfig) spacing() Spacing {
	s, _ := ParseSpacing(c.TimestepSpacing)
	return s
}
