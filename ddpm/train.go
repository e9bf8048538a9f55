package ddpm

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"time"

	"github.com/godiffuse/godiffuse/data"
	"github.com/godiffuse/godiffuse/nn"
	"github.com/godiffuse/godiffuse/nn/unet"
	"github.com/godiffuse/godiffuse/safetensors"
	"github.com/godiffuse/godiffuse/tensor"
)

// ---------------------------------------------------------------------------
// The training loop (Ho et al. 2020, Algorithm 1, with the usual extras):
// sample a batch x_0, timesteps t ~ U{0…T-1} and noise ε, regress the
// objective's target from x_t with a (min-SNR-weighted) MSE, clip the
// gradient norm, take an AdamW step with linear warm-up, update the EMA.
//
// Every random choice (batch indices, flips, label drops, timesteps, noise,
// dropout seeds) comes from one PCG stream whose state is saved in the
// checkpoint, so a resumed run continues exactly where it stopped.
// ---------------------------------------------------------------------------

// TrainConfig holds the hyper-parameters; it is saved with every checkpoint.
type TrainConfig struct {
	Steps       int          `json:"steps"`
	Batch       int          `json:"batch"`
	LR          float64      `json:"lr"`
	WarmupSteps int          `json:"warmup_steps"`
	LRDecay     string       `json:"lr_decay,omitempty"`       // after the warm-up: "" or "constant", or "cosine" (to 0 at Steps)
	DecayStart  int          `json:"lr_decay_start,omitempty"` // the cosine starts here (0: at the end of the warm-up); set when a resumed run turns the decay on
	WeightDecay float64      `json:"weight_decay"`
	ClipNorm    float64      `json:"clip_norm"`           // 0: no clipping
	EMADecay    float64      `json:"ema_decay"`           // the cap; the warm-up is (1+n)/(10+n)
	CondDrop    float64      `json:"cond_drop"`           // probability of replacing the label by the null class
	HFlip       bool         `json:"hflip"`               // random horizontal flips
	Objective   string       `json:"objective"`           // epsilon, v_prediction or sample
	Schedule    BetaSchedule `json:"schedule"`            // written as its name
	T           int          `json:"timesteps"`           // number of diffusion steps
	MinSNRGamma float64      `json:"min_snr_gamma"`       // 0: plain MSE
	SNRShift    float64      `json:"snr_shift,omitempty"` // divide the schedule's every SNR by this (0 or 1: as named); Schedule.ShiftSNR
	Seed        uint64       `json:"seed"`
	// Data is what the run trains on as diffuse train's -data names it
	// ("shapes3d", "folder:DIR"); a resumed run without -data reads it back.
	Data string `json:"data,omitempty"`
	// FreezeText keeps a text-to-image run's text encoder at its random
	// initialization: only the U-Net trains (captioned data only).
	FreezeText bool `json:"freeze_text,omitempty"`
	// PretrainText is the steps of contrastive pre-training the text
	// encoder had before the U-Net trained (pipeline.Trainer.PretrainText;
	// shapes data); 0 for none. With FreezeText it then stays as
	// pre-trained, without it it trains on with the U-Net.
	PretrainText int `json:"pretrain_text,omitempty"`
	// GroundText weighs an auxiliary loss of a text-to-image run on the
	// shapes data (pipeline.Trainer): a linear head reads each object's
	// place in the picture from the text encoder's states of that
	// object's words, in position captions; 0 for none.
	GroundText float64 `json:"ground_text,omitempty"`
	// GroundAttention weighs an auxiliary loss of a text-to-image run on
	// the shapes data (pipeline.Trainer): the share of each object word's
	// cross-attention (a position caption's relation: its first
	// object's) that falls outside that object's mask; 0 for none.
	GroundAttention float64 `json:"ground_attention,omitempty"`
}

// DefaultTrainConfig is a reasonable small-model setting.
func DefaultTrainConfig() TrainConfig {
	return TrainConfig{Steps: 1000, Batch: 32, LR: 1e-3, WarmupSteps: 50, WeightDecay: 0.01, ClipNorm: 1,
		EMADecay: 0.999, CondDrop: 0.1, Objective: string(PredictEpsilon), Schedule: Cosine, T: 1000, Seed: 1}
}

// Validate names the first bad field.
func (c TrainConfig) Validate() error {
	finite := func(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }
	// Every range is written so that NaN falls outside it.
	switch {
	case c.Steps < 0 || c.Steps > MaxTrainSteps:
		return fmt.Errorf("steps: want 0 … %d, have %d", MaxTrainSteps, c.Steps)
	case c.Batch < 1 || c.Batch > MaxBatch:
		return fmt.Errorf("batch: want 1 … %d, have %d", MaxBatch, c.Batch)
	case !(c.LR > 0 && c.LR <= 10):
		return fmt.Errorf("lr: want 0 < lr ≤ 10, have %g", c.LR)
	case c.WarmupSteps < 0 || c.WarmupSteps > MaxTrainSteps:
		return fmt.Errorf("warmup: want 0 … %d, have %d", MaxTrainSteps, c.WarmupSteps)
	case !(c.WeightDecay >= 0 && finite(c.WeightDecay)):
		return fmt.Errorf("weight-decay: want a finite value ≥ 0, have %g", c.WeightDecay)
	case c.LRDecay != "" && c.LRDecay != LRConstant && c.LRDecay != LRCosine:
		return fmt.Errorf("lr-decay: want %s or %s, have %q", LRConstant, LRCosine, c.LRDecay)
	case c.DecayStart < 0 || c.DecayStart > MaxTrainSteps:
		return fmt.Errorf("lr_decay_start: want 0 … %d, have %d", MaxTrainSteps, c.DecayStart)
	case !(c.EMADecay >= 0 && c.EMADecay < 1):
		return fmt.Errorf("ema: want 0 ≤ decay < 1, have %g", c.EMADecay)
	case !(c.CondDrop >= 0 && c.CondDrop < 1):
		return fmt.Errorf("cond-drop: want 0 ≤ p < 1, have %g", c.CondDrop)
	case !(c.ClipNorm >= 0 && finite(c.ClipNorm)):
		return fmt.Errorf("clip: want a finite value ≥ 0 (0: off), have %g", c.ClipNorm)
	case !(c.MinSNRGamma >= 0 && finite(c.MinSNRGamma)):
		return fmt.Errorf("min-snr: want a finite value ≥ 0 (0: off), have %g", c.MinSNRGamma)
	case c.T < 2 || c.T > MaxTimesteps:
		return fmt.Errorf("timesteps: want 2 … %d, have %d", MaxTimesteps, c.T)
	case c.PretrainText < 0 || c.PretrainText > MaxTrainSteps:
		return fmt.Errorf("pretrain_text: want 0 … %d steps, have %d", MaxTrainSteps, c.PretrainText)
	case !(c.GroundText >= 0 && c.GroundText <= 100):
		return fmt.Errorf("ground-text: want a weight 0 … 100 (0: off), have %g", c.GroundText)
	case !(c.GroundAttention >= 0 && c.GroundAttention <= 100):
		return fmt.Errorf("ground-attention: want a weight 0 … 100 (0: off), have %g", c.GroundAttention)
	case c.SNRShift != 0 && !(c.SNRShift >= MinSNRShift && c.SNRShift <= MaxSNRShift):
		return fmt.Errorf("snr-shift: want 0 (none) or %g … %g, have %g", MinSNRShift, MaxSNRShift, c.SNRShift)
	}
	if _, err := ParseObjective(c.Objective); err != nil {
		return fmt.Errorf("objective: %w", err)
	}
	if _, err := NewSchedule(c.Schedule, c.T); err != nil {
		return fmt.Errorf("schedule: %w", err)
	}
	return nil
}

// NoiseSchedule is the schedule the run trains and samples with: Schedule
// of T steps, its SNR divided by SNRShift when that is set.
func (c TrainConfig) NoiseSchedule() (*Schedule, error) {
	s, err := NewSchedule(c.Schedule, c.T)
	if err != nil || c.SNRShift == 0 || c.SNRShift == 1 {
		return s, err
	}
	return s.ShiftSNR(c.SNRShift), nil
}

// Bounds of a training run's settings.
const (
	MaxTrainSteps = 100_000_000
	MaxBatch      = 65536
	// The range of SNRShift (besides 0).
	MinSNRShift, MaxSNRShift = 1e-3, 1e6
)

// Network is the U-Net a Trainer trains: an *nn.UNet2D, or a *unet.UNet3D
// for volumes (which take their volumes as stacks of slices, so the loop,
// the objectives and the samplers see images).
type Network interface {
	Forward(x *tensor.Tensor, timesteps []float32, labels []int64, opt *nn.ForwardOptions) (*tensor.Tensor, error)
	Params() []nn.Param
	NumParams() int
	Save(dir string) error
	LoadWeights(st *safetensors.File) error
}

// Trainer holds everything a run needs; Checkpoint and Resume save and
// restore all of it.
type Trainer struct {
	Config    TrainConfig
	Model     Network
	EMA       Network
	Opt       *nn.Adam
	Schedule  *Schedule
	Objective Objective
	Data      data.Dataset
	Classes   []string // names of the labels; the null class is len(Classes)
	Step      int      // steps done
	Losses    []float32
	dev       tensor.Device
	pcg       *rand.PCG
	rng       *rand.Rand
}

// NewTrainer builds the model from modelCfg. For a labelled dataset the
// model becomes class-conditional with len(classes)+1 embeddings, the last
// being the learned null class used for classifier-free guidance.
func NewTrainer(dev tensor.Device, modelCfg nn.UNet2DConfig, tc TrainConfig, ds data.Dataset) (*Trainer, error) {
	if err := tc.Validate(); err != nil {
		return nil, err
	}
	c, h, w := ds.Shape()
	if mh, mw, ok := modelCfg.SampleHW(); ok && (mh != h || mw != w) {
		return nil, fmt.Errorf("model sample_size %dx%d does not match the data's %dx%d", mh, mw, h, w)
	}
	if modelCfg.InChannels != c || modelCfg.OutChannels != c {
		return nil, fmt.Errorf("model in/out_channels %d/%d do not match the data's %d channels", modelCfg.InChannels, modelCfg.OutChannels, c)
	}
	numClasses := numClassEmbeds(ds)
	modelCfg.NumClassEmbeds = numClasses
	m, err := nn.NewUNet2D(dev, modelCfg, tc.Seed)
	if err != nil {
		return nil, err
	}
	ema, _ := nn.NewUNet2D(dev, modelCfg, tc.Seed)
	return newTrainer(dev, m, ema, tc, ds), nil
}

// NewVolumeTrainer is NewTrainer for a UNet3D on a dataset of volumes.
func NewVolumeTrainer(dev tensor.Device, modelCfg unet.UNet3DConfig, tc TrainConfig, ds data.VolumeDataset) (*Trainer, error) {
	if err := tc.Validate(); err != nil {
		return nil, err
	}
	c, d, h, w := ds.VolumeShape()
	if d != h || h != w {
		return nil, fmt.Errorf("the data's volumes are %dx%dx%d; the 3-D U-Net trains on cubes", d, h, w)
	}
	if modelCfg.SampleSize != 0 && modelCfg.SampleSize != d {
		return nil, fmt.Errorf("model sample_size %d does not match the data's %d³ volumes", modelCfg.SampleSize, d)
	}
	if modelCfg.InChannels != c || modelCfg.OutChannels != c {
		return nil, fmt.Errorf("model in/out_channels %d/%d do not match the data's %d channels", modelCfg.InChannels, modelCfg.OutChannels, c)
	}
	if tc.HFlip {
		return nil, fmt.Errorf("hflip: flips apply to images (the solids are drawn in random orientations already)")
	}
	modelCfg.SampleSize = d
	modelCfg.NumClassEmbeds = numClassEmbeds(ds)
	m, err := unet.NewUNet3D(dev, modelCfg, tc.Seed)
	if err != nil {
		return nil, err
	}
	ema, _ := unet.NewUNet3D(dev, modelCfg, tc.Seed)
	return newTrainer(dev, m, ema, tc, ds), nil
}

// numClassEmbeds is len(classes)+1 for a labelled dataset (the last being
// the learned null class of classifier-free guidance), nil without labels.
func numClassEmbeds(ds data.Dataset) *int {
	if len(ds.Classes()) == 0 {
		return nil
	}
	n := len(ds.Classes()) + 1
	return &n
}

func newTrainer(dev tensor.Device, m, ema Network, tc TrainConfig, ds data.Dataset) *Trainer {
	nn.NoGrad(ema.Params())
	s, _ := tc.NoiseSchedule()
	obj, _ := ParseObjective(tc.Objective)
	pcg := rand.NewPCG(tc.Seed, 0xd1ff05e)
	return &Trainer{Config: tc, Model: m, EMA: ema, Schedule: s, Objective: obj, Data: ds, Classes: ds.Classes(), dev: dev,
		Opt: nn.NewAdamW(m.Params(), nn.AdamConfig{LR: tc.LR, WeightDecay: tc.WeightDecay}), pcg: pcg, rng: rand.New(pcg)}
}

// Conditional reports whether the model takes class labels.
func (tr *Trainer) Conditional() bool { return len(tr.Classes) > 0 }

// ErrNonFinite is returned when the loss becomes NaN or Inf.
var ErrNonFinite = errors.New("loss is not finite")

// StepInfo reports one finished step.
type StepInfo struct {
	Step      int
	Loss      float32
	LR        float64
	GradNorm  float64
	Duration  time.Duration
	ImagesPer float64 // images per second of this step
}

// TrainStep runs one optimization step.
func (tr *Trainer) TrainStep() (StepInfo, error) {
	start := time.Now()
	batch := tr.sampleBatch()
	lr := tr.learningRate()
	tr.Opt.SetLR(lr)
	info, err := tr.lossStep(batch)
	if err != nil {
		return info, fmt.Errorf("step %d: %w", tr.Step+1, err)
	}
	tr.Step++
	tr.Losses = append(tr.Losses, info.Loss)
	info.Step, info.LR, info.Duration = tr.Step, lr, time.Since(start)
	info.ImagesPer = float64(tr.Config.Batch) / info.Duration.Seconds()
	return info, nil
}

// trainBatch is one step's random draws: images (with flips), labels (with
// the null label at the conditioning-dropout rate), timesteps, noise and the
// dropout seed, all from the trainer's generator in a fixed order (so that a
// resumed run draws the same).
type trainBatch struct {
	x0       []float32
	labels   []int64
	ts       []int
	noise    *tensor.Tensor
	dropSeed uint64
}

func (tr *Trainer) sampleBatch() trainBatch {
	tc := tr.Config
	c, h, w := tr.Data.Shape()
	B, n := tc.Batch, c*h*w
	bt := trainBatch{x0: make([]float32, B*n)}
	for b := range B {
		img := bt.x0[b*n : (b+1)*n]
		l := tr.Data.Image(tr.rng.IntN(tr.Data.Len()), img)
		if tc.HFlip && tr.rng.IntN(2) == 1 {
			for row := 0; row < c*h; row++ {
				r := img[row*w : (row+1)*w]
				for i, j := 0, w-1; i < j; i, j = i+1, j-1 {
					r[i], r[j] = r[j], r[i]
				}
			}
		}
		if tr.Conditional() {
			if tr.rng.Float64() < tc.CondDrop {
				l = len(tr.Classes)
			}
			bt.labels = append(bt.labels, int64(l))
		}
	}
	bt.ts = make([]int, B)
	for i := range bt.ts {
		bt.ts[i] = tr.rng.IntN(tr.Schedule.T)
	}
	bt.noise = Randn(tr.dev, tr.rng, B, c, h, w)
	bt.dropSeed = tr.rng.Uint64()
	return bt
}

// learningRate rises linearly over the warm-up, then stays at the peak
// (constant) or follows half a cosine down to zero at the last step.
func (tr *Trainer) learningRate() float64 { return LearningRate(tr.Config, tr.Step) }

// LearningRate is the rate of the step after `step` steps under tc: a
// linear warm-up, then the peak, which the cosine decay (when on) takes
// down to zero between max(WarmupSteps, DecayStart) and Steps.
func LearningRate(tc TrainConfig, step int) float64 {
	if tc.WarmupSteps > 0 && step < tc.WarmupSteps {
		return tc.LR * float64(step+1) / float64(tc.WarmupSteps)
	}
	from := max(tc.WarmupSteps, tc.DecayStart)
	if tc.LRDecay == LRCosine && tc.Steps > from && step >= from {
		f := float64(step-from) / float64(tc.Steps-from)
		return tc.LR * 0.5 * (1 + math.Cos(math.Pi*min(f, 1)))
	}
	return tc.LR
}

// ResumeChanges are what a resumed run may do differently from the saved
// configuration; a zero field keeps the saved value. Without changes a
// resumed run continues exactly as the uninterrupted one would.
type ResumeChanges struct {
	Steps   int     // the new total step count
	LR      float64 // the peak learning rate from here on
	LRDecay string  // constant or cosine; turned on at a resume, the cosine runs from that step to Steps
	Data    string  // the data's name when given again (a folder moved); "": as saved
	// GroundAttention, when not nil, is the attention grounding loss's
	// weight from here on (it has no state of its own: 0 turns it off).
	GroundAttention *float64
}

// Apply returns tc, saved at step `step`, with the changes made.
func (ch ResumeChanges) Apply(tc TrainConfig, step int) (TrainConfig, error) {
	if ch.Steps > 0 {
		tc.Steps = ch.Steps
	}
	if ch.LR != 0 {
		tc.LR = ch.LR
	}
	if ch.Data != "" {
		tc.Data = ch.Data
	}
	if ch.GroundAttention != nil {
		tc.GroundAttention = *ch.GroundAttention
	}
	switch {
	case ch.LRDecay == "" || ch.LRDecay == tc.LRDecay:
	case ch.LRDecay == LRCosine:
		tc.LRDecay, tc.DecayStart = LRCosine, step
	default:
		tc.LRDecay, tc.DecayStart = ch.LRDecay, 0
	}
	if err := tc.Validate(); err != nil {
		return tc, fmt.Errorf("resuming at step %d: %w", step, err)
	}
	return tc, nil
}

// Learning-rate decays after the warm-up (TrainConfig.LRDecay).
const (
	LRConstant = "constant"
	LRCosine   = "cosine"
)

// lossStep runs forward, loss, backward, clipping, the optimizer and the EMA
// on one batch. A non-finite loss returns ErrNonFinite before any update.
// Errors keep their identity (errors.Is/As work on device errors).
func (tr *Trainer) lossStep(bt trainBatch) (StepInfo, error) {
	var info StepInfo
	tc, dev := tr.Config, tr.dev
	c, h, w := tr.Data.Shape()
	B := tc.Batch
	var x, xt *tensor.Tensor
	if err := tensor.Catch(func() { x = tensor.FromFloat32(dev, bt.x0, B, c, h, w) }); err != nil {
		return info, err
	}
	xt, err := tr.Schedule.AddNoise(x, bt.noise, bt.ts)
	if err != nil {
		return info, err
	}
	tf := make([]float32, B)
	for i, t := range bt.ts {
		tf[i] = float32(t)
	}
	out, err := tr.Model.Forward(xt, tf, bt.labels, &nn.ForwardOptions{Train: true, Seed: bt.dropSeed})
	if err != nil {
		return info, err
	}
	target, err := tr.Schedule.Target(tr.Objective, x, bt.noise, bt.ts)
	if err != nil {
		return info, err
	}
	var loss *tensor.Tensor
	if err := tensor.Catch(func() {
		loss = WeightedMSE(out, target, tr.Schedule.LossWeights(tr.Objective, bt.ts, tc.MinSNRGamma))
	}); err != nil {
		return info, err
	}
	if info.Loss, err = loss.Item(); err != nil {
		return info, err
	}
	if math.IsNaN(float64(info.Loss)) || math.IsInf(float64(info.Loss), 0) {
		return info, fmt.Errorf("%w (%g); the weights were not updated", ErrNonFinite, info.Loss)
	}
	tr.Opt.ZeroGrad()
	if err := tensor.Catch(loss.BackwardRelease); err != nil {
		return info, err
	}
	if tc.ClipNorm > 0 {
		if info.GradNorm, err = nn.ClipGradNorm(tr.Model.Params(), tc.ClipNorm); err != nil {
			return info, err
		}
	}
	if err := tr.Opt.Step(); err != nil {
		return info, err
	}
	tr.Opt.ZeroGrad()
	if err := tensor.Catch(tr.updateEMA); err != nil {
		return info, err
	}
	return info, nil
}

// EMADecayAt is the EMA decay after n updates: min(cap, (1+n)/(10+n)).
func EMADecayAt(cap float64, n int) float64 {
	return math.Min(cap, float64(1+n)/float64(10+n))
}

// updateEMA sets ema ← d·ema + (1-d)·θ.
func (tr *Trainer) updateEMA() {
	UpdateEMA(tr.EMA.Params(), tr.Model.Params(), EMADecayAt(tr.Config.EMADecay, tr.Step))
}

// UpdateEMA sets each ema[i] ← d·ema[i] + (1-d)·params[i] (the two lists in
// the same order), releasing its temporaries (tensor.Release).
func UpdateEMA(ema, params []nn.Param, d float64) {
	for i := range params {
		a, b := tensor.Scale(ema[i].T, float32(d)), tensor.Scale(params[i].T.Detach(), float32(1-d))
		sum := tensor.Add(a, b)
		ema[i].T.CopyFrom(sum)
		tensor.Release(a, b, sum)
	}
}

// NullClass is the label index of the learned unconditional class.
func (tr *Trainer) NullClass() int64 { return int64(len(tr.Classes)) }
