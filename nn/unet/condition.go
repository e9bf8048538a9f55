// Package unet holds diffusers' UNet2DConditionModel, the text-conditioned
// U-Net of Stable Diffusion 1.x and 2.x, built from its config.json with
// diffusers' state-dict keys. (The unconditional and class-conditional
// UNet2DModel lives in package nn.)
package unet

import (
	"fmt"
	"math"
	"math/rand/v2"
	"path/filepath"

	"github.com/godiffuse/godiffuse/nn"
	"github.com/godiffuse/godiffuse/safetensors"
	"github.com/godiffuse/godiffuse/tensor"
)

// ---------------------------------------------------------------------------
// UNet2DConditionModel. Semantics point by point in
// shared/reference/sd/unet2d_condition.py; in short:
//
//	emb = linear_2(silu(linear_1(t_proj(t)))) (+ class_embedding(labels))
//	      (+ add_embedding(text states): addition_embed_type "text")
//	h = conv_in(x) (conv_in(cat(x, x and y coordinates)) with
//	    _godiffuse_coordinates); skips = [h]
//	down blocks: resnet (+ Transformer2D over the text states) per layer,
//	             each output pushed; a stride-2 conv except in the last
//	mid: resnet → Transformer2D → resnet
//	up blocks:   resnet(cat(h, skips.pop())) (+ Transformer2D) per layer,
//	             nearest ×2 (cut to the next skip's size) + conv except in the last
//	out = conv_out(silu(conv_norm_out(h)))
// ---------------------------------------------------------------------------

// Condition is a UNet2DConditionModel.
type Condition struct {
	Config         ConditionConfig
	Device         tensor.Device
	ConvIn         *nn.Conv2d
	TimeEmbedding  *nn.TimestepEmbedding
	ClassEmbedding *nn.Embedding      // nil without num_class_embeds
	AddEmbedding   *TextTimeEmbedding // addition_embed_type "text"; nil without
	DownBlocks     []*DownBlock
	Mid            *MidBlock // nil when mid_block_type is null
	UpBlocks       []*UpBlock
	ConvNormOut    *nn.GroupNorm
	ConvOut        *nn.Conv2d
}

// DownBlock is CrossAttnDownBlock2D (Attentions set) or DownBlock2D.
type DownBlock struct {
	Resnets     []*nn.ResnetBlock2D
	Attentions  []*Transformer2D
	Downsampler *nn.Conv2d
}

// UpBlock is CrossAttnUpBlock2D (Attentions set) or UpBlock2D.
type UpBlock struct {
	Resnets    []*nn.ResnetBlock2D
	Attentions []*Transformer2D
	Upsampler  *nn.Conv2d // the conv after nearest ×2
}

// MidBlock is UNetMidBlock2DCrossAttn (resnet, transformer, resnet) or
// UNetMidBlock2D as diffusers builds it here (one resnet).
type MidBlock struct {
	Resnets   []*nn.ResnetBlock2D
	Attention *Transformer2D
}

// NewCondition builds the model initialised from seed as PyTorch's default
// layer initialisation does (for training from scratch).
func NewCondition(dev tensor.Device, c ConditionConfig, seed uint64) (*Condition, error) {
	return newCondition(dev, c, rand.New(rand.NewPCG(seed, 0x5eed)))
}

// BuildCondition builds the module tree with zero parameters: shapes and
// names awaiting weights (no random draws; on a fresh device the untouched
// zeros cost no memory until written).
func BuildCondition(dev tensor.Device, c ConditionConfig) (*Condition, error) {
	return newCondition(dev, c, nil)
}

// newCondition builds the module tree; with r nil every parameter is a zero
// tensor of its shape awaiting weights from a file.
func newCondition(dev tensor.Device, c ConditionConfig, r *rand.Rand) (*Condition, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	ch, n := c.BlockOutChannels, len(c.BlockOutChannels)
	temb := 4 * ch[0]
	if c.TimeEmbeddingDim != nil {
		temb = *c.TimeEmbeddingDim
	}
	g, eps, drop := c.NormNumGroups, float32(c.NormEps), float32(c.Dropout)
	resnet := func(in, out int, scale float32) *nn.ResnetBlock2D {
		return nn.NewResnetBlock2D(dev, r, nn.ResnetConfig{In: in, Out: out, TimeEmbed: temb, Groups: g, Eps: eps,
			Act: "silu", OutputScale: scale, Dropout: drop})
	}
	transformer := func(c2 int, i, layers int, only bool) *Transformer2D {
		heads := c.AttentionHeadDim.At(i)
		return newTransformer2D(dev, r, transformerConfig{Channels: c2, Heads: heads, HeadDim: c2 / heads, Layers: layers,
			ContextDim: c.CrossAttentionDim.At(i), Groups: g, Linear: c.UseLinearProjection, OnlyCross: only,
			Coordinates: c.AttentionCoordinates})
	}
	kin, kout := c.ConvInKernel, c.ConvOutKernel
	m := &Condition{Config: c, Device: dev,
		ConvIn: nn.NewConv2d(dev, r, c.InChannels+c.coordinateChannels(), ch[0], kin, 1, tensor.PadAll((kin-1)/2)),
		TimeEmbedding: &nn.TimestepEmbedding{Linear1: nn.NewLinear(dev, r, ch[0], temb, true),
			Linear2: nn.NewLinear(dev, r, temb, temb, true)}}
	if c.NumClassEmbeds != nil {
		m.ClassEmbedding = nn.NewEmbedding(dev, r, *c.NumClassEmbeds, temb)
	}
	if c.AdditionEmbedType != nil {
		m.AddEmbedding = newTextTimeEmbedding(dev, r, c.CrossAttentionDim.At(0), temb, c.AdditionEmbedTypeNumHeads)
	}
	for i, t := range c.DownBlockTypes {
		in, out, L := ch[max(i-1, 0)], ch[i], c.LayersPerBlock.At(i)
		b := &DownBlock{}
		if blockType(t) == "CrossAttnDownBlock2D" {
			for range L {
				b.Attentions = append(b.Attentions, transformer(out, i, c.TransformerLayersPerBlock.At(i), c.OnlyCrossAttention.At(i)))
			}
		}
		for j := range L {
			cin := out
			if j == 0 {
				cin = in
			}
			b.Resnets = append(b.Resnets, resnet(cin, out, 1))
		}
		if i < n-1 {
			pad := tensor.PadAll(c.DownsamplePadding)
			if c.DownsamplePadding == 0 {
				pad = tensor.Pad4{0, 1, 0, 1}
			}
			b.Downsampler = nn.NewConv2d(dev, r, out, out, 3, 2, pad)
		}
		m.DownBlocks = append(m.DownBlocks, b)
	}
	if c.MidBlockType != nil {
		last, s := ch[n-1], float32(c.MidBlockScaleFactor)
		mid := &MidBlock{}
		if blockType(*c.MidBlockType) == "UNetMidBlock2DCrossAttn" {
			mid.Attention = transformer(last, n-1, c.TransformerLayersPerBlock.At(n-1), false)
			mid.Resnets = []*nn.ResnetBlock2D{resnet(last, last, s), resnet(last, last, s)}
		} else {
			mid.Resnets = []*nn.ResnetBlock2D{resnet(last, last, s)}
		}
		m.Mid = mid
	}
	for i, t := range c.UpBlockTypes {
		ri := n - 1 - i // the block's index in the down order
		L := c.LayersPerBlock.At(ri) + 1
		ins, out := nn.UpResnetChannels(ch, i, L)
		b := &UpBlock{}
		if blockType(t) == "CrossAttnUpBlock2D" {
			for range L {
				b.Attentions = append(b.Attentions, transformer(out, ri, c.TransformerLayersPerBlock.At(ri), c.OnlyCrossAttention.At(ri)))
			}
		}
		for _, in := range ins {
			b.Resnets = append(b.Resnets, resnet(in, out, 1))
		}
		if i < n-1 {
			b.Upsampler = nn.NewConv2d(dev, r, out, out, 3, 1, tensor.PadAll(1))
		}
		m.UpBlocks = append(m.UpBlocks, b)
	}
	m.ConvNormOut = nn.NewGroupNorm(dev, g, ch[0], eps)
	m.ConvOut = nn.NewConv2d(dev, r, ch[0], c.OutChannels, kout, 1, tensor.PadAll((kout-1)/2))
	return m, nil
}

// Params lists the parameters in diffusers' state-dict order.
func (m *Condition) Params() []nn.Param {
	var ps nn.ParamList
	m.ConvIn.Collect("conv_in.", &ps)
	m.TimeEmbedding.Collect("time_embedding.", &ps)
	if m.ClassEmbedding != nil {
		m.ClassEmbedding.Collect("class_embedding.", &ps)
	}
	if m.AddEmbedding != nil {
		m.AddEmbedding.Collect("add_embedding.", &ps)
	}
	for i, b := range m.DownBlocks {
		collectBlock(fmt.Sprintf("down_blocks.%d.", i), b.Attentions, b.Resnets, b.Downsampler, "downsamplers", &ps)
	}
	for i, b := range m.UpBlocks {
		collectBlock(fmt.Sprintf("up_blocks.%d.", i), b.Attentions, b.Resnets, b.Upsampler, "upsamplers", &ps)
	}
	if m.Mid != nil {
		if m.Mid.Attention != nil {
			m.Mid.Attention.Collect("mid_block.attentions.0.", &ps)
		}
		for j, r := range m.Mid.Resnets {
			r.Collect(fmt.Sprintf("mid_block.resnets.%d.", j), &ps)
		}
	}
	m.ConvNormOut.Collect("conv_norm_out.", &ps)
	m.ConvOut.Collect("conv_out.", &ps)
	return ps
}

// collectBlock lists a down or up block's parameters in diffusers' order:
// attentions, resnets, then the resampling conv.
func collectBlock(prefix string, attns []*Transformer2D, resnets []*nn.ResnetBlock2D, resample *nn.Conv2d, name string, ps *nn.ParamList) {
	for j, a := range attns {
		a.Collect(fmt.Sprintf("%sattentions.%d.", prefix, j), ps)
	}
	for j, r := range resnets {
		r.Collect(fmt.Sprintf("%sresnets.%d.", prefix, j), ps)
	}
	if resample != nil {
		resample.Collect(prefix+name+".0.conv.", ps)
	}
}

// NumParams counts the scalar parameters.
func (m *Condition) NumParams() int { return nn.CountParams(m.Params()) }

// NoGrad turns gradients off for inference; call the result to restore them.
func (m *Condition) NoGrad() (restore func()) { return nn.NoGrad(m.Params()) }

// Trace receives intermediate tensors by the fixture's names: "t_proj",
// "emb", "conv_in", "down/i", "mid", "up/i".
type Trace map[string]*tensor.Tensor

// Forward runs the model on x (B, in_channels, H, W) at the given timesteps
// (one per sample, or one for all) with the text states ctx
// (B, L, cross_attention_dim) and, for a class-conditional model, labels.
// trace may be nil.
func (m *Condition) Forward(x *tensor.Tensor, timesteps []float32, ctx *tensor.Tensor, labels []int64, trace Trace) (out *tensor.Tensor, err error) {
	c := m.Config
	if x.Rank() != 4 || x.Dim(1) != c.InChannels {
		return nil, fmt.Errorf("unet: input %v, want (B, %d, H, W)", x.Shape(), c.InChannels)
	}
	B := x.Dim(0)
	if x.Dim(2) < 1 || x.Dim(3) < 1 {
		return nil, fmt.Errorf("unet: empty input %v", x.Shape())
	}
	if ctx == nil || ctx.Rank() != 3 || ctx.Dim(0) != B {
		return nil, fmt.Errorf("unet: encoder_hidden_states must be (%d, L, D), have %v", B, shapeOf(ctx))
	}
	for i := range c.BlockOutChannels {
		if d := c.CrossAttentionDim.At(i); ctx.Dim(2) != d {
			return nil, fmt.Errorf("unet: encoder_hidden_states width %d, the model wants cross_attention_dim %d", ctx.Dim(2), d)
		}
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
		return nil, fmt.Errorf("unet: %d timesteps for a batch of %d (want 1 or %d)", len(timesteps), B, B)
	}
	for i, t := range timesteps {
		if math.IsNaN(float64(t)) || math.IsInf(float64(t), 0) {
			return nil, fmt.Errorf("unet: timestep %d is %g", i, t)
		}
	}
	if err := nn.CheckClassLabels("unet", labels, B, c.NumClassEmbeds); err != nil {
		return nil, err
	}
	run := func() { out = m.forward(x, timesteps, ctx, labels, trace) }
	if trace != nil || nn.Recording(x, m.ConvIn.Weight) || ctx.RequiresGrad() {
		return out, tensor.Catch(run)
	}
	key := nn.RepeatKey(m, B, x.Dim(2), x.Dim(3), ctx.Dim(1))
	err = tensor.Catch(func() { tensor.Repeat(x.Device(), key, run) })
	return out, err
}

// ObserveCrossAttention hands f, in every forward until restore is called,
// the probabilities of each transformer block's cross-attention (attn2) to
// the text, (B, heads, H·W, L), with the size H×W of the image it runs on:
// a graph of their own, so that a training loss on where the pixels look
// (pipeline's attention grounding) reaches the queries and the keys. They
// cost a second pass of the scores; f nil observes nothing.
func (m *Condition) ObserveCrossAttention(f func(probs *tensor.Tensor, H, W int)) (restore func()) {
	var all []*Transformer2D
	for _, b := range m.DownBlocks {
		all = append(all, b.Attentions...)
	}
	if m.Mid != nil && m.Mid.Attention != nil {
		all = append(all, m.Mid.Attention)
	}
	for _, b := range m.UpBlocks {
		all = append(all, b.Attentions...)
	}
	for _, t := range all {
		t.observe = f
	}
	return func() {
		for _, t := range all {
			t.observe = nil
		}
	}
}

func shapeOf(t *tensor.Tensor) any {
	if t == nil {
		return "nothing"
	}
	return t.Shape()
}

func (m *Condition) forward(x *tensor.Tensor, timesteps []float32, ctx *tensor.Tensor, labels []int64, trace Trace) *tensor.Tensor {
	c, dev := m.Config, m.Device
	B, C0 := x.Dim(0), c.BlockOutChannels[0]
	if c.CenterInputSample {
		x = tensor.Affine(x, 2, -1)
	}
	tProj := tensor.FromFloat32(dev, nn.TimestepProjection(timesteps, C0, c.FlipSinToCos, float32(c.FreqShift)), B, C0)
	emb := m.TimeEmbedding.Forward(tProj)
	if m.ClassEmbedding != nil {
		emb = tensor.Add(emb, m.ClassEmbedding.Forward(tensor.FromInt64(dev, labels, B)))
	}
	if m.AddEmbedding != nil {
		emb = tensor.Add(emb, m.AddEmbedding.Forward(ctx))
	}
	if c.Coordinates {
		x = tensor.Concat(1, x, coordinates(dev, B, x.Dim(2), x.Dim(3)))
	}
	h := m.ConvIn.Forward(x)
	put := func(name string, t *tensor.Tensor) {
		if trace != nil {
			trace[name] = t
		}
	}
	put("t_proj", tProj)
	put("emb", emb)
	put("conv_in", h)
	// In inference what has been read and is not a skip is released
	// (tensor.Release), unless a trace keeps the intermediates.
	release := func(ts ...*tensor.Tensor) {
		if trace == nil {
			tensor.Release(ts...)
		}
	}
	skips := []*tensor.Tensor{h}
	for i, b := range m.DownBlocks {
		for j, r := range b.Resnets {
			h = r.Forward(h, emb)
			if b.Attentions != nil {
				next := b.Attentions[j].Forward(h, ctx)
				release(h)
				h = next
			}
			skips = append(skips, h)
		}
		if b.Downsampler != nil {
			h = b.Downsampler.Forward(h)
			skips = append(skips, h)
		}
		put(fmt.Sprintf("down/%d", i), h)
	}
	if m.Mid != nil {
		r := m.Mid.Resnets[0].Forward(h, emb)
		h = r
		if m.Mid.Attention != nil {
			a := m.Mid.Attention.Forward(r, ctx)
			release(r)
			h = m.Mid.Resnets[1].Forward(a, emb)
			release(a)
		}
	}
	put("mid", h)
	for i, b := range m.UpBlocks {
		for j, r := range b.Resnets {
			skip := skips[len(skips)-1]
			skips = skips[:len(skips)-1]
			cat := tensor.Concat(1, h, skip)
			release(h, skip)
			h = r.Forward(cat, emb)
			release(cat)
			if b.Attentions != nil {
				next := b.Attentions[j].Forward(h, ctx)
				release(h)
				h = next
			}
		}
		if b.Upsampler != nil {
			// Nearest ×2, cut to the next skip's size: for a side that did not
			// halve evenly (the stride-2 convolutions round up) this is exactly
			// diffusers' interpolation to that size (⌊i·h/(2h−1)⌋ = ⌊i/2⌋).
			full := tensor.Upsample2x(h)
			release(h)
			up := full
			if next := skips[len(skips)-1]; next.Dim(2) != up.Dim(2) || next.Dim(3) != up.Dim(3) {
				up = up.Narrow(2, 0, next.Dim(2)).Narrow(3, 0, next.Dim(3))
			}
			h = b.Upsampler.Forward(up)
			release(full)
		}
		put(fmt.Sprintf("up/%d", i), h)
	}
	n := m.ConvNormOut.ForwardAct(h, "silu")
	release(h)
	out := m.ConvOut.Forward(n)
	release(n)
	return out
}

// Weights file names inside a diffusers model folder.
const (
	ConfigFile  = "config.json"
	WeightsBase = "diffusion_pytorch_model"
)

// LoadCondition loads a diffusers unet/ folder (config.json and
// diffusion_pytorch_model[.fp16].safetensors) onto dev, its weights kept as
// storage says.
func LoadCondition(dev tensor.Device, dir string, storage nn.Storage) (*Condition, error) {
	cfg, err := LoadConditionConfig(filepath.Join(dir, ConfigFile))
	if err != nil {
		return nil, err
	}
	weights, err := nn.FindWeights(dir, WeightsBase)
	if err != nil {
		return nil, fmt.Errorf("unet: %w", err)
	}
	st, err := safetensors.Read(weights)
	if err != nil {
		return nil, err
	}
	defer st.Close()
	m, err := newCondition(tensor.ShapesOnly(), cfg, nil) // parameters get their buffers as they load
	if err != nil {
		return nil, fmt.Errorf("%s: %w", dir, err)
	}
	m.Device = dev
	if err := nn.LoadParams(m.Params(), st, nn.LoadOptions{Rename: nn.ConvertLegacyKey, Storage: storage, Device: dev}); err != nil {
		return nil, err
	}
	return m, nil
}

// coordinateChannels is the number of channels conv_in takes beyond the
// sample's.
func (c ConditionConfig) coordinateChannels() int {
	if c.Coordinates {
		return 2
	}
	return 0
}

// coordinate is the place of pixel i of n along a side, evenly from −1 at
// the first pixel's centre to 1 at the last (0 for a side of one): conv_in's
// coordinates and the transformers' place features both read it.
func coordinate(i, n int) float64 {
	if n == 1 {
		return 0
	}
	return 2*float64(i)/float64(n-1) - 1
}

// coordinates is (B, 2, H, W): every pixel's x, then its y (coordinate).
func coordinates(dev tensor.Device, B, H, W int) *tensor.Tensor {
	one := make([]float32, 2*H*W)
	for y := range H {
		for x := range W {
			one[y*W+x] = float32(coordinate(x, W))
			one[H*W+y*W+x] = float32(coordinate(y, H))
		}
	}
	all := make([]float32, 0, B*len(one))
	for range B {
		all = append(all, one...)
	}
	return tensor.FromFloat32(dev, all, B, 2, H, W)
}
