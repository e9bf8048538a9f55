package ddpm

import (
	"fmt"
	"math"
	"math/rand/v2"
	"sort"

	"github.com/godiffuse/godiffuse/tensor"
)

// ---------------------------------------------------------------------------
// The samplers people use with Stable Diffusion, with diffusers' step
// semantics (its DDIMScheduler, EulerDiscreteScheduler,
// EulerAncestralDiscreteScheduler and DPMSolverMultistepScheduler), all
// written in the σ-space of Karras et al. (2022):
//
//	σ_t = √((1-ᾱ_t)/ᾱ_t),   x_σ = x_t/√ᾱ_t = x_0 + σ·ε,
//	model input x_t = x_σ/√(σ²+1),   x̂_0 = x_σ − σ·ε̂ (ε) or x_σ/(σ²+1) − σ·v̂/√(σ²+1) (v)
//
// In this space a deterministic DDIM step, an Euler step and the first-order
// DPM-Solver++ step are the same map, x_σ' = (σ'/σ)·x_σ + (1 − σ'/σ)·x̂_0;
// what tells the samplers apart is where they put the points (timesteps and
// σ's, below, as each diffusers class does) and the higher-order or
// ancestral corrections.
// ---------------------------------------------------------------------------

// SigmaSampler is a sampler over a trained schedule in σ-space.
type SigmaSampler interface {
	Name() string
	// Timesteps are the model's timestep inputs, one per step (they may be
	// fractional: Euler's linspace spacing).
	Timesteps() []float64
	// Sigmas has one more entry than Timesteps: σ at the first point, then
	// the σ each step goes to (the last is 0, or diffusers DDIM's final ᾱ).
	Sigmas() []float64
	// ModelSigma is σ at the point where step i evaluates the model: Sigmas()[i],
	// except for diffusers' DDIM with trailing or linspace spacing, whose step
	// goes to t − T/N while the next evaluation is at the next timestep (the
	// latents x_t carry over unchanged).
	ModelSigma(i int) float64
	// InitNoiseSigma scales N(0, I) noise into the first x_σ.
	InitNoiseSigma() float64
	Reset()
	// Step maps x_σ at point i to point i+1 given x̂_0.
	Step(i int, x, x0 *tensor.Tensor, noise func() *tensor.Tensor) *tensor.Tensor
}

// NewSigmaSampler builds a sampler for steps model evaluations with the
// scheduler settings of c (ᾱ from c.AlphasCumprod; use_karras_sigmas turns
// Euler and DPM-Solver++ to Karras σs).
func NewSigmaSampler(kind SigmaSamplerKind, c SchedulerConfig, steps int) (SigmaSampler, error) {
	T := c.NumTrainTimesteps
	if steps < 1 || steps > T {
		return nil, fmt.Errorf("steps: want 1 … %d, have %d", T, steps)
	}
	ab := c.AlphasCumprod()
	sig := make([]float64, T)
	for i, a := range ab {
		sig[i] = float64(float32(math.Sqrt(float64(float32((1 - a) / a)))))
	}
	switch kind.Or() {
	case SigmaDDIM:
		return newDiffusersDDIM(c, ab, steps)
	case SigmaEuler, SigmaEulerKarras:
		return newEuler(c, sig, steps, kind == SigmaEulerKarras || c.UseKarrasSigmas, false)
	case SigmaEulerAncestral:
		return newEuler(c, sig, steps, c.UseKarrasSigmas, true)
	case SigmaDPMPP2M, SigmaDPMPP2MKarras:
		return newDPMSolver(c, sig, steps, kind.Or() == SigmaDPMPP2MKarras || c.UseKarrasSigmas)
	}
	return nil, fmt.Errorf("unknown %v", kind)
}

func sigmaOf(ab float64) float64 { return math.Sqrt((1 - ab) / ab) }

// σ-space DDIM/Euler/DPM-Solver++ first-order step.
func firstOrder(sigma, next float64, x, x0 *tensor.Tensor) *tensor.Tensor {
	r := next / sigma
	return lin2(r, x, 1-r, x0)
}

// ---------------------------------------------------------------------------
// DDIM (DDIMScheduler, η = 0). Timesteps by spacing (leading adds
// steps_offset); from t the step goes to prev = t − T/N, whose ᾱ is ᾱ[prev],
// or final_alpha_cumprod (1 with set_alpha_to_one, else ᾱ[0]) when prev < 0.
// init_noise_sigma is 1 in x_t, so √(σ_0²+1) in σ-space.

type diffusersDDIM struct {
	ts     []float64
	model  []float64 // σ(t_i): where the model is evaluated
	sigmas []float64 // σ(t_0), then the σ each step goes to
}

func newDiffusersDDIM(c SchedulerConfig, ab []float64, n int) (*diffusersDDIM, error) {
	T := c.NumTrainTimesteps
	spacing := c.spacing().or(Leading)
	ts, err := SpacedTimesteps(spacing, T, n)
	if err != nil {
		return nil, err
	}
	final := ab[0]
	if c.SetAlphaToOne {
		final = 1
	}
	d := &diffusersDDIM{}
	for _, t := range ts {
		if spacing == Leading {
			t = min(t+c.StepsOffset, T-1)
		}
		d.ts = append(d.ts, float64(t))
		d.model = append(d.model, sigmaOf(ab[t]))
	}
	d.sigmas = []float64{d.model[0]}
	for _, t := range d.ts {
		a := final
		if prev := int(t) - T/n; prev >= 0 {
			a = ab[prev]
		}
		d.sigmas = append(d.sigmas, sigmaOf(a))
	}
	return d, nil
}

func (d *diffusersDDIM) Name() string             { return "ddim" }
func (d *diffusersDDIM) Timesteps() []float64     { return d.ts }
func (d *diffusersDDIM) Sigmas() []float64        { return d.sigmas }
func (d *diffusersDDIM) ModelSigma(i int) float64 { return d.model[i] }
func (d *diffusersDDIM) InitNoiseSigma() float64  { return math.Sqrt(d.model[0]*d.model[0] + 1) }
func (d *diffusersDDIM) Reset()                   {}

func (d *diffusersDDIM) Step(i int, x, x0 *tensor.Tensor, _ func() *tensor.Tensor) *tensor.Tensor {
	return firstOrder(d.model[i], d.sigmas[i+1], x, x0)
}

// ---------------------------------------------------------------------------
// Euler and Euler ancestral (EulerDiscreteScheduler,
// EulerAncestralDiscreteScheduler; default spacing linspace, fractional
// timesteps). σ's are interpolated linearly in t from the trained ones, with
// 0 appended; with Karras σ's the points are Karras et al.'s ρ = 7 schedule
// between the interpolated first and last σ, and the timesteps are found
// back by interpolating log σ. init_noise_sigma is σ_max (linspace,
// trailing) or √(σ_max²+1) (leading).
//
// Euler:  x_σ' = x_σ + (σ' − σ)·(x_σ − x̂_0)/σ
// Euler ancestral: σ_up = √(σ'²(σ² − σ'²)/σ²), σ_down = √(σ'² − σ_up²),
//         x_σ' = x_σ + (σ_down − σ)·(x_σ − x̂_0)/σ + σ_up·z

type euler struct {
	ts, sigmas []float64
	init       float64
	ancestral  bool
}

func interpSigma(sig []float64, t float64) float64 {
	if t <= 0 {
		return sig[0]
	}
	if t >= float64(len(sig)-1) {
		return sig[len(sig)-1]
	}
	i := int(math.Floor(t))
	f := t - float64(i)
	return sig[i]*(1-f) + sig[i+1]*f
}

// karras returns n σ's from σmax down to σmin, evenly spaced in σ^(1/ρ), ρ = 7.
func karras(sigmaMin, sigmaMax float64, n int) []float64 {
	const rho = 7.0
	lo, hi := math.Pow(sigmaMin, 1/rho), math.Pow(sigmaMax, 1/rho)
	out := make([]float64, n)
	for i := range out {
		r := 0.0
		if n > 1 {
			r = float64(i) / float64(n-1)
		}
		out[i] = math.Pow(hi+r*(lo-hi), rho)
	}
	return out
}

// sigmaToT inverts σ(t) by linear interpolation of log σ (diffusers' _sigma_to_t).
func sigmaToT(sig []float64, s float64) float64 {
	ls := math.Log(max(s, 1e-10))
	// the last index whose log σ is ≤ ls (σ increases with t)
	low := sort.Search(len(sig), func(i int) bool { return math.Log(sig[i]) > ls }) - 1
	low = min(max(low, 0), len(sig)-2)
	a, b := math.Log(sig[low]), math.Log(sig[low+1])
	w := (a - ls) / (a - b)
	w = min(max(w, 0), 1)
	return (1-w)*float64(low) + w*float64(low+1)
}

// sigmaSpacing returns the fractional timesteps of diffusers' Euler and
// DPM-Solver schedulers (steps_offset applies to leading only).
func sigmaSpacing(spacing Spacing, T, n, offset int) []float64 {
	ts := make([]float64, n)
	switch spacing {
	case Leading:
		r := T / n
		for i := range ts {
			ts[i] = float64((n-1-i)*r + offset)
		}
	case Trailing:
		r := float64(T) / float64(n)
		for i := range ts {
			ts[i] = math.Round(float64(T)-float64(i)*r) - 1
		}
	default: // linspace
		for i := range ts {
			if n == 1 {
				ts[i] = float64(T - 1)
				continue
			}
			ts[i] = float64(T-1) * float64(n-1-i) / float64(n-1)
		}
	}
	return ts
}

func newEuler(c SchedulerConfig, sig []float64, n int, useKarras, ancestral bool) (*euler, error) {
	T := c.NumTrainTimesteps
	spacing := c.spacing().or(Linspace)
	e := &euler{ancestral: ancestral, ts: sigmaSpacing(spacing, T, n, c.StepsOffset)}
	for _, t := range e.ts {
		e.sigmas = append(e.sigmas, interpSigma(sig, t))
	}
	if useKarras {
		e.sigmas = karras(e.sigmas[n-1], e.sigmas[0], n)
		for i, s := range e.sigmas {
			e.ts[i] = sigmaToT(sig, s)
		}
	}
	e.sigmas = append(e.sigmas, 0)
	maxSigma := e.sigmas[0]
	e.init = maxSigma
	if spacing == Leading {
		e.init = math.Sqrt(maxSigma*maxSigma + 1)
	}
	return e, nil
}

func (e *euler) Name() string {
	if e.ancestral {
		return "euler-a"
	}
	return "euler"
}
func (e *euler) Timesteps() []float64     { return e.ts }
func (e *euler) Sigmas() []float64        { return e.sigmas }
func (e *euler) InitNoiseSigma() float64  { return e.init }
func (e *euler) ModelSigma(i int) float64 { return e.sigmas[i] }
func (e *euler) Reset()                   {}

func (e *euler) Step(i int, x, x0 *tensor.Tensor, noise func() *tensor.Tensor) *tensor.Tensor {
	s, next := e.sigmas[i], e.sigmas[i+1]
	if !e.ancestral || next == 0 {
		return firstOrder(s, next, x, x0)
	}
	up := math.Sqrt(next * next * (s*s - next*next) / (s * s))
	down := math.Sqrt(next*next - up*up)
	return tensor.Add(firstOrder(s, down, x, x0), tensor.Scale(noise(), float32(up)))
}

// ---------------------------------------------------------------------------
// DPM-Solver++(2M) (DPMSolverMultistepScheduler: algorithm_type dpmsolver++,
// solver_order 2, midpoint, final σ 0 reached by a first-order step).
// Default spacing linspace: round(linspace(0, T−1, N+1)) reversed, minus the
// last; σ's interpolated; with Karras σ's the ρ = 7 schedule over the whole
// trained range and timesteps rounded from log-σ interpolation.
// With h = ln(σ/σ') and r = h_prev/h:
//
//	D = x̂_0 (first and last step), else (1 + 1/(2r))·x̂_0 − 1/(2r)·x̂_0,prev
//	x_σ' = (σ'/σ)·x_σ + (1 − σ'/σ)·D

type dpmSolver struct {
	ts, sigmas []float64
	karras     bool
	prev       *tensor.Tensor
	hPrev      float64
}

func newDPMSolver(c SchedulerConfig, sig []float64, n int, useKarras bool) (*dpmSolver, error) {
	T := c.NumTrainTimesteps
	spacing := c.spacing().or(Linspace)
	d := &dpmSolver{karras: useKarras}
	switch spacing {
	case Leading:
		r := T / (n + 1)
		for i := range n {
			d.ts = append(d.ts, float64((n-i)*r+c.StepsOffset))
		}
	case Trailing:
		r := float64(T) / float64(n)
		for i := range n {
			d.ts = append(d.ts, math.Round(float64(T)-float64(i)*r)-1)
		}
	default:
		for i := range n {
			d.ts = append(d.ts, math.Round(float64(T-1)*float64(n-i)/float64(n)))
		}
	}
	for _, t := range d.ts {
		d.sigmas = append(d.sigmas, interpSigma(sig, t))
	}
	if useKarras {
		d.sigmas = karras(sig[0], sig[T-1], n)
		for i, s := range d.sigmas {
			d.ts[i] = math.Round(sigmaToT(sig, s))
		}
	}
	d.sigmas = append(d.sigmas, 0)
	return d, nil
}

func (d *dpmSolver) Name() string {
	if d.karras {
		return "dpm++2m-karras"
	}
	return "dpm++2m"
}
func (d *dpmSolver) Timesteps() []float64 { return d.ts }
func (d *dpmSolver) Sigmas() []float64    { return d.sigmas }
func (d *dpmSolver) InitNoiseSigma() float64 {
	return math.Sqrt(d.sigmas[0]*d.sigmas[0] + 1)
}
func (d *dpmSolver) ModelSigma(i int) float64 { return d.sigmas[i] }
func (d *dpmSolver) Reset()                   { d.prev, d.hPrev = nil, 0 }

func (d *dpmSolver) Step(i int, x, x0 *tensor.Tensor, _ func() *tensor.Tensor) *tensor.Tensor {
	s, next := d.sigmas[i], d.sigmas[i+1]
	if next == 0 { // the final step to σ = 0 is first order: x̂_0
		d.Reset()
		return x0
	}
	h := math.Log(s / next)
	D := x0
	if d.prev != nil {
		r := d.hPrev / h
		D = lin2(1+1/(2*r), x0, -1/(2*r), d.prev)
	}
	d.prev, d.hPrev = x0, h
	return firstOrder(s, next, x, D)
}

// ---------------------------------------------------------------------------
// The loop.

// SigmaModel returns the network's raw output for the model input x_t at a
// (possibly fractional) timestep; guidance is closed over.
type SigmaModel func(xt *tensor.Tensor, t float64) (*tensor.Tensor, error)

// SigmaSampleOptions tunes SampleSigma.
type SigmaSampleOptions struct {
	Objective Objective // what the model predicts (default epsilon)
	Clip      float32   // clamp x̂_0 to [−Clip, Clip] when > 0 (clip_sample)
	// OnStep, when set, sees after each step the model output, x̂_0 and the
	// new latents in the model's input space (x_t = x_σ/√(σ²+1)).
	OnStep func(i int, out, x0, latents *tensor.Tensor)
	// With StartX set, sampling begins at step Start from StartX, x_σ at
	// ModelSigma(Start)
	// (image-to-image); the noise argument of SampleSigma is then unused.
	Start  int
	StartX *tensor.Tensor
	// Keep, when set, keeps part of the latents: inpainting with any model,
	// as diffusers' inpainting pipeline does for a U-Net without mask inputs.
	Keep *KeepLatents
}

// KeepLatents says which latents to keep: after every step, where Mask is 0
// the latents become Latents noised with Noise to the level of the next
// model evaluation (x_t = (x_0 + σ·noise)/√(σ²+1), diffusers' add_noise at
// timesteps[i+1]), and Latents itself after the last step; where Mask is 1
// the sampler's result stays. All three have the latents' shape.
type KeepLatents struct {
	Latents, Mask, Noise *tensor.Tensor
}

// apply returns x (x_σ at σ = sigmas[i+1]) with the kept region written.
func (k *KeepLatents) apply(sm SigmaSampler, i int, x *tensor.Tensor) *tensor.Tensor {
	sigmas := sm.Sigmas()
	kept := k.Latents // after the last step: the clean latents (x_t space)
	if i+1 < len(sm.Timesteps()) {
		s := sm.ModelSigma(i + 1)
		kept = tensor.Scale(lin2(1, k.Latents, s, k.Noise), float32(1/math.Sqrt(s*s+1)))
	}
	now := sigmas[i+1] // x_σ = x_t·√(σ²+1) at the point x is at
	kept = tensor.Scale(kept, float32(math.Sqrt(now*now+1)))
	return tensor.Add(tensor.Mul(x, k.Mask), tensor.Mul(kept, tensor.Affine(k.Mask, -1, 1)))
}

// SampleSigma runs sm from N(0, I) noise of noise's shape (scaled by
// InitNoiseSigma) and returns the final latents (x_t space; x̂_0 when the
// last σ is 0). Any further noise (ancestral samplers) comes from rng.
func SampleSigma(sm SigmaSampler, model SigmaModel, noise *tensor.Tensor, rng *rand.Rand, opt SigmaSampleOptions) (*tensor.Tensor, error) {
	if opt.Objective == "" {
		opt.Objective = PredictEpsilon
	}
	sm.Reset()
	sigmas := sm.Sigmas()
	var x *tensor.Tensor
	if opt.StartX != nil {
		if opt.Start < 0 || opt.Start >= len(sm.Timesteps()) {
			return nil, fmt.Errorf("%s: start step %d outside 0 … %d", sm.Name(), opt.Start, len(sm.Timesteps())-1)
		}
		x = opt.StartX
	} else if err := tensor.Catch(func() { x = tensor.Scale(noise, float32(sm.InitNoiseSigma())) }); err != nil {
		return nil, err
	}
	draw := func() *tensor.Tensor { return Randn(x.Device(), rng, x.Shape()...) }
	for i, t := range sm.Timesteps() {
		if opt.StartX != nil && i < opt.Start {
			continue
		}
		s := sm.ModelSigma(i)
		var in *tensor.Tensor
		err := tensor.Catch(func() {
			if s != sigmas[i] && !(opt.StartX != nil && i == opt.Start) { // same latents x_t, seen from σ_model instead of σ_i
				x = tensor.Scale(x, float32(math.Sqrt(s*s+1)/math.Sqrt(sigmas[i]*sigmas[i]+1)))
			}
			in = tensor.Scale(x, float32(1/math.Sqrt(s*s+1)))
		})
		if err != nil {
			return nil, err
		}
		out, err := model(in, t)
		if err != nil {
			return nil, fmt.Errorf("%s step %d (t=%g): %w", sm.Name(), i, t, err)
		}
		err = tensor.Catch(func() {
			var x0 *tensor.Tensor
			switch opt.Objective {
			case PredictEpsilon:
				x0 = lin2(1, x, -s, out)
			case PredictV:
				x0 = lin2(1/(s*s+1), x, -s/math.Sqrt(s*s+1), out)
			case PredictX0:
				x0 = out
			default:
				panic(&tensor.Error{Op: "sample", Msg: fmt.Sprintf("unknown objective %q", opt.Objective)})
			}
			if opt.Clip > 0 {
				x0 = tensor.Clamp(x0, -opt.Clip, opt.Clip)
			}
			x = sm.Step(i, x, x0, draw)
			if opt.Keep != nil {
				x = opt.Keep.apply(sm, i, x)
			}
			if opt.OnStep != nil {
				next := sigmas[i+1]
				opt.OnStep(i, out, x0, tensor.Scale(x, float32(1/math.Sqrt(next*next+1))))
			}
		})
		if err != nil {
			return nil, fmt.Errorf("%s step %d (t=%g): %w", sm.Name(), i, t, err)
		}
	}
	last := sigmas[len(sigmas)-1]
	var out *tensor.Tensor
	err := tensor.Catch(func() { out = tensor.Scale(x, float32(1/math.Sqrt(last*last+1))) })
	return out, err
}
