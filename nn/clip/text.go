package clip

import (
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"

	"github.com/godiffuse/godiffuse/nn"
	"github.com/godiffuse/godiffuse/safetensors"
	"github.com/godiffuse/godiffuse/tensor"
)

// ---------------------------------------------------------------------------
// CLIPTextModel (transformers), the text encoder of SD 1.x and 2.x.
// Semantics point by point in shared/reference/sd/clip_text.py:
//
//	x = token_embedding[ids] + position_embedding[0..L)              (B, L, D)
//	each layer (pre-LN):  x += out_proj(causal_attn(layer_norm1(x)))
//	                      (attention without the mask when Bidirectional)
//	                      x += fc2(act(fc1(layer_norm2(x))))
//	last_hidden_state = final_layer_norm(x)
//	pooled = last_hidden_state at argmax(ids) (legacy eos_token_id 2) or at
//	         the first eos_token_id
// ---------------------------------------------------------------------------

// TextConfig is transformers' CLIPTextConfig (text_encoder/config.json).
type TextConfig struct {
	Architectures         []string `json:"architectures,omitempty"`
	VocabSize             int      `json:"vocab_size"`
	HiddenSize            int      `json:"hidden_size"`
	IntermediateSize      int      `json:"intermediate_size"`
	ProjectionDim         int      `json:"projection_dim"`
	NumHiddenLayers       int      `json:"num_hidden_layers"`
	NumAttentionHeads     int      `json:"num_attention_heads"`
	MaxPositionEmbeddings int      `json:"max_position_embeddings"`
	HiddenAct             string   `json:"hidden_act"`
	LayerNormEps          float64  `json:"layer_norm_eps"`
	BosTokenID            int      `json:"bos_token_id"`
	EosTokenID            int      `json:"eos_token_id"`
	PadTokenID            int      `json:"pad_token_id"`
	// Bidirectional drops the causal mask: every token attends to every
	// other, so a caption's first words know the words after them. Not in
	// transformers (which always masks, and ignores the key): it is for
	// encoders trained here from scratch (bench/configs/shapes-text-bidirectional.json).
	Bidirectional bool `json:"_godiffuse_bidirectional,omitempty"`
}

// DefaultTextConfig is transformers' CLIPTextConfig default.
func DefaultTextConfig() TextConfig {
	return TextConfig{VocabSize: 49408, HiddenSize: 512, IntermediateSize: 2048, ProjectionDim: 512, NumHiddenLayers: 12,
		NumAttentionHeads: 8, MaxPositionEmbeddings: 77, HiddenAct: "quick_gelu", LayerNormEps: 1e-5,
		BosTokenID: 49406, EosTokenID: 49407, PadTokenID: 1}
}

// Limits a config must respect before anything is allocated.
const (
	maxVocab  = 1 << 20
	maxWidth  = 1 << 14
	maxLayers = 256
)

// ParseTextConfig parses config.json bytes (name is used in errors).
func ParseTextConfig(name string, data []byte) (TextConfig, error) {
	c := DefaultTextConfig()
	if err := json.Unmarshal(data, &c); err != nil {
		return c, fmt.Errorf("%s: not a CLIP text config: %v", name, err)
	}
	return c, c.validate(name)
}

func (c TextConfig) validate(name string) error {
	check := func(field string, v, lo, hi int) error {
		if v < lo || v > hi {
			return fmt.Errorf("%s: %s = %d, want %d … %d", name, field, v, lo, hi)
		}
		return nil
	}
	for _, e := range []error{
		check("vocab_size", c.VocabSize, 1, maxVocab),
		check("hidden_size", c.HiddenSize, 1, maxWidth),
		check("intermediate_size", c.IntermediateSize, 1, 8*maxWidth),
		check("num_hidden_layers", c.NumHiddenLayers, 1, maxLayers),
		check("num_attention_heads", c.NumAttentionHeads, 1, c.HiddenSize),
		check("max_position_embeddings", c.MaxPositionEmbeddings, 1, 1<<16),
	} {
		if e != nil {
			return e
		}
	}
	if c.HiddenSize%c.NumAttentionHeads != 0 {
		return fmt.Errorf("%s: hidden_size %d is not divisible by num_attention_heads %d", name, c.HiddenSize, c.NumAttentionHeads)
	}
	switch c.HiddenAct {
	case "quick_gelu", "gelu":
	default:
		return fmt.Errorf("%s: hidden_act %q is not supported (quick_gelu or gelu)", name, c.HiddenAct)
	}
	if !(c.LayerNormEps > 0 && c.LayerNormEps < 1) {
		return fmt.Errorf("%s: layer_norm_eps = %g, want a small positive number", name, c.LayerNormEps)
	}
	return nil
}

// TextModel is CLIPTextModel with transformers' parameter names.
type TextModel struct {
	Config            TextConfig
	Device            tensor.Device
	TokenEmbedding    *nn.Embedding
	PositionEmbedding *nn.Embedding
	Layers            []*EncoderLayer
	FinalLayerNorm    *nn.LayerNorm
}

// EncoderLayer is one pre-LN transformer layer.
type EncoderLayer struct {
	LayerNorm1, LayerNorm2 *nn.LayerNorm
	Q, K, V, Out           *nn.Linear
	FC1, FC2               *nn.Linear
	Heads                  int
	Act                    string
}

// NewTextModel builds the model, initialised from r (PyTorch's default
// layer initialisation; transformers' own init differs, which only matters
// for training from scratch); with r nil, parameters are zero tensors
// awaiting weights.
func NewTextModel(dev tensor.Device, c TextConfig, r *rand.Rand) (*TextModel, error) {
	if err := c.validate("clip text config"); err != nil {
		return nil, err
	}
	D, eps := c.HiddenSize, float32(c.LayerNormEps)
	m := &TextModel{Config: c, Device: dev,
		TokenEmbedding:    nn.NewEmbedding(dev, r, c.VocabSize, D),
		PositionEmbedding: nn.NewEmbedding(dev, r, c.MaxPositionEmbeddings, D),
		FinalLayerNorm:    nn.NewLayerNorm(dev, D, eps)}
	for range c.NumHiddenLayers {
		m.Layers = append(m.Layers, newEncoderLayer(dev, r, D, c.IntermediateSize, c.NumAttentionHeads, c.HiddenAct, eps))
	}
	return m, nil
}

// newEncoderLayer builds one pre-LN layer (PyTorch's default init from r;
// zeros without r).
func newEncoderLayer(dev tensor.Device, r *rand.Rand, D, inner, heads int, act string, eps float32) *EncoderLayer {
	return &EncoderLayer{
		K: nn.NewLinear(dev, r, D, D, true), V: nn.NewLinear(dev, r, D, D, true),
		Q: nn.NewLinear(dev, r, D, D, true), Out: nn.NewLinear(dev, r, D, D, true),
		LayerNorm1: nn.NewLayerNorm(dev, D, eps),
		FC1:        nn.NewLinear(dev, r, D, inner, true), FC2: nn.NewLinear(dev, r, inner, D, true),
		LayerNorm2: nn.NewLayerNorm(dev, D, eps),
		Heads:      heads, Act: act,
	}
}

// Collect lists the layer's parameters in transformers' order under prefix.
func (l *EncoderLayer) Collect(p string, ps *nn.ParamList) {
	l.K.Collect(p+"self_attn.k_proj.", ps)
	l.V.Collect(p+"self_attn.v_proj.", ps)
	l.Q.Collect(p+"self_attn.q_proj.", ps)
	l.Out.Collect(p+"self_attn.out_proj.", ps)
	l.LayerNorm1.Collect(p+"layer_norm1.", ps)
	l.FC1.Collect(p+"mlp.fc1.", ps)
	l.FC2.Collect(p+"mlp.fc2.", ps)
	l.LayerNorm2.Collect(p+"layer_norm2.", ps)
}

// Params lists the parameters in transformers' state-dict order.
func (m *TextModel) Params() []nn.Param {
	var ps nn.ParamList
	m.TokenEmbedding.Collect("text_model.embeddings.token_embedding.", &ps)
	m.PositionEmbedding.Collect("text_model.embeddings.position_embedding.", &ps)
	for i, l := range m.Layers {
		l.Collect(fmt.Sprintf("text_model.encoder.layers.%d.", i), &ps)
	}
	m.FinalLayerNorm.Collect("text_model.final_layer_norm.", &ps)
	return ps
}

// TextOutput is what the encoder returns for a batch of token ids.
type TextOutput struct {
	LastHidden *tensor.Tensor   // (B, L, D): final_layer_norm of the last layer's output
	Pooled     *tensor.Tensor   // (B, D)
	Hidden     []*tensor.Tensor // N+1 tensors (B, L, D): the embeddings, then each layer's output (no final norm)
}

// Forward encodes ids (B·L values, L ≤ max_position_embeddings).
func (m *TextModel) Forward(ids []int64, B int) (out *TextOutput, err error) {
	c := m.Config
	if B < 1 || len(ids)%B != 0 {
		return nil, fmt.Errorf("clip text: %d ids for a batch of %d", len(ids), B)
	}
	L := len(ids) / B
	if L < 1 || L > c.MaxPositionEmbeddings {
		return nil, fmt.Errorf("clip text: sequence of %d tokens, want 1 … %d", L, c.MaxPositionEmbeddings)
	}
	for i, id := range ids {
		if id < 0 || id >= int64(c.VocabSize) {
			return nil, fmt.Errorf("clip text: token id %d at %d outside [0, %d)", id, i, c.VocabSize)
		}
	}
	err = tensor.Catch(func() { out = m.forward(ids, B, L) })
	return out, err
}

func (m *TextModel) forward(ids []int64, B, L int) *TextOutput {
	dev, c := m.Device, m.Config
	x := m.TokenEmbedding.Forward(tensor.FromInt64(dev, ids, B, L))
	x = tensor.Add(x, m.PositionEmbedding.Weight.Narrow(0, 0, L))
	var mask *tensor.Tensor
	if !c.Bidirectional {
		mask = causalMask(dev, L)
	}
	out := &TextOutput{Hidden: []*tensor.Tensor{x}}
	for _, l := range m.Layers {
		x = l.forward(x, mask)
		out.Hidden = append(out.Hidden, x)
	}
	out.LastHidden = m.FinalLayerNorm.Forward(x)
	// pooled: one row per sample, gathered from the (B·L, D) view
	rows := make([]int64, B)
	for b := range B {
		row := ids[b*L : (b+1)*L]
		p := 0
		if c.EosTokenID == 2 { // legacy configs: the first maximal id (eot is the largest)
			for i, id := range row {
				if id > row[p] {
					p = i
				}
			}
		} else {
			for i, id := range row {
				if id == int64(c.EosTokenID) {
					p = i
					break
				}
			}
		}
		rows[b] = int64(b*L + p)
	}
	out.Pooled = tensor.Embedding(tensor.FromInt64(dev, rows, B), out.LastHidden.Reshape(B*L, c.HiddenSize))
	return out
}

// causalMask is (L, L): 0 on and below the diagonal, the most negative
// float32 above it (transformers adds finfo(dtype).min).
func causalMask(dev tensor.Device, L int) *tensor.Tensor {
	v := make([]float32, L*L)
	for i := range L {
		for j := i + 1; j < L; j++ {
			v[i*L+j] = -math.MaxFloat32
		}
	}
	return tensor.FromFloat32(dev, v, L, L)
}

func (l *EncoderLayer) forward(x, mask *tensor.Tensor) *tensor.Tensor {
	x = tensor.AddInPlace(l.Out.Forward(maskedAttention(l.LayerNorm1.Forward(x), l.Q, l.K, l.V, l.Heads, mask)), x)
	h := l.FC1.Forward(l.LayerNorm2.Forward(x))
	return tensor.AddInPlace(l.FC2.Forward(activation(l.Act, h)), x)
}

// maskedAttention is multi-head self-attention with an additive (L, L) mask
// (nil: none): softmax(q·kᵀ/√d + mask)·v per head, on (B, L, D) input.
func maskedAttention(x *tensor.Tensor, q, k, v *nn.Linear, heads int, mask *tensor.Tensor) *tensor.Tensor {
	B, L, D := x.Dim(0), x.Dim(1), x.Dim(2)
	d := D / heads
	split := func(t *tensor.Tensor) *tensor.Tensor { // (B, L, D) → (B, H, L, d)
		return t.Reshape(B, L, heads, d).Permute(0, 2, 1, 3)
	}
	qh := tensor.Scale(split(q.Forward(x)), float32(1/math.Sqrt(float64(d))))
	kh, vh := split(k.Forward(x)), split(v.Forward(x))
	s := tensor.MatMul(qh, kh.Transpose(2, 3)) // (B, H, L, L)
	if mask != nil {
		s = tensor.Add(s, mask)
	}
	o := tensor.MatMul(tensor.Softmax(s), vh) // (B, H, L, d)
	return o.Permute(0, 2, 1, 3).Reshape(B, L, D)
}

// activation is CLIP's hidden_act: quick_gelu x·σ(1.702x) or the erf GELU.
func activation(name string, x *tensor.Tensor) *tensor.Tensor {
	if name == "quick_gelu" {
		return tensor.Mul(x, tensor.Sigmoid(tensor.Scale(x, 1.702)))
	}
	return tensor.GELU(x)
}

// NoGrad turns gradients off for inference; call the result to restore them.
func (m *TextModel) NoGrad() (restore func()) { return nn.NoGrad(m.Params()) }

// LoadTextModel loads a transformers text_encoder/ folder (config.json and
// model.safetensors, or model.fp16.safetensors), its weights kept as storage says.
func LoadTextModel(dev tensor.Device, dir string, storage nn.Storage) (*TextModel, error) {
	cfgPath := filepath.Join(dir, "config.json")
	b, err := os.ReadFile(cfgPath)
	if err != nil {
		return nil, fmt.Errorf("text encoder: %w", err)
	}
	c, err := ParseTextConfig(cfgPath, b)
	if err != nil {
		return nil, err
	}
	weights, err := nn.FindWeights(dir, "model")
	if err != nil {
		return nil, fmt.Errorf("text encoder: %w", err)
	}
	m, err := NewTextModel(tensor.ShapesOnly(), c, nil) // parameters get their buffers as they load
	if err != nil {
		return nil, err
	}
	m.Device = dev
	st, err := safetensors.Read(weights)
	if err != nil {
		return nil, err
	}
	// Old files also hold the int64 buffer text_model.embeddings.position_ids.
	ignore := func(k string) bool { return strings.HasSuffix(k, "embeddings.position_ids") }
	defer st.Close()
	if err := nn.LoadParams(m.Params(), st, nn.LoadOptions{Ignore: ignore, Storage: storage, Device: dev}); err != nil {
		return nil, err
	}
	return m, nil
}
