package pipeline

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/godiffuse/godiffuse/data"
	"github.com/godiffuse/godiffuse/ddpm"
	"github.com/godiffuse/godiffuse/internal/atomicfile"
	"github.com/godiffuse/godiffuse/nn"
	"github.com/godiffuse/godiffuse/nn/clip"
	"github.com/godiffuse/godiffuse/nn/unet"
	"github.com/godiffuse/godiffuse/safetensors"
	"github.com/godiffuse/godiffuse/tensor"
)

// ---------------------------------------------------------------------------
// Training a text-to-image pipeline from scratch: a UNet2DConditionModel in
// pixel space and a CLIP-architecture text encoder, trained together on
// captioned images (the text encoder's gradient comes through the U-Net's
// cross-attention), with the caption dropped to "" at the rate CondDrop for
// classifier-free guidance. The checkpoint is a pipeline folder that Load
// (and diffuse generate -model) reads as is:
//
//	model_index.json   a StableDiffusionPipeline whose vae is [null, null] (pixel space)
//	unet/              the U-Net's EMA weights and config
//	text_encoder/      the text encoder's EMA weights and config
//	tokenizer/         CLIP's BPE cut down to the captions' merges (clip.Tokenizer.Subset)
//	scheduler/         a DDIMScheduler config with the training betas written out
//	train_state.safetensors   the raw weights, AdamW moments, losses; metadata:
//	                   config, step, RNG state (for an exact resume)
//
// It is saved as ddpm checkpoints are (ddpm.SaveFolder: a crash at any
// point loses nothing).
// ---------------------------------------------------------------------------

// Trainer trains a text-conditioned pipeline.
type Trainer struct {
	Config        ddpm.TrainConfig
	UNet, EMA     *unet.Condition
	Text, TextEMA *clip.TextModel
	Tokenizer     *clip.Tokenizer
	Opt           *nn.Adam
	Schedule      *ddpm.Schedule
	Objective     ddpm.Objective
	Data          data.Captioned
	// Ground is the head of the grounding loss (GroundText; nil without).
	Ground *nn.Linear
	// GroundLoss is the last step's grounding loss (0 when it had none).
	GroundLoss float32
	// AttentionLoss is the last step's attention grounding loss
	// (GroundAttention; 0 when it had none).
	AttentionLoss float32
	Step          int
	Losses        []float32
	pcg           *rand.PCG
	rng           *rand.Rand
}

// NewTrainer builds the models from their configs (the text encoder's
// vocabulary and special ids follow tok).
func NewTrainer(dev tensor.Device, uc unet.ConditionConfig, tcfg clip.TextConfig, tok *clip.Tokenizer, tc ddpm.TrainConfig, ds data.Captioned) (*Trainer, error) {
	if err := tc.Validate(); err != nil {
		return nil, err
	}
	c, h, w := ds.Shape()
	var size int
	switch {
	case c != 3:
		return nil, fmt.Errorf("text-to-image training: the data has %d channels; pixel-space pipelines are RGB", c)
	case uc.InChannels != 3 || uc.OutChannels != 3:
		return nil, fmt.Errorf("unet in/out_channels %d/%d: a pixel-space pipeline needs 3/3", uc.InChannels, uc.OutChannels)
	case json.Unmarshal(uc.SampleSize, &size) != nil || size != h || h != w:
		return nil, fmt.Errorf("unet sample_size %s does not match the data's %dx%d", uc.SampleSize, h, w)
	case uc.CrossAttentionDim.At(0) != tcfg.HiddenSize:
		return nil, fmt.Errorf("unet cross_attention_dim %d differs from the text encoder's hidden_size %d", uc.CrossAttentionDim.At(0), tcfg.HiddenSize)
	}
	tcfg.VocabSize, tcfg.BosTokenID, tcfg.EosTokenID, tcfg.PadTokenID = tok.VocabSize(), tok.BosID(), tok.EosID(), tok.PadID()
	tcfg.MaxPositionEmbeddings = max(tcfg.MaxPositionEmbeddings, tok.MaxLength)
	if err := uc.Validate(); err != nil {
		return nil, err
	}
	m, err := unet.NewCondition(dev, uc, tc.Seed)
	if err != nil {
		return nil, err
	}
	ema, _ := unet.NewCondition(dev, uc, tc.Seed)
	ema.NoGrad()
	text, err := clip.NewTextModel(dev, tcfg, rand.New(rand.NewPCG(tc.Seed, 0x7e47)))
	if err != nil {
		return nil, err
	}
	textEMA, _ := clip.NewTextModel(dev, tcfg, rand.New(rand.NewPCG(tc.Seed, 0x7e47)))
	textEMA.NoGrad()
	s, _ := tc.NoiseSchedule()
	obj, _ := ddpm.ParseObjective(tc.Objective)
	pcg := rand.NewPCG(tc.Seed, 0x7e87)
	if tc.FreezeText {
		text.NoGrad()
	}
	tr := &Trainer{Config: tc, UNet: m, EMA: ema, Text: text, TextEMA: textEMA, Tokenizer: tok, Schedule: s, Objective: obj,
		Data: ds, pcg: pcg, rng: rand.New(pcg)}
	if tc.GroundText > 0 {
		if _, ok := ds.(sceneSource); !ok || tc.FreezeText {
			return nil, fmt.Errorf("ground_text %g: the grounding loss needs the shapes data (its scenes say where each object is) and a text encoder that trains", tc.GroundText)
		}
		tr.Ground = newGroundHead(dev, tcfg.HiddenSize, tc.Seed)
	}
	if _, ok := ds.(sceneSource); tc.GroundAttention > 0 && !ok {
		return nil, fmt.Errorf("ground_attention %g: the attention grounding loss needs the shapes data (its scenes give each object's mask)", tc.GroundAttention)
	}
	tr.Opt = nn.NewAdamW(tr.params(), nn.AdamConfig{LR: tc.LR, WeightDecay: tc.WeightDecay})
	return tr, nil
}

// models are the parameters the EMA copies follow: the U-Net's, then the
// text encoder's (unless it is frozen: then it stays as initialized, and
// so does its EMA copy, made from the same seed).
func (tr *Trainer) models() []nn.Param {
	if tr.Config.FreezeText {
		return tr.UNet.Params()
	}
	return append(tr.UNet.Params(), tr.Text.Params()...)
}

// params are the trained parameters: the models', then the grounding
// head's, if any.
func (tr *Trainer) params() []nn.Param {
	if tr.Ground == nil {
		return tr.models()
	}
	var head nn.ParamList
	tr.Ground.Collect("ground_head", &head)
	return append(tr.models(), head...)
}

func (tr *Trainer) emaParams() []nn.Param {
	if tr.Config.FreezeText {
		return tr.EMA.Params()
	}
	return append(tr.EMA.Params(), tr.TextEMA.Params()...)
}

// TrainStep runs one optimization step.
func (tr *Trainer) TrainStep() (ddpm.StepInfo, error) {
	start := time.Now()
	tc := tr.Config
	c, h, w := tr.Data.Shape()
	B, n := tc.Batch, c*h*w
	dev := tr.UNet.Device
	// The draws, in a fixed order (an exact resume draws the same).
	x0 := make([]float32, B*n)
	captions := make([]string, B)
	picked := make([]int, B)
	ts := make([]int, B)
	for b := range B {
		i := tr.rng.IntN(tr.Data.Len())
		picked[b] = i
		tr.Data.Image(i, x0[b*n:(b+1)*n])
		captions[b] = tr.Data.Caption(i)
		if tr.rng.Float64() < tc.CondDrop {
			captions[b] = ""
		}
	}
	for b := range ts {
		ts[b] = tr.rng.IntN(tr.Schedule.T)
	}
	noise := ddpm.Randn(dev, tr.rng, B, c, h, w)
	var ids []int64
	for _, cap := range captions {
		t, _ := tr.Tokenizer.Tokenize(cap)
		ids = append(ids, t...)
	}
	lr := ddpm.LearningRate(tc, tr.Step)
	tr.Opt.SetLR(lr)
	info := ddpm.StepInfo{LR: lr}
	text, err := tr.Text.Forward(ids, B)
	if err != nil {
		return info, err
	}
	var x *tensor.Tensor
	if err := tensor.Catch(func() { x = tensor.FromFloat32(dev, x0, B, c, h, w) }); err != nil {
		return info, err
	}
	xt, err := tr.Schedule.AddNoise(x, noise, ts)
	if err != nil {
		return info, err
	}
	tf := make([]float32, B)
	for i, t := range ts {
		tf[i] = float32(t)
	}
	var maps []observedMap
	if tc.GroundAttention > 0 {
		defer tr.UNet.ObserveCrossAttention(func(p *tensor.Tensor, h, w int) { maps = append(maps, observedMap{p, h, w}) })()
	}
	out, err := tr.UNet.Forward(xt, tf, text.LastHidden, nil, nil)
	if err != nil {
		return info, err
	}
	target, err := tr.Schedule.Target(tr.Objective, x, noise, ts)
	if err != nil {
		return info, err
	}
	var loss *tensor.Tensor
	if err := tensor.Catch(func() {
		loss = ddpm.WeightedMSE(out, target, tr.Schedule.LossWeights(tr.Objective, ts, tc.MinSNRGamma))
	}); err != nil {
		return info, err
	}
	if info.Loss, err = loss.Item(); err != nil {
		return info, err
	}
	if math.IsNaN(float64(info.Loss)) || math.IsInf(float64(info.Loss), 0) {
		return info, fmt.Errorf("step %d: %w (%g); the weights were not updated", tr.Step+1, ddpm.ErrNonFinite, info.Loss)
	}
	tr.GroundLoss = 0
	if tr.Ground != nil {
		ground, err := tr.groundLoss(text.LastHidden, captions, picked)
		if err != nil {
			return info, err
		}
		if loss, tr.GroundLoss, err = tr.addLoss(loss, ground, "grounding loss"); err != nil {
			return info, err
		}
	}
	tr.AttentionLoss = 0
	if len(maps) > 0 {
		attn, err := tr.attentionGroundLoss(maps, captions, picked)
		if err != nil {
			return info, err
		}
		if loss, tr.AttentionLoss, err = tr.addLoss(loss, attn, "attention grounding loss"); err != nil {
			return info, err
		}
	}
	tr.Opt.ZeroGrad()
	if err := tensor.Catch(loss.BackwardRelease); err != nil {
		return info, err
	}
	if tc.ClipNorm > 0 {
		if info.GradNorm, err = nn.ClipGradNorm(tr.params(), tc.ClipNorm); err != nil {
			return info, err
		}
	}
	if err := tr.Opt.Step(); err != nil {
		return info, err
	}
	tr.Opt.ZeroGrad()
	d := ddpm.EMADecayAt(tc.EMADecay, tr.Step)
	if err := tensor.Catch(func() { ddpm.UpdateEMA(tr.emaParams(), tr.models(), d) }); err != nil {
		return info, err
	}
	tr.Step++
	tr.Losses = append(tr.Losses, info.Loss)
	info.Step, info.Duration = tr.Step, time.Since(start)
	info.ImagesPer = float64(B) / info.Duration.Seconds()
	return info, nil
}

// addLoss adds an auxiliary loss (nil: none this step) to loss, returning
// the sum and the auxiliary loss's value; a value that is not finite stops
// the step before any weight changes.
func (tr *Trainer) addLoss(loss, aux *tensor.Tensor, what string) (*tensor.Tensor, float32, error) {
	if aux == nil {
		return loss, 0, nil
	}
	v, err := aux.Item()
	if err != nil {
		return nil, 0, err
	}
	if g := float64(v); math.IsNaN(g) || math.IsInf(g, 0) {
		return nil, 0, fmt.Errorf("step %d: %s: %w (%g); the weights were not updated", tr.Step+1, what, ddpm.ErrNonFinite, g)
	}
	err = tensor.Catch(func() { loss = tensor.Add(loss, aux) })
	return loss, v, err
}

// TrainedSuggested is what a folder trained here suggests to front-ends:
// guidance 3, the best of 1, 3, 5, 7.5 for single objects on both the
// quick and the hour's shapes model (bench/RESULTS.md, 2026-12-03; at
// Stable Diffusion's 7.5 the quick model scored 25 % against 40 % at 3),
// and 20 steps of Euler ancestral: its fresh noise at every step mends
// what the deterministic samplers keep (the ten-minute shapes model drew
// single objects right 86.0 % of the time against 77.3 % with
// DPM-Solver++(2M) and 80.0 % with its Karras variant, the reference model
// 99.7 % against 98.9 %: bench/RESULTS.md, 2026-12-06).
var TrainedSuggested = Suggested{Guidance: 3, Steps: 20, Sampler: ddpm.SigmaEulerAncestral}

// Pipeline returns the EMA models as a pipeline (sharing their weights),
// for sampling during training.
func (tr *Trainer) Pipeline() *Pipeline {
	return &Pipeline{Dir: "(training)", Name: "training", Class: "StableDiffusionPipeline", Device: tr.UNet.Device,
		Tokenizer: tr.Tokenizer, TextEncoder: tr.TextEMA, UNet: tr.EMA, Scheduler: tr.schedulerConfig(), Suggested: TrainedSuggested}
}

// schedulerConfig is the DDIM scheduler of the training schedule, its
// betas written out (trained_betas: exact for every schedule).
func (tr *Trainer) schedulerConfig() ddpm.SchedulerConfig {
	return ddpm.SchedulerConfig{ClassName: "DDIMScheduler", NumTrainTimesteps: tr.Schedule.T, BetaSchedule: "linear",
		TrainedBetas: tr.Schedule.Betas, PredictionType: string(tr.Objective), StepsOffset: 1, TimestepSpacing: "leading"}
}

// Save writes the pipeline folder dir atomically (see above).
func (tr *Trainer) Save(dir string) error {
	return ddpm.SaveFolder(dir, tr.Step, tr.write)
}

func (tr *Trainer) write(tmp string) error {
	index := map[string]any{"_class_name": "StableDiffusionPipeline", "_diffusers_version": "0.30.0", "_godiffuse": "pixel-space text-to-image, trained by diffuse train",
		"text_encoder": []string{"transformers", "CLIPTextModel"}, "tokenizer": []string{"transformers", "CLIPTokenizer"},
		"unet": []string{"diffusers", "UNet2DConditionModel"}, "scheduler": []string{"diffusers", "DDIMScheduler"},
		"vae": []any{nil, nil}, "safety_checker": []any{nil, nil}, "feature_extractor": []any{nil, nil}, "requires_safety_checker": false,
		suggestedKey: TrainedSuggested}
	ib, _ := json.MarshalIndent(index, "", "  ")
	if err := atomicfile.Write(filepath.Join(tmp, "model_index.json"), ib); err != nil {
		return err
	}
	if err := writeModel(filepath.Join(tmp, "unet"), "diffusion_pytorch_model.safetensors", tr.EMA.Params(), tr.EMA.Config.Marshal()); err != nil {
		return err
	}
	tcfg := tr.TextEMA.Config
	tcfg.Architectures = []string{"CLIPTextModel"}
	tb, _ := json.MarshalIndent(tcfg, "", "  ")
	if err := writeModel(filepath.Join(tmp, "text_encoder"), "model.safetensors", tr.TextEMA.Params(), tb); err != nil {
		return err
	}
	if err := tr.Tokenizer.Save(filepath.Join(tmp, "tokenizer")); err != nil {
		return err
	}
	sb, err := json.MarshalIndent(tr.schedulerConfig(), "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Join(tmp, "scheduler"), 0o755); err != nil {
		return err
	}
	if err := atomicfile.Write(filepath.Join(tmp, "scheduler", "scheduler_config.json"), sb); err != nil {
		return err
	}
	st, err := tr.Opt.StateDict()
	if err != nil {
		return err
	}
	raw, err := nn.StateDict(tr.params())
	if err != nil {
		return err
	}
	for i := range raw {
		raw[i].Name = rawPrefix + raw[i].Name
	}
	st = append(append(st, raw...), safetensors.Tensor{Name: "losses", DType: safetensors.F32, Shape: []int{len(tr.Losses)}, F: tr.Losses})
	rngState, err := tr.pcg.MarshalBinary()
	if err != nil {
		return err
	}
	cfg, err := json.Marshal(tr.Config)
	if err != nil {
		return fmt.Errorf("checkpoint: training config: %w", err)
	}
	meta := map[string]string{"format": "godiffuse-text-train-state-1", "train_config": string(cfg), "step": strconv.Itoa(tr.Step),
		"rng": hex.EncodeToString(rngState)}
	return safetensors.Write(filepath.Join(tmp, ddpm.StateFile), st, meta)
}

// rawPrefix names the raw (non-EMA) weights in the training state.
const rawPrefix = "raw/"

// writeModel writes dir/config.json and dir/weights.
func writeModel(dir, weights string, ps []nn.Param, config []byte) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	sd, err := nn.StateDict(ps)
	if err != nil {
		return err
	}
	if err := safetensors.Write(filepath.Join(dir, weights), sd, map[string]string{"format": "pt"}); err != nil {
		return err
	}
	return atomicfile.Write(filepath.Join(dir, "config.json"), config)
}

// IsTrainedPipeline says whether dir (or what a crash left beside it) is a
// pipeline folder written by Trainer.Save.
func IsTrainedPipeline(dir string) bool {
	best, err := ddpm.FindCheckpointFolder(dir)
	if err != nil {
		return false
	}
	st, err := safetensors.Read(filepath.Join(best, ddpm.StateFile))
	if err != nil {
		return false
	}
	defer st.Close()
	return st.Metadata["format"] == "godiffuse-text-train-state-1"
}

// Resume continues a Trainer.Save folder exactly (steps is the new total)
// on the dataset it was trained on.
func Resume(dev tensor.Device, dir string, ds data.Captioned, ch ddpm.ResumeChanges) (*Trainer, error) {
	best, err := ddpm.FindCheckpointFolder(dir)
	if err != nil {
		return nil, err
	}
	statePath := filepath.Join(best, ddpm.StateFile)
	st, err := safetensors.Read(statePath)
	if err != nil {
		return nil, err
	}
	defer st.Close()
	if f := st.Metadata["format"]; f != "godiffuse-text-train-state-1" {
		return nil, fmt.Errorf("%s: format %q: not the state of a text-to-image training run", statePath, f)
	}
	tc, err := ddpm.StateTrainConfig(st)
	if err != nil {
		return nil, err
	}
	step, err := strconv.Atoi(st.Metadata["step"])
	if err != nil || step < 0 {
		return nil, fmt.Errorf("%s: metadata field step %q: want a whole number ≥ 0", statePath, st.Metadata["step"])
	}
	if tc, err = ch.Apply(tc, step); err != nil {
		return nil, fmt.Errorf("%s: %w", statePath, err)
	}
	uc, err := unet.LoadConditionConfig(filepath.Join(best, "unet", "config.json"))
	if err != nil {
		return nil, err
	}
	tb, err := os.ReadFile(filepath.Join(best, "text_encoder", "config.json"))
	if err != nil {
		return nil, err
	}
	tcfg, err := clip.ParseTextConfig(filepath.Join(best, "text_encoder", "config.json"), tb)
	if err != nil {
		return nil, err
	}
	tok, err := clip.LoadTokenizer(filepath.Join(best, "tokenizer"))
	if err != nil {
		return nil, err
	}
	tr, err := NewTrainer(dev, uc, tcfg, tok, tc, ds)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", best, err)
	}
	raw := func(k string) string { return strings.TrimPrefix(k, rawPrefix) }
	isState := func(k string) bool { return !strings.HasPrefix(k, rawPrefix) }
	if err := nn.LoadParams(tr.params(), st, nn.LoadOptions{Rename: raw, Ignore: isState}); err != nil {
		return nil, fmt.Errorf("%s: the raw weights: %w", statePath, err)
	}
	for _, part := range []struct {
		dir, file string
		ps        []nn.Param
	}{{"unet", "diffusion_pytorch_model.safetensors", tr.EMA.Params()}, {"text_encoder", "model.safetensors", tr.TextEMA.Params()}} {
		ws, err := safetensors.Read(filepath.Join(best, part.dir, part.file))
		if err != nil {
			return nil, err
		}
		err = nn.LoadParams(part.ps, ws, nn.LoadOptions{})
		ws.Close()
		if err != nil {
			return nil, err
		}
	}
	if tc.FreezeText {
		// A frozen encoder is not among the raw weights: it is the saved
		// one (pre-trained, or as initialized).
		if err := tensor.Catch(func() { ddpm.UpdateEMA(tr.Text.Params(), tr.TextEMA.Params(), 0) }); err != nil {
			return nil, err
		}
	}
	if err := tr.Opt.LoadStateDict(st); err != nil {
		return nil, fmt.Errorf("%s: %w", statePath, err)
	}
	if losses, _, err := st.Float32("losses"); err == nil {
		tr.Losses = losses
	}
	rs, err := hex.DecodeString(st.Metadata["rng"])
	if err == nil {
		err = tr.pcg.UnmarshalBinary(rs)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: metadata field rng: %v", statePath, err)
	}
	tr.Step = step
	return tr, nil
}
