package ddpm

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/godiffuse/godiffuse/kernels"
	"github.com/godiffuse/godiffuse/tensor"
)

// sd15Scheduler is SD 1.5's scheduler_config.json (a PNDMScheduler file).
func sd15Scheduler(t *testing.T) SchedulerConfig {
	c, err := ParseSchedulerConfig("sd15", []byte(`{"_class_name": "PNDMScheduler", "beta_end": 0.012,
		"beta_schedule": "scaled_linear", "beta_start": 0.00085, "clip_sample": false, "num_train_timesteps": 1000,
		"set_alpha_to_one": false, "skip_prk_steps": true, "steps_offset": 1, "trained_betas": null}`))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestSigmaSamplerTimesteps checks the points against diffusers' formulas
// worked out by hand for SD 1.5's scheduler.
func TestSigmaSamplerTimesteps(t *testing.T) {
	c := sd15Scheduler(t)
	get := func(name string, n int) SigmaSampler {
		s, err := sigmaByName(name, c, n)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	if ts := get("ddim", 3).Timesteps(); !slices.Equal(ts, []float64{667, 334, 1}) {
		t.Errorf("ddim 3 steps: %v, want 667 334 1", ts)
	}
	if ts := get("ddim", 50).Timesteps(); ts[0] != 981 || ts[49] != 1 {
		t.Errorf("ddim 50 steps: %v … %v, want 981 … 1", ts[0], ts[49])
	}
	dpm := get("dpm++2m", 25).Timesteps()
	if dpm[0] != 999 || dpm[1] != 959 || dpm[13] != 480 || dpm[24] != 40 || len(dpm) != 25 {
		t.Errorf("dpm++2m 25 steps: %v", dpm)
	}
	eu := get("euler", 25)
	if ts := eu.Timesteps(); ts[0] != 999 || math.Abs(ts[1]-957.375) > 1e-9 || ts[24] != 0 {
		t.Errorf("euler 25 steps: %v", ts)
	}
	sig := eu.Sigmas()
	// σ_max of SD's schedule is √((1−ᾱ_999)/ᾱ_999) ≈ 14.6146; the last σ is 0
	if math.Abs(sig[0]-14.6146) > 2e-3 || sig[25] != 0 || eu.InitNoiseSigma() != sig[0] {
		t.Errorf("euler σ: first %v, last %v, init %v", sig[0], sig[25], eu.InitNoiseSigma())
	}
	k := get("dpm++2m-karras", 20)
	ks := k.Sigmas()
	if math.Abs(ks[0]-14.6146) > 2e-3 || math.Abs(ks[19]-0.0292) > 1e-3 || ks[20] != 0 {
		t.Errorf("karras σ: %v … %v, %v", ks[0], ks[19], ks[20])
	}
	if kt := k.Timesteps(); kt[0] != 999 || kt[19] != 0 {
		t.Errorf("karras timesteps: %v", kt)
	}
	if _, err := sigmaByName("plms", c, 10); err == nil {
		t.Error("an unknown sampler was accepted")
	}
	if _, err := sigmaByName("euler", c, 0); err == nil {
		t.Error("0 steps accepted")
	}
}

// TestSigmaSamplersOnGaussian: with the exact predictor of 2-D Gaussian data
// (see sampler_test.go), 4000 samples of every sampler must have the data's
// mean and covariance. Sampling error alone is ≤ 0.015 (one standard
// error); the tolerances allow that plus these samplers' discretization
// error at 50 steps. Euler ancestral is first order and stochastic: at 50
// steps its covariance is 0.09 low (Σ₁₁ 0.708 for 0.8), at 200 it is within
// tolerance, so it runs 200.
func TestSigmaSamplersOnGaussian(t *testing.T) {
	dev := kernels.CPU()
	c := sd15Scheduler(t)
	const N = 4000
	for _, tc := range []struct {
		name string
		obj  Objective
	}{{"ddim", PredictEpsilon}, {"ddim", PredictV}, {"euler", PredictEpsilon}, {"euler-a", PredictEpsilon},
		{"dpm++2m", PredictEpsilon}, {"dpm++2m", PredictV}, {"dpm++2m-karras", PredictEpsilon}, {"euler-karras", PredictV}} {
		t.Run(tc.name+"/"+string(tc.obj), func(t *testing.T) {
			steps := 50
			if tc.name == "euler-a" {
				steps = 200
			}
			sm, err := sigmaByName(tc.name, c, steps)
			if err != nil {
				t.Fatal(err)
			}
			step := 0
			model := func(xt *tensor.Tensor, _ float64) (*tensor.Tensor, error) {
				s := sm.ModelSigma(step)
				step++
				return gaussianOracle(dev, xt, s, tc.obj), nil
			}
			rng := rand.New(rand.NewPCG(1, 2))
			noise := Randn(dev, rng, N, 2)
			out, err := SampleSigma(sm, model, noise, rng, SigmaSampleOptions{Objective: tc.obj})
			if err != nil {
				t.Fatal(err)
			}
			mean, cov := moments2(out.MustFloat32s())
			for i := range 2 {
				if d := math.Abs(mean[i] - gMu[i]); d > 0.06 {
					t.Errorf("mean[%d] = %.4f, want %.4f", i, mean[i], gMu[i])
				}
				for j := range 2 {
					if d := math.Abs(cov[i][j] - gSigma[i][j]); d > 0.08 {
						t.Errorf("cov[%d][%d] = %.4f, want %.4f", i, j, cov[i][j], gSigma[i][j])
					}
				}
			}
		})
	}
}

// gaussianOracle is the exact model output for x_t at σ-space noise level s:
// α = 1/√(s²+1), σ_t = s·α, E[ε | x_t] = σ_t·M⁻¹(x_t − α·μ), M = α²Σ + σ_t²I,
// and v = α·ε − σ_t·x̂_0 with x̂_0 = (x_t − σ_t·ε)/α.
func gaussianOracle(dev tensor.Device, xt *tensor.Tensor, s float64, obj Objective) *tensor.Tensor {
	a := 1 / math.Sqrt(s*s+1)
	st := s * a
	M := m2(gSigma).scale(a * a).add(eye(st * st))
	det := M[0][0]*M[1][1] - M[0][1]*M[1][0]
	inv := m2{{M[1][1] / det, -M[0][1] / det}, {-M[1][0] / det, M[0][0] / det}}
	x := xt.MustFloat32s()
	out := make([]float32, len(x))
	for n := 0; n < len(x); n += 2 {
		d := v2{float64(x[n]) - a*gMu[0], float64(x[n+1]) - a*gMu[1]}
		e := inv.vec(d).scale(st)
		for k := range 2 {
			switch obj {
			case PredictV:
				x0 := (float64(x[n+k]) - st*e[k]) / a
				out[n+k] = float32(a*e[k] - st*x0)
			default:
				out[n+k] = float32(e[k])
			}
		}
	}
	return tensor.FromFloat32(dev, out, xt.Shape()...)
}

func moments2(x []float32) (mean v2, cov m2) {
	n := float64(len(x) / 2)
	for i := 0; i < len(x); i += 2 {
		mean[0] += float64(x[i]) / n
		mean[1] += float64(x[i+1]) / n
	}
	for i := 0; i < len(x); i += 2 {
		d := v2{float64(x[i]) - mean[0], float64(x[i+1]) - mean[1]}
		for a := range 2 {
			for b := range 2 {
				cov[a][b] += d[a] * d[b] / n
			}
		}
	}
	return
}

// TestSigmaSamplersFollowTheODE: for Gaussian data the probability-flow ODE
// has a closed-form solution. In the eigenbasis of Σ (eigenvalues λ) each
// coordinate of x_σ − μ scales as √(λ + σ²), so the exact map from σ_0 to
// σ_f is x_f = μ + U·diag(√((λ+σ_f²)/(λ+σ_0²)))·Uᵀ·(x_0 − μ). The
// deterministic samplers must approach it at their order: first-order
// DDIM/Euler with an error that halves with twice the steps, second-order
// DPM-Solver++(2M) far closer at the same steps. The bounds are the
// measured errors with room; a wrong coefficient (e.g. r = h/h_prev
// in DPM-Solver++) lands well outside them.
func TestSigmaSamplersFollowTheODE(t *testing.T) {
	dev := kernels.CPU()
	c := sd15Scheduler(t)
	// eigen-decomposition of the 2×2 Σ
	a, b, d := gSigma[0][0], gSigma[0][1], gSigma[1][1]
	tr, det := a+d, a*d-b*b
	l1 := tr/2 + math.Sqrt(tr*tr/4-det)
	l2 := tr/2 - math.Sqrt(tr*tr/4-det)
	u1 := v2{b, l1 - a}.scale(1 / math.Hypot(b, l1-a))
	u2 := v2{-u1[1], u1[0]}
	exact := func(x v2, s0, sf float64) v2 {
		dx := v2{x[0] - gMu[0], x[1] - gMu[1]}
		p1 := (dx[0]*u1[0] + dx[1]*u1[1]) * math.Sqrt((l1+sf*sf)/(l1+s0*s0))
		p2 := (dx[0]*u2[0] + dx[1]*u2[1]) * math.Sqrt((l2+sf*sf)/(l2+s0*s0))
		return v2{gMu[0] + p1*u1[0] + p2*u2[0], gMu[1] + p1*u1[1] + p2*u2[1]}
	}
	// run samples with steps and compares x after step at (σ = Sigmas()[at+1])
	run := func(name string, steps, at int) float64 {
		sm, err := sigmaByName(name, c, steps)
		if err != nil {
			t.Fatal(err)
		}
		step := 0
		model := func(xt *tensor.Tensor, _ float64) (*tensor.Tensor, error) {
			s := sm.ModelSigma(step)
			step++
			return gaussianOracle(dev, xt, s, PredictEpsilon), nil
		}
		rng := rand.New(rand.NewPCG(3, 4))
		noise := Randn(dev, rng, 256, 2)
		// compared before the last step: the final jump to σ = 0 (or DDIM's
		// final ᾱ) is x̂_0 = E[x_0 | x], not the ODE, in every sampler
		var out *tensor.Tensor
		opt := SigmaSampleOptions{OnStep: func(i int, _, _, latents *tensor.Tensor) {
			if i == at {
				out = latents
			}
		}}
		if _, err := SampleSigma(sm, model, noise, rng, opt); err != nil {
			t.Fatal(err)
		}
		sig := sm.Sigmas()
		s0, sf := sig[0], sig[at+1]
		nv, ov := noise.MustFloat32s(), out.MustFloat32s()
		worst := 0.0
		for n := 0; n < len(nv); n += 2 {
			x0 := v2{float64(nv[n]), float64(nv[n+1])}.scale(sm.InitNoiseSigma())
			want := exact(x0, s0, sf)
			for k := range 2 {
				got := float64(ov[n+k]) * math.Sqrt(sf*sf+1)
				// relative to the spread of x at σ_f (its smallest standard deviation)
				worst = max(worst, math.Abs(got-want[k])/math.Sqrt(l2+sf*sf))
			}
		}
		return worst
	}
	// Aligned points: Euler's linspace t = 999·j/9 (10 steps) and 999·i/18
	// (19 steps) meet at t = 111; DPM-Solver's round(999·k/N) at 10 and 20
	// steps meet at t = 100; DDIM's leading 10 and 20 steps at t = 101.
	euler10, euler19 := run("euler", 10, 7), run("euler", 19, 15)
	ddim10, ddim20 := run("ddim", 10, 7), run("ddim", 20, 16)
	dpm10, dpm20 := run("dpm++2m", 10, 8), run("dpm++2m", 20, 17)
	t.Logf("max |x − exact|/σ_x: euler 10/19 steps %.4f/%.4f, ddim 10/20 %.4f/%.4f, dpm++2m 10/20 %.5f/%.5f",
		euler10, euler19, ddim10, ddim20, dpm10, dpm20)
	for name, r := range map[string]float64{"euler": euler10 / euler19 * 10 / 19, "ddim": ddim10 / ddim20 / 2} {
		if r < 0.75 || r > 1.33 {
			t.Errorf("%s: error × steps changes by %.2f from N to 2N, want about 1 (first order)", name, r)
		}
	}
	if r := dpm10 / dpm20; r < 2.4 {
		t.Errorf("dpm++2m: error ratio 10→20 steps %.2f, want ≥ 2.4 (second order, measured 2.8)", r)
	}
	// measured 0.0126 and 0.0045; r = h/h_prev instead of h_prev/h gives 0.057 and 0.017
	if dpm10 > 0.025 || dpm20 > 0.009 {
		t.Errorf("dpm++2m: errors %.4f (10 steps) and %.4f (20), want ≤ 0.025 and 0.009", dpm10, dpm20)
	}
}

// FuzzSchedulerConfig: no scheduler_config.json may panic the parser, the
// ᾱ computation or the samplers built from what it accepts.
func FuzzSchedulerConfig(f *testing.F) {
	f.Add([]byte(`{"_class_name": "PNDMScheduler", "beta_end": 0.012, "beta_schedule": "scaled_linear", "beta_start": 0.00085, "steps_offset": 1}`))
	f.Add([]byte(`{"num_train_timesteps": 2000000000}`))
	f.Add([]byte(`{"trained_betas": [0.1, 0.2], "num_train_timesteps": 2, "timestep_spacing": "trailing"}`))
	f.Add([]byte(`{"prediction_type": "v_prediction", "use_karras_sigmas": true, "timestep_spacing": "leading"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := ParseSchedulerConfig("fuzz", data)
		if err != nil {
			return
		}
		for _, a := range c.AlphasCumprod() {
			if !(a >= 0 && a <= 1) {
				t.Fatalf("ᾱ %v outside [0, 1]", a)
			}
		}
		for _, name := range SigmaSamplerNames {
			if sm, err := sigmaByName(name, c, min(10, c.NumTrainTimesteps)); err == nil && len(sm.Sigmas()) != len(sm.Timesteps())+1 {
				t.Fatalf("%s: %d σ's for %d steps", name, len(sm.Sigmas()), len(sm.Timesteps()))
			}
		}
	})
}

// sigmaByName is NewSigmaSampler by name, as the command line takes it.
func sigmaByName(name string, c SchedulerConfig, steps int) (SigmaSampler, error) {
	k, err := ParseSigmaSampler(name)
	if err != nil {
		return nil, err
	}
	return NewSigmaSampler(k, c, steps)
}
