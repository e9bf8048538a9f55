package ddpm

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/godiffuse/godiffuse/kernels"
	"github.com/godiffuse/godiffuse/tensor"
)

// ---------------------------------------------------------------------------
// Sampler correctness without training.
//
// The data is a 2-D Gaussian x_0 ~ N(μ, Σ). Then x_t = α·x_0 + σ·ε is
// Gaussian too, and the optimal noise predictor is exact:
//
//	E[ε | x_t] = σ·M⁻¹·(x_t - α·μ),   M = α²Σ + σ²I
//
// With it every sampler step is an affine map of x plus Gaussian noise, so
// the exact distribution of the sampler's output can be computed in closed
// form: moments() below propagates mean and covariance (or, for the multistep
// DPM-Solver++, the affine map from x_T) through the update formulas of the
// papers, written out again here on 2×2 matrices. Two checks per sampler and
// objective:
//
//  1. For the deterministic samplers (DDIM η = 0, DPM-Solver++) every
//     output sample equals the propagated affine map of its x_T to 2e-4
//     (float32 rounding over ≤ 50 steps stays below 1e-5 here); a wrong
//     coefficient anywhere breaks this at the first sample. For all samplers
//     the samples (N = 4000 draws) match the propagated moments. Sampling error alone has a standard error
//     of √(Σ_ii/N) ≤ 0.014 on the means and √((Σ_ii·Σ_jj + Σ_ij²)/N) ≤ 0.015
//     on the covariances; we allow 0.06 and 0.07 (4–5 standard errors). A
//     wrong DDPM coefficient moves the covariance by ≥ 0.1 (checked by hand
//     when the test was written, as were a missing √ on ᾱ_t' in DDIM and
//     r = h/h_prev instead of h_prev/h in DPM-Solver++, which the exact-map
//     check catches).
//  2. The propagated moments match the data's μ and Σ within the sampler's
//     discretization error, bounded per sampler (disc below). Many-step and
//     second-order samplers are tight; few-step DDIM is not, as its theory
//     says: on Gaussian data each deterministic DDIM step multiplies the
//     standard deviation by (α'α s² + σ'σ)/(α²s² + σ²) ≤ the exact ratio
//     (Cauchy–Schwarz), so 10 steps shrink Σ by about a third here, which is
//     what a 1-D float64 recursion in NumPy also gave (0.316 for s² = 0.5).
// ---------------------------------------------------------------------------

var (
	gMu    = [2]float64{1, -0.5}
	gSigma = [2][2]float64{{0.5, 0.3}, {0.3, 0.8}}
)

type m2 [2][2]float64
type v2 [2]float64

func (a m2) mul(b m2) (c m2) {
	for i := range 2 {
		for j := range 2 {
			c[i][j] = a[i][0]*b[0][j] + a[i][1]*b[1][j]
		}
	}
	return
}
func (a m2) vec(v v2) v2 { return v2{a[0][0]*v[0] + a[0][1]*v[1], a[1][0]*v[0] + a[1][1]*v[1]} }
func (a m2) t() m2       { return m2{{a[0][0], a[1][0]}, {a[0][1], a[1][1]}} }
func (a m2) scale(s float64) m2 {
	return m2{{a[0][0] * s, a[0][1] * s}, {a[1][0] * s, a[1][1] * s}}
}
func (a m2) add(b m2) m2 {
	return m2{{a[0][0] + b[0][0], a[0][1] + b[0][1]}, {a[1][0] + b[1][0], a[1][1] + b[1][1]}}
}
func (v v2) add(w v2) v2        { return v2{v[0] + w[0], v[1] + w[1]} }
func (v v2) scale(s float64) v2 { return v2{v[0] * s, v[1] * s} }
func eye(s float64) m2          { return m2{{s, 0}, {0, s}} }

// predictor returns x̂_0 = X·x + x0c as an affine map at timestep t.
func predictor(s *Schedule, t int) (X m2, x0c v2) {
	a, b := s.SqrtAlphasCumprod[t], s.SqrtOneMinusAlphasCumprod[t]
	M := m2(gSigma).scale(a * a).add(eye(b * b))
	det := M[0][0]*M[1][1] - M[0][1]*M[1][0]
	P := m2{{M[1][1] / det, -M[0][1] / det}, {-M[1][0] / det, M[0][0] / det}}
	E := P.scale(b)                    // ε̂ = E·x + e0
	e0 := P.vec(v2(gMu)).scale(-a * b) //
	X = eye(1).add(E.scale(-b)).scale(1 / a)
	x0c = e0.scale(-b / a)
	return
}

// propagated returns the exact mean and covariance of the sampler's output
// and, when no noise enters (deterministic samplers), the affine map
// x_0 = A·x_T + mean itself.
func propagated(s *Schedule, sm Sampler) (mean v2, cov m2, A m2, deterministic bool) {
	ts := sm.Timesteps()
	cov, A, deterministic = eye(1), eye(1), true // x_T ~ N(0, I)
	switch d := sm.(type) {
	case *DDPM, *DDIM:
		for i, t := range ts {
			prev := -1
			if i+1 < len(ts) {
				prev = ts[i+1]
			}
			abT, abP := s.AlphaBar(t), s.AlphaBar(prev)
			X, x0c := predictor(s, t)
			// ε̂ = (x - α x̂_0)/σ as an affine map.
			a, b := math.Sqrt(abT), math.Sqrt(1-abT)
			E, e0 := eye(1).add(X.scale(-a)).scale(1/b), x0c.scale(-a/b)
			var L m2
			var c v2
			var noise float64
			if dd, ok := d.(*DDPM); ok {
				beta := 1 - abT/abP
				c1, c2 := math.Sqrt(abP)*beta/(1-abT), math.Sqrt(1-beta)*(1-abP)/(1-abT)
				L, c = X.scale(c1).add(eye(c2)), x0c.scale(c1)
				if prev >= 0 {
					noise = beta * (1 - abP) / (1 - abT)
					if dd.Variance == FixedLarge {
						noise = beta
					}
				}
			} else {
				eta := d.(*DDIM).Eta
				sig := eta * math.Sqrt((1-abP)/(1-abT)) * math.Sqrt(1-abT/abP)
				k := math.Sqrt(1 - abP - sig*sig)
				L, c = X.scale(math.Sqrt(abP)).add(E.scale(k)), x0c.scale(math.Sqrt(abP)).add(e0.scale(k))
				noise = sig * sig
			}
			mean = L.vec(mean).add(c)
			cov = L.mul(cov).mul(L.t()).add(eye(noise))
			A = L.mul(A)
			deterministic = deterministic && noise == 0
		}
	case *DPMPP2M:
		// Deterministic: x = A·x_T + c; keep the previous x̂_0 = A0·x_T + c0 too.
		var c v2
		var A0 m2
		var c0 v2
		hPrev := 0.0
		lam := func(t int) float64 { return math.Log(s.SqrtAlphasCumprod[t] / s.SqrtOneMinusAlphasCumprod[t]) }
		for i, t := range ts {
			X, x0c := predictor(s, t)
			XA, Xc := X.mul(A), X.vec(c).add(x0c) // x̂_0 as a map of x_T
			if i == len(ts)-1 {
				A, c = XA, Xc
				break
			}
			next := ts[i+1]
			h := lam(next) - lam(t)
			DA, Dc := XA, Xc
			if i > 0 {
				r := hPrev / h
				DA = XA.scale(1 + 1/(2*r)).add(A0.scale(-1 / (2 * r)))
				Dc = Xc.scale(1 + 1/(2*r)).add(c0.scale(-1 / (2 * r)))
			}
			A0, c0, hPrev = XA, Xc, h
			ratio := s.SqrtOneMinusAlphasCumprod[next] / s.SqrtOneMinusAlphasCumprod[t]
			k := -s.SqrtAlphasCumprod[next] * (math.Exp(-h) - 1)
			A, c = A.scale(ratio).add(DA.scale(k)), c.scale(ratio).add(Dc.scale(k))
		}
		mean, cov = c, A.mul(A.t())
	}
	return mean, cov, A, deterministic
}

func analyticModel(s *Schedule, obj Objective) Model {
	return func(x *tensor.Tensor, t int) (*tensor.Tensor, error) {
		xv, err := x.Float32s()
		if err != nil {
			return nil, err
		}
		a, b := s.SqrtAlphasCumprod[t], s.SqrtOneMinusAlphasCumprod[t]
		// M = α²Σ + σ²I and its inverse.
		m00, m01, m11 := a*a*gSigma[0][0]+b*b, a*a*gSigma[0][1], a*a*gSigma[1][1]+b*b
		det := m00*m11 - m01*m01
		out := make([]float32, len(xv))
		for n := 0; n < len(xv); n += 2 {
			d0, d1 := float64(xv[n])-a*gMu[0], float64(xv[n+1])-a*gMu[1]
			e0 := b * (m11*d0 - m01*d1) / det
			e1 := b * (-m01*d0 + m00*d1) / det
			for k, e := range [2]float64{e0, e1} {
				x0 := (float64(xv[n+k]) - b*e) / a
				switch obj {
				case PredictEpsilon:
					out[n+k] = float32(e)
				case PredictV:
					out[n+k] = float32(a*e - b*x0)
				case PredictX0:
					out[n+k] = float32(x0)
				}
			}
		}
		return tensor.FromFloat32(x.Device(), out, x.Shape()...), nil
	}
}

func moments(v []float32) (mu [2]float64, cov [2][2]float64) {
	n := float64(len(v) / 2)
	for i := 0; i < len(v); i += 2 {
		mu[0] += float64(v[i]) / n
		mu[1] += float64(v[i+1]) / n
	}
	for i := 0; i < len(v); i += 2 {
		d := [2]float64{float64(v[i]) - mu[0], float64(v[i+1]) - mu[1]}
		for a := range 2 {
			for b := range 2 {
				cov[a][b] += d[a] * d[b] / (n - 1)
			}
		}
	}
	return
}

func TestSamplersOnGaussian(t *testing.T) {
	dev := kernels.NewCPU(2)
	s, err := NewSchedule(Linear, 1000)
	if err != nil {
		t.Fatal(err)
	}
	mk := func(sm Sampler, err error) Sampler {
		if err != nil {
			t.Fatal(err)
		}
		return sm
	}
	samplers := []struct {
		name string
		sm   Sampler
		disc float64 // bound on |propagated - true| for means and covariances
	}{
		{"ddpm/1000", mk(NewDDPM(s, 1000, Leading, FixedSmall)), 0.01},
		{"ddpm-large/1000", mk(NewDDPM(s, 1000, Leading, FixedLarge)), 0.01},
		{"ddim/50", mk(NewDDIM(s, 50, Leading, 0)), 0.06},
		{"ddim/10/trailing", mk(NewDDIM(s, 10, Trailing, 0)), 0.3},
		{"ddim/50/eta=1", mk(NewDDIM(s, 50, Linspace, 1)), 0.15},
		{"dpm++2m/20", mk(NewDPMPP2M(s, 20)), 0.02},
		{"dpm++2m/10", mk(NewDPMPP2M(s, 10)), 0.12},
	}
	for _, c := range samplers {
		pm, pc, A, det := propagated(s, c.sm)
		// Deterministic samplers are held to the exact map sample by sample, which
		// few samples check more strictly than any moments could, for every
		// objective; the stochastic ones need N = 4000 for their moments, and one
		// objective suffices there (the conversions are the same code, checked exactly
		// by the deterministic runs). This keeps the test at ~2 s instead of 16.
		N, objectives := 256, []Objective{PredictEpsilon, PredictV, PredictX0}
		if !det {
			N, objectives = 4000, []Objective{PredictEpsilon}
		}
		for a := range 2 {
			if d := math.Abs(pm[a] - gMu[a]); d > c.disc {
				t.Errorf("%s: exact output mean[%d] = %.4f, data %.4f", c.name, a, pm[a], gMu[a])
			}
			for b := range 2 {
				if d := math.Abs(pc[a][b] - gSigma[a][b]); d > c.disc {
					t.Errorf("%s: exact output cov[%d][%d] = %.4f, data %.4f", c.name, a, b, pc[a][b], gSigma[a][b])
				}
			}
		}
		for _, obj := range objectives {
			t.Run(fmt.Sprintf("%s/%s", c.name, obj), func(t *testing.T) {
				rng := rand.New(rand.NewPCG(1, 2))
				xT := Randn(dev, rng, N, 2, 1, 1)
				x, err := Sample(s, c.sm, analyticModel(s, obj), xT, rng, SampleOptions{Objective: obj})
				if err != nil {
					t.Fatal(err)
				}
				xv := x.MustFloat32s()
				if det {
					// No noise: every sample must be exactly A·x_T + mean.
					x0 := xT.MustFloat32s()
					for n := 0; n < len(xv); n += 2 {
						want := A.vec(v2{float64(x0[n]), float64(x0[n+1])}).add(pm)
						if d := max(math.Abs(float64(xv[n])-want[0]), math.Abs(float64(xv[n+1])-want[1])); d > 2e-4 {
							t.Fatalf("sample %d = (%.5f, %.5f), the exact map gives (%.5f, %.5f)", n/2, xv[n], xv[n+1], want[0], want[1])
						}
					}
				}
				if det {
					return
				}
				mu, cov := moments(xv)
				for a := range 2 {
					if d := math.Abs(mu[a] - pm[a]); d > 0.06 {
						t.Errorf("mean[%d] = %.4f, exact %.4f", a, mu[a], pm[a])
					}
					for b := range 2 {
						if d := math.Abs(cov[a][b] - pc[a][b]); d > 0.07 {
							t.Errorf("cov[%d][%d] = %.4f, exact %.4f", a, b, cov[a][b], pc[a][b])
						}
					}
				}
				t.Logf("samples: mean %.3f %.3f cov %.3f %.3f %.3f | exact: mean %.3f %.3f cov %.3f %.3f %.3f | data cov 0.5 0.3 0.8",
					mu[0], mu[1], cov[0][0], cov[0][1], cov[1][1], pm[0], pm[1], pc[0][0], pc[0][1], pc[1][1])
			})
		}
	}
}

func TestCosineScheduleClosedForm(t *testing.T) {
	s, err := NewSchedule(Cosine, 1000)
	if err != nil {
		t.Fatal(err)
	}
	f0 := CosineAlphaBar(0)
	for i, ab := range s.AlphasCumprod {
		if s.Betas[i] >= 0.999 {
			break // the cap bites: the closed form no longer holds
		}
		if want := CosineAlphaBar(float64(i+1)/1000) / f0; math.Abs(ab-want) > 1e-6 {
			t.Fatalf("ᾱ_%d = %.9g, f(t)/f(0) = %.9g", i, ab, want)
		}
	}
	for _, b := range s.Betas {
		if b > 0.999 || b <= 0 {
			t.Fatalf("beta %g outside (0, 0.999]", b)
		}
	}
}

func TestSchedulesClosedForms(t *testing.T) {
	lin, _ := NewSchedule(Linear, 1000)
	if lin.Betas[0] != 1e-4 || math.Abs(lin.Betas[999]-0.02) > 1e-15 || math.Abs(lin.Betas[500]-(1e-4+(0.02-1e-4)*500/999)) > 1e-15 {
		t.Fatalf("linear betas %g %g %g", lin.Betas[0], lin.Betas[500], lin.Betas[999])
	}
	sl, _ := NewSchedule(ScaledLinear, 1000)
	if math.Abs(math.Sqrt(sl.Betas[300])-(0.01+(math.Sqrt(0.02)-0.01)*300/999)) > 1e-12 {
		t.Fatalf("scaled_linear beta %g", sl.Betas[300])
	}
	sg, _ := NewSchedule(Sigmoid, 1000)
	if math.Abs(sg.Betas[0]-(1e-4+(0.02-1e-4)/(1+math.Exp(6)))) > 1e-15 {
		t.Fatalf("sigmoid beta %g", sg.Betas[0])
	}
	for _, s := range []*Schedule{lin, sl, sg} {
		prod := 1.0
		for i, b := range s.Betas {
			prod *= 1 - b
			if math.Abs(s.AlphasCumprod[i]-prod) > 1e-15 {
				t.Fatalf("%s: ᾱ_%d", s.Name, i)
			}
			if i > 0 {
				want := b * (1 - s.AlphasCumprod[i-1]) / (1 - s.AlphasCumprod[i])
				if math.Abs(s.PosteriorVariance[i]-want) > 1e-15 {
					t.Fatalf("%s: posterior variance %d", s.Name, i)
				}
			}
		}
	}
	if _, err := ParseBetaSchedule("quadratic"); err == nil {
		t.Fatal("unknown schedule name accepted")
	}
	if _, err := NewSchedule(BetaSchedule(9), 1000); err == nil {
		t.Fatal("unknown schedule accepted")
	}
	for _, name := range append(BetaSchedules, "squaredcos_cap_v2") {
		var b BetaSchedule
		if err := b.Set(name); err != nil {
			t.Fatal(err)
		}
		text, _ := b.MarshalText()
		if want := strings.Replace(name, "squaredcos_cap_v2", "cosine", 1); string(text) != want {
			t.Errorf("%s reads back as %s", name, text)
		}
	}
}

func TestSpacedTimesteps(t *testing.T) {
	cases := map[string][]int{
		"leading":  {900, 800, 700, 600, 500, 400, 300, 200, 100, 0},
		"trailing": {999, 899, 799, 699, 599, 499, 399, 299, 199, 99},
		"linspace": {999, 888, 777, 666, 555, 444, 333, 222, 111, 0},
	}
	for name, want := range cases {
		sp, err := ParseSpacing(name)
		if err != nil || sp.String() != name {
			t.Fatalf("ParseSpacing(%q) = %v, %v", name, sp, err)
		}
		got, err := SpacedTimesteps(sp, 1000, 10)
		if err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("%s: %v, want %v", sp, got, want)
		}
	}
	if _, err := ParseSpacing("random"); err == nil {
		t.Error("ParseSpacing took an unknown name")
	}
	if _, err := SpacedTimesteps(DefaultSpacing, 1000, 10); err == nil {
		t.Error("SpacedTimesteps took the default spacing (a sampler resolves it first)")
	}
}

// TestShiftSNR: the shifted schedule's SNR is the original's divided by k
// at every t, its ᾱ falls monotonically, and k = 1 changes nothing.
func TestShiftSNR(t *testing.T) {
	for _, kind := range []BetaSchedule{Cosine, Linear} {
		s, _ := NewSchedule(kind, 1000)
		for _, k := range []float64{1, 4, 32} {
			sh := s.ShiftSNR(k)
			for i := range s.T {
				want := s.SNR(i) / k
				if got := sh.SNR(i); math.Abs(got-want) > 1e-9*want {
					t.Fatalf("%s k=%g: SNR(%d) = %g, want %g", kind, k, i, got, want)
				}
				if sh.Betas[i] <= 0 || sh.Betas[i] >= 1 {
					t.Fatalf("%s k=%g: β[%d] = %g", kind, k, i, sh.Betas[i])
				}
			}
		}
	}
	tc := DefaultTrainConfig()
	tc.SNRShift = 32
	if err := tc.Validate(); err != nil {
		t.Fatal(err)
	}
	s, _ := tc.NoiseSchedule()
	base, _ := NewSchedule(tc.Schedule, tc.T)
	if got, want := s.SNR(500), base.SNR(500)/32; math.Abs(got-want) > 1e-9*want {
		t.Fatalf("NoiseSchedule: SNR(500) = %g, want %g", got, want)
	}
	for _, bad := range []float64{-1, 1e-4, 1e7, math.NaN(), math.Inf(1)} {
		tc.SNRShift = bad
		if err := tc.Validate(); err == nil || !strings.Contains(err.Error(), "snr-shift") {
			t.Fatalf("snr-shift %g: error %v", bad, err)
		}
	}
}

// TestGroundTextValidate: the grounding loss's weight is 0 … 100, and the
// error names the flag.
func TestGroundTextValidate(t *testing.T) {
	tc := DefaultTrainConfig()
	for _, good := range []float64{0, 0.1, 100} {
		tc.GroundText = good
		if err := tc.Validate(); err != nil {
			t.Errorf("ground-text %g: %v", good, err)
		}
	}
	for _, bad := range []float64{-1, 101, math.NaN(), math.Inf(1)} {
		tc.GroundText = bad
		if err := tc.Validate(); err == nil || !strings.Contains(err.Error(), "ground-text") {
			t.Errorf("ground-text %g: error %v", bad, err)
		}
	}
	tc.GroundText = 0
	for _, bad := range []float64{-1, 101, math.NaN(), math.Inf(1)} {
		tc.GroundAttention = bad
		if err := tc.Validate(); err == nil || !strings.Contains(err.Error(), "ground-attention") {
			t.Errorf("ground-attention %g: error %v", bad, err)
		}
	}
}

// TestGuidanceInterval: the guided model runs exactly on the timesteps
// inside the interval, the plain one elsewhere.
func TestGuidanceInterval(t *testing.T) {
	dev := kernels.NewCPU(1)
	const T = 1000
	var guidedAt, plainAt []int
	guided := func(x *tensor.Tensor, t int) (*tensor.Tensor, error) { guidedAt = append(guidedAt, t); return x, nil }
	plain := func(x *tensor.Tensor, t int) (*tensor.Tensor, error) { plainAt = append(plainAt, t); return x, nil }
	x := tensor.FromFloat32(dev, []float32{1}, 1, 1, 1, 1)
	m := GuidanceInterval(guided, plain, T, 0.2, 0.7)
	for _, ts := range []int{999, 700, 699, 200, 199, 0} {
		if _, err := m(x, ts); err != nil {
			t.Fatal(err)
		}
	}
	if !slices.Equal(guidedAt, []int{700, 699, 200}) || !slices.Equal(plainAt, []int{999, 199, 0}) {
		t.Fatalf("guided at %v, plain at %v", guidedAt, plainAt)
	}
	guidedAt = nil
	all := GuidanceInterval(guided, plain, T, 0, 1)
	for _, ts := range []int{999, 0} {
		all(x, ts)
	}
	if len(guidedAt) != 2 {
		t.Fatalf("interval 0,1 guided %v, want every step", guidedAt)
	}
}
