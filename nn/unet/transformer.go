package unet

import (
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/godiffuse/godiffuse/nn"
	"github.com/godiffuse/godiffuse/tensor"
)

// ---------------------------------------------------------------------------
// Transformer2DModel and BasicTransformerBlock: the U-Net's spatial
// transformer, with self-attention over the H·W positions, cross-attention
// to the text states and a GEGLU feed-forward.
//
//	h = GroupNorm(x) (eps 1e-6); proj_in (1×1 conv, or Linear after the
//	    token reshape with use_linear_projection); tokens (B, H·W, inner)
//	    (+ pos_proj(place features) with _godiffuse_attention_coordinates)
//	each block: h += attn1(norm1(h)); h += attn2(norm2(h), ctx); h += ff(norm3(h))
//	proj_out back to (B, C, H, W); out = h + x
// ---------------------------------------------------------------------------

type transformerConfig struct {
	Channels, Heads, HeadDim, Layers, ContextDim, Groups int
	Linear, OnlyCross, Coordinates                       bool
}

// Transformer2D is diffusers' Transformer2DModel as SD uses it.
type Transformer2D struct {
	Norm          *nn.GroupNorm
	ProjInConv    *nn.Conv2d // set unless use_linear_projection
	ProjInLinear  *nn.Linear // set with use_linear_projection
	PosProj       *nn.Linear // place features → inner, with _godiffuse_attention_coordinates
	Blocks        []*TransformerBlock
	ProjOutConv   *nn.Conv2d
	ProjOutLinear *nn.Linear

	// observe, while set (Condition.ObserveCrossAttention), is handed each
	// block's cross-attention probabilities and the image's size.
	observe func(probs *tensor.Tensor, H, W int)
}

// TransformerBlock is BasicTransformerBlock.
type TransformerBlock struct {
	Norm1, Norm2, Norm3 *nn.LayerNorm
	Attn1, Attn2        *CrossAttention
	FFProj, FFOut       *nn.Linear // ff.net.0.proj (D → 8D, GEGLU) and ff.net.2 (4D → D)
	OnlyCross           bool       // attn1 attends to the context too
}

// CrossAttention is diffusers' Attention with q/k/v without bias: queries
// from the tokens, keys and values from the context (or the tokens).
type CrossAttention struct {
	ToQ, ToK, ToV, ToOut *nn.Linear
	Heads                int
}

func newTransformer2D(dev tensor.Device, r *rand.Rand, c transformerConfig) *Transformer2D {
	inner := c.Heads * c.HeadDim
	t := &Transformer2D{Norm: nn.NewGroupNorm(dev, c.Groups, c.Channels, 1e-6)}
	if c.Linear {
		t.ProjInLinear = nn.NewLinear(dev, r, c.Channels, inner, true)
	} else {
		t.ProjInConv = nn.NewConv2d(dev, r, c.Channels, inner, 1, 1, tensor.PadAll(0))
	}
	if c.Coordinates {
		t.PosProj = nn.NewLinear(dev, r, placeFeatures, inner, false)
	}
	for range c.Layers {
		selfCtx := inner
		if c.OnlyCross {
			selfCtx = c.ContextDim
		}
		t.Blocks = append(t.Blocks, &TransformerBlock{
			Norm1: nn.NewLayerNorm(dev, inner, 1e-5), Attn1: newCrossAttention(dev, r, inner, selfCtx, c.Heads, c.HeadDim),
			Norm2: nn.NewLayerNorm(dev, inner, 1e-5), Attn2: newCrossAttention(dev, r, inner, c.ContextDim, c.Heads, c.HeadDim),
			Norm3:  nn.NewLayerNorm(dev, inner, 1e-5),
			FFProj: nn.NewLinear(dev, r, inner, 8*inner, true), FFOut: nn.NewLinear(dev, r, 4*inner, inner, true),
			OnlyCross: c.OnlyCross,
		})
	}
	if c.Linear {
		t.ProjOutLinear = nn.NewLinear(dev, r, inner, c.Channels, true)
	} else {
		t.ProjOutConv = nn.NewConv2d(dev, r, inner, c.Channels, 1, 1, tensor.PadAll(0))
	}
	return t
}

func newCrossAttention(dev tensor.Device, r *rand.Rand, dim, ctxDim, heads, headDim int) *CrossAttention {
	inner := heads * headDim
	return &CrossAttention{ToQ: nn.NewLinear(dev, r, dim, inner, false), ToK: nn.NewLinear(dev, r, ctxDim, inner, false),
		ToV: nn.NewLinear(dev, r, ctxDim, inner, false), ToOut: nn.NewLinear(dev, r, inner, dim, true), Heads: heads}
}

// Forward runs the transformer on x (B, C, H, W) with context (B, L, D_ctx).
func (t *Transformer2D) Forward(x, ctx *tensor.Tensor) *tensor.Tensor {
	// In inference every intermediate below is this block's own and is
	// released once read (tensor.Release: a no-op in training).
	B, H, W := x.Dim(0), x.Dim(2), x.Dim(3)
	n := t.Norm.Forward(x)
	toTokens := func(h *tensor.Tensor) *tensor.Tensor { // (B, C', H, W) → (B, H·W, C'), a view
		return h.Reshape(B, h.Dim(1), H*W).Transpose(1, 2)
	}
	var h *tensor.Tensor
	if t.ProjInConv != nil {
		h = toTokens(t.ProjInConv.Forward(n))
	} else {
		h = t.ProjInLinear.Forward(toTokens(n))
	}
	tensor.Release(n)
	if t.PosProj != nil {
		pos := t.PosProj.Forward(places(x.Device(), H, W))
		placed := tensor.Add(h, pos)
		tensor.Release(h, pos)
		h = placed
	}
	var observe func(*tensor.Tensor)
	if t.observe != nil {
		observe = func(probs *tensor.Tensor) { t.observe(probs, H, W) }
	}
	for _, b := range t.Blocks {
		next := b.forward(h, ctx, observe)
		tensor.Release(h) // the whole of a buffer, whether h is tokens or a view of them
		h = next
	}
	fromTokens := func(h *tensor.Tensor) *tensor.Tensor { // (B, H·W, C') → (B, C', H, W), a copy
		return h.Transpose(1, 2).Reshape(B, h.Dim(2), H, W)
	}
	var out *tensor.Tensor
	if t.ProjOutLinear != nil {
		p := t.ProjOutLinear.Forward(h)
		out = fromTokens(p)
		if !out.Aliases(p) { // a view when the tokens were already dense (one pixel)
			tensor.Release(p)
		}
	} else {
		img := fromTokens(h)
		out = t.ProjOutConv.Forward(img)
		tensor.Release(img)
	}
	tensor.Release(h)
	return tensor.AddInPlace(out, x) // out: a fresh projection (or copy)
}

// placeFeatures is the number of features of a token's place: x and y, and
// the sine and cosine of π·x, π·y, 2π·x and 2π·y.
const placeFeatures = 10

// places is (1, H·W, placeFeatures): the place features of every pixel in
// row-major order, x and y as conv_in's coordinates (coordinate).
func places(dev tensor.Device, H, W int) *tensor.Tensor {
	f := make([]float32, 0, H*W*placeFeatures)
	for y := range H {
		for x := range W {
			px, py := coordinate(x, W), coordinate(y, H)
			f = append(f, float32(px), float32(py))
			for _, k := range []float64{math.Pi, 2 * math.Pi} {
				f = append(f, float32(math.Sin(k*px)), float32(math.Cos(k*px)), float32(math.Sin(k*py)), float32(math.Cos(k*py)))
			}
		}
	}
	return tensor.FromFloat32(dev, f, 1, H*W, placeFeatures)
}

// Forward runs the block on tokens h (B, L, D).
func (b *TransformerBlock) Forward(h, ctx *tensor.Tensor) *tensor.Tensor {
	return b.forward(h, ctx, nil)
}

// forward is Forward, handing observe (when not nil) the cross-attention's
// probabilities.
func (b *TransformerBlock) forward(h, ctx *tensor.Tensor, observe func(*tensor.Tensor)) *tensor.Tensor {
	var selfCtx *tensor.Tensor
	if b.OnlyCross {
		selfCtx = ctx
	}
	// Each residual sum goes into the sublayer's fresh output; in inference
	// each normalized input is released once its sublayer has read it, and
	// each sum once the next has (never h, the caller's).
	n := b.Norm1.Forward(h)
	a := b.Attn1.Forward(n, selfCtx)
	tensor.Release(n)
	h1 := tensor.AddInPlace(a, h)
	n = b.Norm2.Forward(h1)
	a = b.Attn2.forward(n, ctx, observe)
	tensor.Release(n)
	h2 := tensor.AddInPlace(a, h1)
	tensor.Release(h1)
	n = b.Norm3.Forward(h2)
	p := b.FFProj.Forward(n)
	tensor.Release(n)
	g := geglu(p)
	tensor.Release(p)
	f := b.FFOut.Forward(g)
	tensor.Release(g)
	out := tensor.AddInPlace(f, h2)
	tensor.Release(h2)
	return out
}

// geglu splits p (…, 2n) into value and gate halves: value·gelu(gate).
func geglu(p *tensor.Tensor) *tensor.Tensor {
	n := p.Dim(-1) / 2
	parts := tensor.Split(p, -1, n, n)
	gate := tensor.GELU(parts[1])
	out := tensor.Mul(parts[0], gate)
	tensor.Release(gate)
	return out
}

// Forward attends from x (B, Lq, D) to ctx (B, Lk, D_ctx), or to x itself
// when ctx is nil.
func (a *CrossAttention) Forward(x, ctx *tensor.Tensor) *tensor.Tensor { return a.forward(x, ctx, nil) }

// forward is Forward, handing observe (when not nil) the probabilities.
func (a *CrossAttention) forward(x, ctx *tensor.Tensor, observe func(*tensor.Tensor)) *tensor.Tensor {
	if ctx == nil {
		ctx = x
	}
	q, k, v := a.ToQ.Forward(x), a.ToK.Forward(ctx), a.ToV.Forward(ctx)
	if observe != nil {
		observe(attentionProbabilities(q, k, a.Heads))
	}
	o := tensor.Attention(q, k, v, a.Heads)
	tensor.Release(q, k, v)
	out := a.ToOut.Forward(o)
	tensor.Release(o)
	return out
}

// attentionProbabilities is softmax(q_h·k_hᵀ/√D) of every head as its
// own graph, (B, heads, Lq, Lk): what tensor.Attention computes inside and
// keeps to itself, for a loss on where the queries look. It costs a second
// pass of the scores, which is why only an observed attention computes it.
func attentionProbabilities(q, k *tensor.Tensor, heads int) *tensor.Tensor {
	B, Lq, Lk, D := q.Dim(0), q.Dim(1), k.Dim(1), q.Dim(2)/heads
	qh := q.Reshape(B, Lq, heads, D).Transpose(1, 2)                 // (B, heads, Lq, D)
	kt := k.Reshape(B, Lk, heads, D).Transpose(1, 2).Transpose(2, 3) // (B, heads, D, Lk)
	return tensor.Softmax(tensor.Scale(tensor.MatMul(qh, kt), float32(1/math.Sqrt(float64(D)))))
}

// Collect adds the parameters under diffusers' names.
func (t *Transformer2D) Collect(prefix string, ps *nn.ParamList) {
	t.Norm.Collect(prefix+"norm.", ps)
	if t.ProjInConv != nil {
		t.ProjInConv.Collect(prefix+"proj_in.", ps)
	} else {
		t.ProjInLinear.Collect(prefix+"proj_in.", ps)
	}
	if t.PosProj != nil {
		t.PosProj.Collect(prefix+"pos_proj.", ps)
	}
	for i, b := range t.Blocks {
		p := fmt.Sprintf("%stransformer_blocks.%d.", prefix, i)
		b.Norm1.Collect(p+"norm1.", ps)
		b.Attn1.Collect(p+"attn1.", ps)
		b.Norm2.Collect(p+"norm2.", ps)
		b.Attn2.Collect(p+"attn2.", ps)
		b.Norm3.Collect(p+"norm3.", ps)
		b.FFProj.Collect(p+"ff.net.0.proj.", ps)
		b.FFOut.Collect(p+"ff.net.2.", ps)
	}
	if t.ProjOutConv != nil {
		t.ProjOutConv.Collect(prefix+"proj_out.", ps)
	} else {
		t.ProjOutLinear.Collect(prefix+"proj_out.", ps)
	}
}

// Collect adds the parameters under diffusers' names.
func (a *CrossAttention) Collect(prefix string, ps *nn.ParamList) {
	a.ToQ.Collect(prefix+"to_q.", ps)
	a.ToK.Collect(prefix+"to_k.", ps)
	a.ToV.Collect(prefix+"to_v.", ps)
	a.ToOut.Collect(prefix+"to_out.0.", ps)
}
