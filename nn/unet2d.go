package nn

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"weak"

	"github.com/godiffuse/godiffuse/internal/atomicfile"
	"github.com/godiffuse/godiffuse/safetensors"
	"github.com/godiffuse/godiffuse/tensor"
)

// UNet2D is diffusers' UNet2DModel: built from its config.json, with
// parameters named by diffusers' state-dict keys.
type UNet2D struct {
	Config         UNet2DConfig
	Device         tensor.Device
	ConvIn         *Conv2d
	TimeEmbedding  *TimestepEmbedding
	ClassEmbedding *Embedding // nil without num_class_embeds
	DownBlocks     []*DownBlock2D
	MidBlock       *UNetMidBlock2D // nil when mid_block_type is null
	UpBlocks       []*UpBlock2D
	ConvNormOut    *GroupNorm
	ConvOut        *Conv2d
}

// NewUNet2D builds a U-Net with PyTorch's default initialisation drawn from seed.
func NewUNet2D(dev tensor.Device, cfg UNet2DConfig, seed uint64) (*UNet2D, error) {
	return newUNet2D(dev, cfg, rand.New(rand.NewPCG(seed, 0x5eed)))
}

// BuildUNet2D builds the module tree with zero parameters awaiting weights
// (on tensor.ShapesOnly: names and shapes only, e.g. to count parameters).
func BuildUNet2D(dev tensor.Device, cfg UNet2DConfig) (*UNet2D, error) {
	return newUNet2D(dev, cfg, nil)
}

// newUNet2D builds the module tree; with r nil every parameter is a zero
// tensor of its shape, to be bound to weights from a file.
func newUNet2D(dev tensor.Device, cfg UNet2DConfig, r *rand.Rand) (*UNet2D, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if !tensor.IsShapesOnlyDevice(dev) {
		// count the parameters on a device without memory before allocating any
		m, err := newUNet2D(tensor.ShapesOnly(), cfg, nil)
		if err != nil {
			return nil, err
		}
		if n := m.NumParams(); n > MaxParams {
			return nil, fmt.Errorf("the config describes %d parameters (%.1f GiB in float32), more than the %d this loader accepts", n, float64(n)*4/(1<<30), MaxParams)
		}
	}
	ch, n, L := cfg.BlockOutChannels, len(cfg.BlockOutChannels), cfg.LayersPerBlock
	g, eps := cfg.NormNumGroups, float32(cfg.NormEps)
	temb := 4 * ch[0]
	if cfg.TimeEmbeddingDim != nil {
		temb = *cfg.TimeEmbeddingDim
	}
	scaleShift := cfg.ResnetTimeScaleShift == "scale_shift"
	drop := float32(cfg.Dropout)
	headDim := func(c int) int {
		if cfg.AttentionHeadDim != nil {
			return *cfg.AttentionHeadDim
		}
		return c
	}
	m := &UNet2D{Config: cfg, Device: dev}
	m.ConvIn = NewConv2d(dev, r, cfg.InChannels, ch[0], 3, 1, tensor.PadAll(1))
	m.TimeEmbedding = &TimestepEmbedding{Linear1: NewLinear(dev, r, ch[0], temb, true), Linear2: NewLinear(dev, r, temb, temb, true)}
	if cfg.NumClassEmbeds != nil {
		m.ClassEmbedding = NewEmbedding(dev, r, *cfg.NumClassEmbeds, temb)
	}
	for i, t := range cfg.DownBlockTypes {
		in, out := ch[max(i-1, 0)], ch[i]
		b := &DownBlock2D{}
		for j := range L {
			cin := out
			if j == 0 {
				cin = in
			}
			b.Resnets = append(b.Resnets, newResnet(dev, r, cin, out, temb, g, eps, cfg.ActFn, 1, scaleShift, drop))
		}
		if blockType(t) == "AttnDownBlock2D" {
			for range L {
				b.Attentions = append(b.Attentions, newAttention(dev, r, out, headDim(out), g, eps, 1, drop))
			}
		}
		if i < n-1 {
			b.Downsampler = newDownsample(dev, r, out, cfg.DownsamplePadding)
		}
		m.DownBlocks = append(m.DownBlocks, b)
	}
	if cfg.MidBlockType != nil {
		c, s := ch[n-1], float32(cfg.MidBlockScaleFactor)
		mid := &UNetMidBlock2D{}
		mid.Resnets[0] = newResnet(dev, r, c, c, temb, g, eps, cfg.ActFn, s, scaleShift, drop)
		if cfg.AddAttention {
			ag := 0
			if cfg.AttnNormNumGroups != nil {
				ag = *cfg.AttnNormNumGroups
			} else if !scaleShift {
				ag = g
			}
			mid.Attention = newAttention(dev, r, c, headDim(c), ag, eps, s, drop)
		}
		mid.Resnets[1] = newResnet(dev, r, c, c, temb, g, eps, cfg.ActFn, s, scaleShift, drop)
		m.MidBlock = mid
	}
	for i, t := range cfg.UpBlockTypes {
		ins, out := UpResnetChannels(ch, i, L+1)
		b := &UpBlock2D{}
		for _, in := range ins {
			b.Resnets = append(b.Resnets, newResnet(dev, r, in, out, temb, g, eps, cfg.ActFn, 1, scaleShift, drop))
		}
		if blockType(t) == "AttnUpBlock2D" {
			for range L + 1 {
				b.Attentions = append(b.Attentions, newAttention(dev, r, out, headDim(out), g, eps, 1, drop))
			}
		}
		if i < n-1 {
			b.Upsampler = newUpsample(dev, r, out)
		}
		m.UpBlocks = append(m.UpBlocks, b)
	}
	m.ConvNormOut = NewGroupNorm(dev, g, ch[0], eps)
	m.ConvOut = NewConv2d(dev, r, ch[0], cfg.OutChannels, 3, 1, tensor.PadAll(1))
	return m, nil
}

// Params lists the parameters in diffusers' state-dict order.
func (m *UNet2D) Params() []Param {
	var ps ParamList
	m.ConvIn.Collect("conv_in.", &ps)
	m.TimeEmbedding.Collect("time_embedding.", &ps)
	if m.ClassEmbedding != nil {
		m.ClassEmbedding.Collect("class_embedding.", &ps)
	}
	for i, b := range m.DownBlocks {
		b.Collect("down_blocks."+itoa(i)+".", &ps)
	}
	for i, b := range m.UpBlocks {
		b.Collect("up_blocks."+itoa(i)+".", &ps)
	}
	if m.MidBlock != nil {
		m.MidBlock.Collect("mid_block.", &ps)
	}
	m.ConvNormOut.Collect("conv_norm_out.", &ps)
	m.ConvOut.Collect("conv_out.", &ps)
	return ps
}

// NumParams counts the scalar parameters.
func (m *UNet2D) NumParams() int { return CountParams(m.Params()) }

// ForwardOptions tunes one forward pass.
type ForwardOptions struct {
	Train bool   // dropout active (when the config's dropout > 0)
	Seed  uint64 // dropout seed
	// Trace, when not nil, receives the intermediate tensors "t_proj", "emb" and "mid".
	Trace map[string]*tensor.Tensor
}

// Forward runs the U-Net on x (B, in_channels, H, W) at the given timesteps
// (one per sample, or a single one for all) and, for a class-conditional
// model, class labels in [0, num_class_embeds). It returns (B, out_channels, H, W).
func (m *UNet2D) Forward(x *tensor.Tensor, timesteps []float32, labels []int64, opt *ForwardOptions) (out *tensor.Tensor, err error) {
	if opt == nil {
		opt = &ForwardOptions{}
	}
	cfg := m.Config
	if x.Rank() != 4 || x.Dim(1) != cfg.InChannels {
		return nil, fmt.Errorf("unet2d: input %v, want (B, %d, H, W)", x.Shape(), cfg.InChannels)
	}
	B := x.Dim(0)
	down := 1 << (len(cfg.BlockOutChannels) - 1)
	if x.Dim(2)%down != 0 || x.Dim(3)%down != 0 {
		return nil, fmt.Errorf("unet2d: input size %dx%d must be divisible by %d (one halving per down block)", x.Dim(2), x.Dim(3), down)
	}
	switch len(timesteps) {
	case B:
	case 1:
		ts := make([]float32, B)
		for i := range ts {
			ts[i] = timesteps[0]
		}
		timesteps = ts
	default:
		return nil, fmt.Errorf("unet2d: %d timesteps for a batch of %d (want 1 or %d)", len(timesteps), B, B)
	}
	if err := CheckClassLabels("unet2d", labels, B, cfg.NumClassEmbeds); err != nil {
		return nil, err
	}
	run := func() { out = m.forward(x, timesteps, labels, opt) }
	if opt.Train || opt.Trace != nil || Recording(x, m.ConvIn.Weight) {
		return out, tensor.Catch(run)
	}
	// A sampler calls the same forward at every step: the device may time
	// it and choose how many threads run it (tensor.Repeat).
	key := RepeatKey(m, x.Dim(0), x.Dim(2), x.Dim(3), 0)
	err = tensor.Catch(func() { tensor.Repeat(x.Device(), key, run) })
	return out, err
}

// repeatKey names a model's inference forward at one input shape (and
// context length, for text-conditioned models) for tensor.Repeat. The
// model is held weakly: the device keeps its keys, and a strong pointer
// would keep a dropped model's weights (gigabytes for Stable Diffusion)
// alive with it.
type repeatKey struct {
	model   any // a weak.Pointer
	b, h, w int
	ctx     int
}

// RepeatKey is the key of a model's inference forward passes on inputs of
// b×h×w (and ctx context tokens) for tensor.Repeat.
func RepeatKey[M any](model *M, b, h, w, ctx int) any {
	return repeatKey{model: weak.Make(model), b: b, h: h, w: w, ctx: ctx}
}

// Recording reports whether a forward pass on x with weights w records
// gradients (training): then it is not handed to tensor.Repeat, whose
// timings are of the forward alone.
func Recording(x, w *tensor.Tensor) bool { return x.RequiresGrad() || w.RequiresGrad() }

func (m *UNet2D) forward(x *tensor.Tensor, timesteps []float32, labels []int64, opt *ForwardOptions) *tensor.Tensor {
	cfg, dev := m.Config, m.Device
	c := &fwd{train: opt.Train, seed: opt.Seed, keep: opt.Trace != nil}
	B, C0 := x.Dim(0), cfg.BlockOutChannels[0]
	if cfg.CenterInputSample {
		x = tensor.Affine(x, 2, -1)
	}
	tp := TimestepProjection(timesteps, C0, cfg.FlipSinToCos, float32(cfg.FreqShift))
	tProj := tensor.FromFloat32(dev, tp, B, C0)
	emb := m.TimeEmbedding.Forward(tProj)
	if m.ClassEmbedding != nil {
		emb = tensor.AddInPlace(emb, m.ClassEmbedding.Forward(tensor.FromInt64(dev, labels, B))) // emb: linear_2's fresh output
	}
	h := m.ConvIn.Forward(x)
	skips := []*tensor.Tensor{h}
	for _, b := range m.DownBlocks {
		h, skips = b.forward(c, h, emb, skips)
	}
	if m.MidBlock != nil {
		h = m.MidBlock.forward(c, h, emb)
	}
	if opt.Trace != nil {
		opt.Trace["t_proj"], opt.Trace["emb"], opt.Trace["mid"] = tProj, emb, h
	}
	for _, b := range m.UpBlocks {
		h, skips = b.forward(c, h, emb, skips)
	}
	// h, the last block's output, is read by nothing else (unless traced):
	// in inference norm_out writes it in place.
	var n *tensor.Tensor
	if c.keep {
		n = m.ConvNormOut.ForwardAct(h, "silu")
	} else {
		n = m.ConvNormOut.ForwardActInPlace(h, "silu")
	}
	if n != h {
		c.release(h)
	}
	out := m.ConvOut.Forward(n)
	c.release(n)
	return out
}

// NoGrad turns off gradients for every parameter, so forward passes record
// nothing (sampling). It returns a function that restores them.
func (m *UNet2D) NoGrad() (restore func()) { return NoGrad(m.Params()) }

// ---------------------------------------------------------------------------
// Loading and saving diffusers checkpoints.
// ---------------------------------------------------------------------------

var legacyAttn = regexp.MustCompile(`^(.*\.attentions\.\d+)\.(query|key|value|proj_attn)\.(weight|bias)$`)

// ConvertLegacyKey maps pre-0.15 attention names (query, key, value,
// proj_attn) to to_q, to_k, to_v, to_out.0, as diffusers does on load.
func ConvertLegacyKey(k string) string {
	m := legacyAttn.FindStringSubmatch(k)
	if m == nil {
		return k
	}
	return m[1] + "." + map[string]string{"query": "to_q", "key": "to_k", "value": "to_v", "proj_attn": "to_out.0"}[m[2]] + "." + m[3]
}

// LoadWeights copies every parameter from st (strict: every model key must be
// present with the right shape, and no key may be left over). Legacy
// attention names are accepted; F32, F16, BF16 and F64 tensors are converted.
func (m *UNet2D) LoadWeights(st *safetensors.File) error {
	return LoadParams(m.Params(), st, LoadOptions{Rename: ConvertLegacyKey})
}

// Checkpoint file names inside a model folder, as diffusers uses them.
const (
	ConfigFile  = "config.json"
	WeightsFile = "diffusion_pytorch_model.safetensors"
)

// LoadUNet2D loads a diffusers model folder (config.json and
// diffusion_pytorch_model.safetensors) onto dev.
func LoadUNet2D(dev tensor.Device, dir string) (*UNet2D, error) {
	return LoadUNet2DFiles(dev, filepath.Join(dir, ConfigFile), filepath.Join(dir, WeightsFile))
}

// LoadUNet2DFiles loads a config and a safetensors weight file.
func LoadUNet2DFiles(dev tensor.Device, configPath, weightsPath string) (*UNet2D, error) {
	cfg, err := LoadUNet2DConfig(configPath)
	if err != nil {
		return nil, err
	}
	m, err := newUNet2D(tensor.ShapesOnly(), cfg, nil) // parameters get their buffers as they load
	if err != nil {
		return nil, fmt.Errorf("%s: %w", configPath, err)
	}
	m.Device = dev
	st, err := safetensors.Read(weightsPath)
	if err != nil {
		return nil, err
	}
	defer st.Close()
	if err := LoadParams(m.Params(), st, LoadOptions{Rename: ConvertLegacyKey, Device: dev}); err != nil {
		return nil, err
	}
	return m, nil
}

// StateDict downloads every parameter as float32 safetensors entries.
func (m *UNet2D) StateDict() ([]safetensors.Tensor, error) { return StateDict(m.Params()) }

// Save writes dir/config.json and dir/diffusion_pytorch_model.safetensors
// (float32), each atomically, so diffusers' from_pretrained can read them.
func (m *UNet2D) Save(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	sd, err := m.StateDict()
	if err != nil {
		return err
	}
	if err := safetensors.Write(filepath.Join(dir, WeightsFile), sd, map[string]string{"format": "pt"}); err != nil {
		return err
	}
	return atomicfile.Write(filepath.Join(dir, ConfigFile), m.Config.Marshal())
}

// CheckClassLabels validates a batch of B class labels for a U-Net with
// numClasses class embeddings (nil: not class-conditional); model names it
// in the error.
func CheckClassLabels(model string, labels []int64, B int, numClasses *int) error {
	if numClasses == nil {
		if labels != nil {
			return fmt.Errorf("%s: class labels given to a model without num_class_embeds", model)
		}
		return nil
	}
	if len(labels) != B {
		return fmt.Errorf("%s: the model is class-conditional (%d classes); want %d class labels, have %d", model, *numClasses, B, len(labels))
	}
	for i, l := range labels {
		if l < 0 || l >= int64(*numClasses) {
			return fmt.Errorf("%s: class label %d at %d outside [0, %d)", model, l, i, *numClasses)
		}
	}
	return nil
}
