package nn

import (
	"fmt"
	"math"
	"slices"

	"github.com/godiffuse/godiffuse/safetensors"
	"github.com/godiffuse/godiffuse/tensor"
)

// ---------------------------------------------------------------------------
// Optimizers with PyTorch's exact semantics (torch.optim.Adam / AdamW,
// single-tensor path), and global-norm gradient clipping.
//
// For each parameter with a gradient, with its own step count t:
//
//	Adam:   g ← g + λ·θ                  (weight decay coupled into the gradient)
//	AdamW:  θ ← θ·(1 - lr·λ)             (decoupled weight decay)
//	m ← β1·m + (1-β1)·g,   v ← β2·v + (1-β2)·g²
//	θ ← θ - lr/(1-β1ᵗ) · m / (√v/√(1-β2ᵗ) + ε)
//
// Note where ε goes: after the bias correction of √v, as PyTorch does.
// ---------------------------------------------------------------------------

// AdamConfig holds the hyper-parameters. Zero values of Beta1/Beta2/Eps mean
// PyTorch's defaults (0.9, 0.999, 1e-8).
type AdamConfig struct {
	LR, Beta1, Beta2, Eps, WeightDecay float64
	// Decoupled selects AdamW's weight decay.
	Decoupled bool
}

// Adam is the Adam or AdamW optimizer over a fixed list of parameters.
type Adam struct {
	Config AdamConfig
	Params []Param
	m, v   []*tensor.Tensor
	steps  []int64
}

// NewAdam returns torch.optim.Adam (L2 weight decay coupled into the gradient).
func NewAdam(params []Param, cfg AdamConfig) *Adam {
	cfg.Decoupled = false
	return newAdam(params, cfg)
}

// NewAdamW returns torch.optim.AdamW (decoupled weight decay; PyTorch's
// default decay is 0.01, pass it explicitly).
func NewAdamW(params []Param, cfg AdamConfig) *Adam {
	cfg.Decoupled = true
	return newAdam(params, cfg)
}

func newAdam(params []Param, cfg AdamConfig) *Adam {
	if cfg.Beta1 == 0 {
		cfg.Beta1 = 0.9
	}
	if cfg.Beta2 == 0 {
		cfg.Beta2 = 0.999
	}
	if cfg.Eps == 0 {
		cfg.Eps = 1e-8
	}
	o := &Adam{Config: cfg, Params: params, m: make([]*tensor.Tensor, len(params)),
		v: make([]*tensor.Tensor, len(params)), steps: make([]int64, len(params))}
	return o
}

// Step applies one update to every parameter that has a gradient.
func (o *Adam) Step() error { return o.StepScaled(1) }

// StepScaled is Step with every gradient multiplied by gradScale first (a
// fused form of gradient clipping).
func (o *Adam) StepScaled(gradScale float32) error {
	c := o.Config
	return tensor.Catch(func() {
		for i, p := range o.Params {
			g := p.T.Grad()
			if g == nil {
				continue
			}
			if o.m[i] == nil {
				o.m[i] = tensor.Zeros(p.T.Device(), p.T.Shape()...)
				o.v[i] = tensor.Zeros(p.T.Device(), p.T.Shape()...)
			}
			o.steps[i]++
			t := float64(o.steps[i])
			ap := tensor.AdamParams{
				Beta1: float32(c.Beta1), Beta2: float32(c.Beta2), Eps: float32(c.Eps),
				OneMinusBeta1: float32(1 - c.Beta1), OneMinusBeta2: float32(1 - c.Beta2),
				StepSize:  float32(c.LR / (1 - math.Pow(c.Beta1, t))),
				Bias2Sqrt: float32(math.Sqrt(1 - math.Pow(c.Beta2, t))),
				LR:        float32(c.LR), GradScale: gradScale,
			}
			if c.Decoupled {
				ap.DecoupledWD = float32(c.WeightDecay)
			} else {
				ap.L2 = float32(c.WeightDecay)
			}
			g = g.Contiguous()
			if !p.T.IsDense() {
				panic(&tensor.Error{Op: "adam", Msg: "parameter " + p.Name + " is not dense"})
			}
			p.T.Device().AdamStep(p.T.Buffer(), g.Buffer(), o.m[i].Buffer(), o.v[i].Buffer(), p.T.Numel(), ap)
		}
	})
}

// ZeroGrad drops every parameter's gradient. The buffers go to the
// collector, not back to the device for the next backward pass: kept, they
// would be live through the next forward pass, whose activations (of other
// lengths) cannot take them. At GOGC=15, as diffuse train runs, that raised
// the cifar train step's peak memory 1–4 % (to 1.02× PyTorch's) for no
// clear gain in speed; at GOGC=100 it had been 8–15 % faster
// (bench/RESULTS.md, 2026-12-06 evening).
func (o *Adam) ZeroGrad() {
	for _, p := range o.Params {
		p.T.ZeroGrad()
	}
}

// SetLR changes the learning rate (schedules, warm-up).
func (o *Adam) SetLR(lr float64) { o.Config.LR = lr }

// StateDict returns the optimizer state as safetensors entries:
// "adam.m.<name>", "adam.v.<name>" and "adam.step.<name>" (I64).
func (o *Adam) StateDict() ([]safetensors.Tensor, error) {
	var out []safetensors.Tensor
	for i, p := range o.Params {
		if o.m[i] == nil {
			continue
		}
		m, err := o.m[i].Float32s()
		if err != nil {
			return nil, err
		}
		v, err := o.v[i].Float32s()
		if err != nil {
			return nil, err
		}
		shape := p.T.Shape()
		out = append(out,
			safetensors.Tensor{Name: "adam.m." + p.Name, DType: safetensors.F32, Shape: shape, F: m},
			safetensors.Tensor{Name: "adam.v." + p.Name, DType: safetensors.F32, Shape: shape, F: v},
			safetensors.Tensor{Name: "adam.step." + p.Name, DType: safetensors.I64, Shape: []int{}, I: []int64{o.steps[i]}})
	}
	return out, nil
}

// LoadStateDict restores what StateDict wrote; parameters absent from st
// start fresh.
func (o *Adam) LoadStateDict(st *safetensors.File) error {
	for i, p := range o.Params {
		if _, ok := st.Tensors["adam.step."+p.Name]; !ok {
			o.m[i], o.v[i], o.steps[i] = nil, nil, 0
			continue
		}
		step, _, err := st.Int64("adam.step." + p.Name)
		if err != nil || len(step) != 1 {
			return fmt.Errorf("%s: adam.step.%s: want one int64 (%v)", st.Path, p.Name, err)
		}
		var mv [2]*tensor.Tensor
		for k, key := range []string{"adam.m.", "adam.v."} {
			v, shape, err := st.Float32(key + p.Name)
			if err != nil {
				return err
			}
			if !slices.Equal(shape, p.T.Shape()) {
				return fmt.Errorf("%s: %s%s has shape %v, want %v", st.Path, key, p.Name, shape, p.T.Shape())
			}
			if err := tensor.Catch(func() { mv[k] = tensor.FromFloat32(p.T.Device(), v, shape...) }); err != nil {
				return err
			}
		}
		o.m[i], o.v[i], o.steps[i] = mv[0], mv[1], step[0]
	}
	return nil
}

// ClipGradNorm scales all gradients so that their global L2 norm is at most
// maxNorm, as torch.nn.utils.clip_grad_norm_: coef = maxNorm/(norm + 1e-6),
// applied only when coef < 1. It returns the norm before clipping. This is a
// sync point (the norm is read back to the host).
func ClipGradNorm(ps []Param, maxNorm float64) (norm float64, err error) {
	err = tensor.Catch(func() {
		// Σ‖g‖² is summed on the device and read back once.
		var total *tensor.Tensor
		for _, p := range ps {
			if g := p.T.Grad(); g != nil {
				if ss := tensor.SumSquares(g); total == nil {
					total = ss
				} else {
					total = tensor.Add(total, ss)
				}
			}
		}
		if total == nil {
			return
		}
		ss, e := total.Item()
		if e != nil {
			panic(&tensor.Error{Op: "clip_grad_norm", Msg: e.Error()})
		}
		norm = math.Sqrt(float64(ss))
		coef := maxNorm / (norm + 1e-6)
		if coef < 1 {
			for _, p := range ps {
				if g := p.T.Grad(); g != nil {
					p.T.SetGrad(tensor.Scale(g, float32(coef)))
				}
			}
		}
	})
	return norm, err
}

// ParamsOf names loose tensors (alternating name, tensor) as a parameter list.
func ParamsOf(nameAndTensor ...any) []Param {
	var ps []Param
	for i := 0; i+1 < len(nameAndTensor); i += 2 {
		ps = append(ps, Param{Name: nameAndTensor[i].(string), T: nameAndTensor[i+1].(*tensor.Tensor)})
	}
	return ps
}
