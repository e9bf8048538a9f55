package unet

import (
	"math"
	"math/rand/v2"

	"github.com/godiffuse/godiffuse/nn"
	"github.com/godiffuse/godiffuse/tensor"
)

// ---------------------------------------------------------------------------
// TextTimeEmbedding: diffusers' addition_embed_type "text" (from DeepFloyd
// IF). It pools the text states into one vector that is added to the time
// embedding, so every ResNet block sees the whole prompt, not only the
// cross-attention layers:
//
//	h = norm1(ctx)                                  LayerNorm over D
//	cls = mean_L(h) + positional_embedding          (B, 1, D)
//	pooled = attention(q_proj(cls), k_proj([cls; h]), v_proj([cls; h]))
//	         over num_heads heads, scaled by 1/√(D/heads), no output projection
//	aug = norm2(proj(pooled))                       (B, time_embed_dim)
//
// diffusers adds aug after the class embedding: emb = t_emb + class + aug.
// ---------------------------------------------------------------------------

// TextTimeEmbedding is the module diffusers names add_embedding.
type TextTimeEmbedding struct {
	Norm1        *nn.LayerNorm
	PosEmbedding *tensor.Tensor // pool.positional_embedding (1, D)
	K, Q, V      *nn.Linear     // pool.k_proj, q_proj, v_proj (D → D, with bias)
	Heads        int
	Proj         *nn.Linear // D → time_embed_dim
	Norm2        *nn.LayerNorm
}

// newTextTimeEmbedding builds it for text states of width dim; with r nil
// the parameters are zeros awaiting weights.
func newTextTimeEmbedding(dev tensor.Device, r *rand.Rand, dim, timeEmbed, heads int) *TextTimeEmbedding {
	e := &TextTimeEmbedding{Norm1: nn.NewLayerNorm(dev, dim, 1e-5), Heads: heads}
	// torch.randn(1, D) / √D, drawn before the projections as PyTorch
	// registers it first.
	if r == nil {
		e.PosEmbedding = tensor.Zeros(dev, 1, dim).SetRequiresGrad(true)
	} else {
		v := make([]float32, dim)
		for i := range v {
			v[i] = float32(r.NormFloat64() / math.Sqrt(float64(dim)))
		}
		e.PosEmbedding = tensor.FromFloat32(dev, v, 1, dim).SetRequiresGrad(true)
	}
	e.K = nn.NewLinear(dev, r, dim, dim, true)
	e.Q = nn.NewLinear(dev, r, dim, dim, true)
	e.V = nn.NewLinear(dev, r, dim, dim, true)
	e.Proj = nn.NewLinear(dev, r, dim, timeEmbed, true)
	e.Norm2 = nn.NewLayerNorm(dev, timeEmbed, 1e-5)
	return e
}

// Forward maps text states (B, L, D) to (B, time_embed_dim).
func (e *TextTimeEmbedding) Forward(ctx *tensor.Tensor) *tensor.Tensor {
	B, D := ctx.Dim(0), ctx.Dim(2)
	h := e.Norm1.Forward(ctx)
	cls := tensor.Add(tensor.MeanAxis(h, 1, true), e.PosEmbedding) // (B, 1, D)
	all := tensor.Concat(1, cls, h)
	pooled := tensor.Attention(e.Q.Forward(cls), e.K.Forward(all), e.V.Forward(all), e.Heads)
	return e.Norm2.Forward(e.Proj.Forward(pooled.Reshape(B, D)))
}

// Collect adds the parameters under diffusers' names.
func (e *TextTimeEmbedding) Collect(prefix string, ps *nn.ParamList) {
	e.Norm1.Collect(prefix+"norm1.", ps)
	ps.Add(prefix, "pool.positional_embedding", e.PosEmbedding)
	e.K.Collect(prefix+"pool.k_proj.", ps)
	e.Q.Collect(prefix+"pool.q_proj.", ps)
	e.V.Collect(prefix+"pool.v_proj.", ps)
	e.Proj.Collect(prefix+"proj.", ps)
	e.Norm2.Collect(prefix+"norm2.", ps)
}
