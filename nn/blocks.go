package nn

import (
	"math"
	"math/rand/v2"

	"github.com/godiffuse/godiffuse/tensor"
)

// ---------------------------------------------------------------------------
// The U-Net's building blocks, as diffusers defines them. The numbered
// semantics refer to shared/reference/unet2d.py's docstring.
// ---------------------------------------------------------------------------

// fwd carries per-call state through a forward pass: whether dropout is on,
// a counter that gives every dropout site its own seed, and whether the
// caller keeps intermediates (a trace), which then are not released.
type fwd struct {
	train bool
	seed  uint64
	n     uint64
	keep  bool
	// actEmb is act(emb) of the last embAct call, which every resnet of a
	// U-Net asks for with the same emb (inference only: see embAct).
	actEmb    *tensor.Tensor
	actEmbFn  string
	actEmbSrc *tensor.Tensor
}

// embAct returns act(emb), the input of a resnet's time-embedding
// projection: once per forward and activation instead of once per resnet
// when nothing records gradients (recorded, each resnet keeps its own, as
// the reference does, so that the gradients sum in the same order).
func (c *fwd) embAct(act string, emb *tensor.Tensor) *tensor.Tensor {
	if emb.RequiresGrad() || c.keep {
		return tensor.Activation(act, emb)
	}
	if c.actEmb == nil || c.actEmbSrc != emb || c.actEmbFn != act {
		c.actEmb, c.actEmbSrc, c.actEmbFn = tensor.Activation(act, emb), emb, act
	}
	return c.actEmb
}

// release hands intermediates this forward made and no longer reads back to
// the device (tensor.Release: a no-op for anything recorded for backward).
func (c *fwd) release(ts ...*tensor.Tensor) {
	if !c.keep {
		tensor.Release(ts...)
	}
}

func (c *fwd) dropout(x *tensor.Tensor, p float32) *tensor.Tensor {
	if !c.train || p == 0 {
		return x
	}
	c.n++
	return tensor.Dropout(x, p, c.seed^(c.n*0xD1B54A32D192ED03))
}

// TimestepProjection is diffusers' get_timestep_embedding (semantics 1),
// computed in float32 as diffusers does:
//
//	freq_i = exp(-ln(10000)·i / (half - shift)),  arg = t·freq,  [sin arg, cos arg]
//
// ([cos, sin] when flip; an odd dim gets a trailing zero column). The result
// is (len(t), dim), row-major.
func TimestepProjection(t []float32, dim int, flip bool, shift float32) []float32 {
	half := dim / 2
	freq := make([]float32, half)
	lnMax := float32(-math.Log(10000))
	for i := range freq {
		e := lnMax * float32(i)
		e /= float32(half) - shift
		freq[i] = float32(math.Exp(float64(e)))
	}
	out := make([]float32, len(t)*dim)
	for b, tv := range t {
		row := out[b*dim : (b+1)*dim]
		for i, f := range freq {
			arg := tv * f
			s, c := float32(math.Sin(float64(arg))), float32(math.Cos(float64(arg)))
			if flip {
				s, c = c, s
			}
			row[i], row[half+i] = s, c
		}
	}
	return out
}

// TimestepEmbedding is linear_2(SiLU(linear_1(t_proj))) (semantics 2).
type TimestepEmbedding struct {
	Linear1, Linear2 *Linear
}

// Forward maps (B, in) to (B, dim).
func (e *TimestepEmbedding) Forward(x *tensor.Tensor) *tensor.Tensor {
	return e.Linear2.Forward(tensor.ActivationInPlace("silu", e.Linear1.Forward(x))) // linear_1's fresh output
}

func (e *TimestepEmbedding) Collect(prefix string, ps *ParamList) {
	e.Linear1.Collect(prefix+"linear_1.", ps)
	e.Linear2.Collect(prefix+"linear_2.", ps)
}

// ResnetBlock2D (semantics 3):
//
//	h = conv1(act(norm1(x)));  h = norm2(h + proj(act(emb)))   or, for scale_shift,
//	h = norm2(h)·(1 + scale) + shift;  h = conv2(dropout(act(h)));
//	out = (shortcut(x) + h) / OutputScale
type ResnetBlock2D struct {
	Norm1, Norm2      *GroupNorm
	Conv1, Conv2      *Conv2d
	TimeEmbProj       *Linear // nil without time embedding
	ConvShortcut      *Conv2d // nil when in == out channels
	Act               string
	OutputScale       float32
	ScaleShift        bool
	DropoutP          float32
	InChans, OutChans int
}

// ResnetConfig sizes a ResnetBlock2D.
type ResnetConfig struct {
	In, Out     int
	TimeEmbed   int // width of the time embedding; 0: no time_emb_proj (the VAE's resnets)
	Groups      int
	Eps         float32
	Act         string  // silu, gelu, …
	OutputScale float32 // output_scale_factor (0 means 1)
	ScaleShift  bool    // resnet_time_scale_shift "scale_shift"
	Dropout     float32
}

// NewResnetBlock2D builds a resnet block initialised as PyTorch does from r
// (with r nil, every parameter is a zero tensor awaiting loaded weights).
func NewResnetBlock2D(dev tensor.Device, r *rand.Rand, c ResnetConfig) *ResnetBlock2D {
	if c.OutputScale == 0 {
		c.OutputScale = 1
	}
	b := &ResnetBlock2D{
		Norm1: NewGroupNorm(dev, c.Groups, c.In, c.Eps), Conv1: NewConv2d(dev, r, c.In, c.Out, 3, 1, tensor.PadAll(1)),
		Norm2: NewGroupNorm(dev, c.Groups, c.Out, c.Eps), Conv2: NewConv2d(dev, r, c.Out, c.Out, 3, 1, tensor.PadAll(1)),
		Act: c.Act, OutputScale: c.OutputScale, ScaleShift: c.ScaleShift, DropoutP: c.Dropout, InChans: c.In, OutChans: c.Out,
	}
	if c.TimeEmbed > 0 {
		proj := c.Out
		if c.ScaleShift {
			proj = 2 * c.Out
		}
		b.TimeEmbProj = NewLinear(dev, r, c.TimeEmbed, proj, true)
	}
	if c.In != c.Out {
		b.ConvShortcut = NewConv2d(dev, r, c.In, c.Out, 1, 1, tensor.PadAll(0))
	}
	return b
}

func newResnet(dev tensor.Device, r *rand.Rand, in, out, temb, groups int, eps float32, act string,
	scale float32, scaleShift bool, dropout float32) *ResnetBlock2D {
	return NewResnetBlock2D(dev, r, ResnetConfig{In: in, Out: out, TimeEmbed: temb, Groups: groups, Eps: eps, Act: act,
		OutputScale: scale, ScaleShift: scaleShift, Dropout: dropout})
}

// Forward runs the block without dropout; emb (B, TimeEmbed) is nil for a
// block without time embedding.
func (b *ResnetBlock2D) Forward(x, emb *tensor.Tensor) *tensor.Tensor {
	return b.forward(&fwd{}, x, emb)
}

func (b *ResnetBlock2D) forward(c *fwd, x, emb *tensor.Tensor) *tensor.Tensor {
	// In inference every intermediate below is this block's own and read
	// once: each is released after the layer that reads it (tensor.Release
	// leaves anything recorded for backward alone).
	n := b.Norm1.ForwardAct(x, b.Act)
	var e *tensor.Tensor // the time embedding's projection, (B, channels or twice that)
	if b.TimeEmbProj != nil {
		e = b.TimeEmbProj.Forward(c.embAct(b.Act, emb))
	}
	// For one image without gradients, conv1's bias takes the projection:
	// h + e is then no pass of its own over h (nor a read of what the other
	// core wrote). Otherwise (and always while training, so that the sums
	// keep the reference's order) it is added to conv1's output.
	addE := e != nil && !b.ScaleShift
	var h *tensor.Tensor
	if addE && e.Dim(0) == 1 && b.Conv1.Bias != nil && !e.RequiresGrad() && !b.Conv1.Bias.RequiresGrad() {
		bias := tensor.Add(b.Conv1.Bias, e.Reshape(e.Dim(1)))
		h = tensor.Conv2D(n, b.Conv1.Weight, bias, b.Conv1.Stride, b.Conv1.Pad)
		c.release(bias)
		addE = false
	} else {
		h = b.Conv1.Forward(n)
	}
	c.release(n)
	// h is conv1's fresh output, read by nothing but norm2: in inference the
	// norm (and the time embedding before it) writes it in place.
	switch {
	case b.ScaleShift:
		e = e.Reshape(e.Dim(0), e.Dim(1), 1, 1)
		parts := tensor.Split(e, 1, b.OutChans, b.OutChans)
		norm := b.Norm2.Forward(h)
		n = tensor.ActivationInPlace(b.Act, tensor.Add(tensor.Mul(norm, tensor.AddScalar(parts[0], 1)), parts[1]))
		c.release(norm)
	case addE:
		h = tensor.AddInPlace(h, e.Reshape(e.Dim(0), e.Dim(1), 1, 1))
		n = b.Norm2.ForwardActInPlace(h, b.Act)
	default:
		n = b.Norm2.ForwardActInPlace(h, b.Act)
	}
	if e != nil && !b.ScaleShift {
		c.release(e)
	}
	if n != h {
		c.release(h)
	}
	h = b.Conv2.Forward(c.dropout(n, b.DropoutP))
	c.release(n)
	skip := x
	if b.ConvShortcut != nil {
		skip = b.ConvShortcut.Forward(x)
	}
	out := tensor.AddInPlace(h, skip) // h: conv2's fresh output
	if skip != x {
		c.release(skip)
	}
	if b.OutputScale != 1 {
		scaled := tensor.Scale(out, 1/b.OutputScale)
		c.release(out) // conv2's array: this block's own
		out = scaled
	}
	return out
}

func (b *ResnetBlock2D) Collect(prefix string, ps *ParamList) {
	b.Norm1.Collect(prefix+"norm1.", ps)
	b.Conv1.Collect(prefix+"conv1.", ps)
	if b.TimeEmbProj != nil {
		b.TimeEmbProj.Collect(prefix+"time_emb_proj.", ps)
	}
	b.Norm2.Collect(prefix+"norm2.", ps)
	b.Conv2.Collect(prefix+"conv2.", ps)
	if b.ConvShortcut != nil {
		b.ConvShortcut.Collect(prefix+"conv_shortcut.", ps)
	}
}

// Attention is diffusers' spatial self-attention block (semantics 5):
//
//	out = (to_out(MHA(to_q(h), to_k(h), to_v(h))) + x) / Rescale,   h = group_norm(x), its pixels the tokens
type Attention struct {
	GroupNorm            *GroupNorm // nil in a scale_shift mid block without attn_norm_num_groups
	ToQ, ToK, ToV, ToOut *Linear
	Heads, HeadDim       int
	Rescale              float32
	DropoutP             float32
}

// NewSpatialAttention builds diffusers' spatial self-attention over c
// channels in heads of headDim, with a GroupNorm of groups groups (none when
// groups is 0), as the UNet2D and the VAE's mid block use it.
func NewSpatialAttention(dev tensor.Device, r *rand.Rand, c, headDim, groups int, eps float32) *Attention {
	return newAttention(dev, r, c, headDim, groups, eps, 1, 0)
}

func newAttention(dev tensor.Device, r *rand.Rand, c, headDim, groups int, eps, rescale, dropout float32) *Attention {
	heads := c / headDim
	inner := heads * headDim
	a := &Attention{
		ToQ: NewLinear(dev, r, c, inner, true), ToK: NewLinear(dev, r, c, inner, true), ToV: NewLinear(dev, r, c, inner, true),
		ToOut: NewLinear(dev, r, inner, c, true), Heads: heads, HeadDim: headDim, Rescale: rescale, DropoutP: dropout,
	}
	if groups > 0 {
		a.GroupNorm = NewGroupNorm(dev, groups, c, eps)
	}
	return a
}

// Forward runs the block without dropout on x (B, C, H, W).
func (a *Attention) Forward(x *tensor.Tensor) *tensor.Tensor { return a.forward(&fwd{}, x) }

func (a *Attention) forward(c *fwd, x *tensor.Tensor) *tensor.Tensor {
	h := x
	if a.GroupNorm != nil {
		h = a.GroupNorm.Forward(x)
	}
	// The image's pixels are its tokens, channel-major: the projections are
	// 1×1 convolutions of it and the attention runs on (B, channels, H, W),
	// so that nothing is transposed or reshaped on the way in or out. In
	// inference the intermediates are released once read (Release).
	q, k, v := pointwise(a.ToQ, h), pointwise(a.ToK, h), pointwise(a.ToV, h)
	if h != x {
		c.release(h)
	}
	o := tensor.AttentionChannels(q, k, v, a.Heads)
	c.release(q, k, v)
	p := pointwise(a.ToOut, o)
	c.release(o)
	out := tensor.AddInPlace(c.dropout(p, a.DropoutP), x)
	if a.Rescale != 1 {
		scaled := tensor.Scale(out, 1/a.Rescale)
		c.release(out) // p's array: this block's own
		out = scaled
	}
	return out
}

// pointwise applies the linear layer l to every pixel of the image x
// (B, in, H, W): a 1×1 convolution with l's weights.
func pointwise(l *Linear, x *tensor.Tensor) *tensor.Tensor {
	return tensor.Conv2D(x, l.conv1x1Weight(), l.Bias, 1, tensor.PadAll(0))
}

func (a *Attention) Collect(prefix string, ps *ParamList) {
	if a.GroupNorm != nil {
		a.GroupNorm.Collect(prefix+"group_norm.", ps)
	}
	a.ToQ.Collect(prefix+"to_q.", ps)
	a.ToK.Collect(prefix+"to_k.", ps)
	a.ToV.Collect(prefix+"to_v.", ps)
	a.ToOut.Collect(prefix+"to_out.0.", ps)
}

// Downsample2D is a stride-2 3×3 convolution; padding 0 means diffusers'
// asymmetric pad of one column right and one row bottom (semantics 6).
type Downsample2D struct{ Conv *Conv2d }

func newDownsample(dev tensor.Device, r *rand.Rand, c, padding int) *Downsample2D {
	pad := tensor.PadAll(padding)
	if padding == 0 {
		pad = tensor.Pad4{0, 1, 0, 1}
	}
	return &Downsample2D{Conv: NewConv2d(dev, r, c, c, 3, 2, pad)}
}

// Upsample2D is nearest ×2 then a 3×3 convolution (semantics 7).
type Upsample2D struct{ Conv *Conv2d }

func newUpsample(dev tensor.Device, r *rand.Rand, c int) *Upsample2D {
	return &Upsample2D{Conv: NewConv2d(dev, r, c, c, 3, 1, tensor.PadAll(1))}
}

// DownBlock2D / AttnDownBlock2D (Attentions is nil for the plain block).
type DownBlock2D struct {
	Resnets     []*ResnetBlock2D
	Attentions  []*Attention
	Downsampler *Downsample2D
}

func (b *DownBlock2D) forward(c *fwd, h, emb *tensor.Tensor, skips []*tensor.Tensor) (*tensor.Tensor, []*tensor.Tensor) {
	for i, r := range b.Resnets {
		h = r.forward(c, h, emb)
		if b.Attentions != nil {
			a := b.Attentions[i].forward(c, h)
			c.release(h) // the resnet's output, read only by the attention
			h = a
		}
		skips = append(skips, h)
	}
	if b.Downsampler != nil {
		h = b.Downsampler.Conv.Forward(h)
		skips = append(skips, h)
	}
	return h, skips
}

func (b *DownBlock2D) Collect(prefix string, ps *ParamList) {
	for i, a := range b.Attentions {
		a.Collect(prefix+"attentions."+itoa(i)+".", ps)
	}
	for i, r := range b.Resnets {
		r.Collect(prefix+"resnets."+itoa(i)+".", ps)
	}
	if b.Downsampler != nil {
		b.Downsampler.Conv.Collect(prefix+"downsamplers.0.conv.", ps)
	}
}

// UpBlock2D / AttnUpBlock2D: each resnet takes cat([h, last skip]) (semantics 10).
type UpBlock2D struct {
	Resnets    []*ResnetBlock2D
	Attentions []*Attention
	Upsampler  *Upsample2D
}

func (b *UpBlock2D) forward(c *fwd, h, emb *tensor.Tensor, skips []*tensor.Tensor) (*tensor.Tensor, []*tensor.Tensor) {
	for i, r := range b.Resnets {
		skip := skips[len(skips)-1]
		skips = skips[:len(skips)-1]
		cat := tensor.Concat(1, h, skip)
		c.release(h, skip) // both made in this forward and read only here
		h = r.forward(c, cat, emb)
		c.release(cat)
		if b.Attentions != nil {
			a := b.Attentions[i].forward(c, h)
			c.release(h)
			h = a
		}
	}
	if b.Upsampler != nil {
		up := tensor.Upsample2x(h)
		c.release(h)
		h = b.Upsampler.Conv.Forward(up)
		c.release(up)
	}
	return h, skips
}

func (b *UpBlock2D) Collect(prefix string, ps *ParamList) {
	for i, a := range b.Attentions {
		a.Collect(prefix+"attentions."+itoa(i)+".", ps)
	}
	for i, r := range b.Resnets {
		r.Collect(prefix+"resnets."+itoa(i)+".", ps)
	}
	if b.Upsampler != nil {
		b.Upsampler.Conv.Collect(prefix+"upsamplers.0.conv.", ps)
	}
}

// UNetMidBlock2D is resnet → attention (optional) → resnet (semantics 9).
type UNetMidBlock2D struct {
	Resnets   [2]*ResnetBlock2D
	Attention *Attention // nil when add_attention is false
}

func (b *UNetMidBlock2D) forward(c *fwd, h, emb *tensor.Tensor) *tensor.Tensor {
	h = b.Resnets[0].forward(c, h, emb) // its input is a skip too: kept
	if b.Attention != nil {
		a := b.Attention.forward(c, h)
		c.release(h)
		h = a
	}
	out := b.Resnets[1].forward(c, h, emb)
	c.release(h)
	return out
}

func (b *UNetMidBlock2D) Collect(prefix string, ps *ParamList) {
	if b.Attention != nil {
		b.Attention.Collect(prefix+"attentions.0.", ps)
	}
	b.Resnets[0].Collect(prefix+"resnets.0.", ps)
	b.Resnets[1].Collect(prefix+"resnets.1.", ps)
}

func itoa(i int) string {
	if i < 10 {
		return string(rune('0' + i))
	}
	return itoa(i/10) + string(rune('0'+i%10))
}

// UpResnetChannels returns the input channels of the layers ResNet blocks
// of up block i (counted from the bottom) of a U-Net whose down blocks have
// blockOut channels, as diffusers builds them: each block takes the
// previous output concatenated with one skip from the down path, the first
// after the lower block's output, the last with the skip of the next block
// up. Every one of them outputs blockOut's channel count of that level.
func UpResnetChannels(blockOut []int, i, layers int) (in []int, out int) {
	n := len(blockOut)
	level := n - 1 - i // the block's index in the down order
	out = blockOut[level]
	prev, skipIn := blockOut[min(level+1, n-1)], blockOut[max(level-1, 0)]
	for j := range layers {
		resIn, skip := out, out
		if j == 0 {
			resIn = prev
		}
		if j == layers-1 {
			skip = skipIn
		}
		in = append(in, resIn+skip)
	}
	return in, out
}
