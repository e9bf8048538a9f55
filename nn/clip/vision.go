package clip

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"slices"

	"github.com/godiffuse/godiffuse/nn"
	"github.com/godiffuse/godiffuse/tensor"
)

// ---------------------------------------------------------------------------
// CLIPVisionModel (transformers), the image tower of Stable Diffusion's
// safety checker. Semantics point by point in
// shared/reference/safety/clip_vision.py:
//
//	tokens = [class_embedding; patches of a p×p stride-p conv, row-major]
//	         + position_embedding                                   (B, N, D)
//	h = pre_layrnorm(tokens); each layer (pre-LN, no mask):
//	    h += out_proj(attn(layer_norm1(h)));  h += fc2(act(fc1(layer_norm2(h))))
//	last_hidden_state = h (not normalized); pooled = post_layernorm(h[:, 0])
// ---------------------------------------------------------------------------

// VisionConfig is transformers' CLIPVisionConfig.
type VisionConfig struct {
	HiddenSize        int     `json:"hidden_size"`
	IntermediateSize  int     `json:"intermediate_size"`
	ProjectionDim     int     `json:"projection_dim"`
	NumHiddenLayers   int     `json:"num_hidden_layers"`
	NumAttentionHeads int     `json:"num_attention_heads"`
	NumChannels       int     `json:"num_channels"`
	ImageSize         int     `json:"image_size"`
	PatchSize         int     `json:"patch_size"`
	HiddenAct         string  `json:"hidden_act"`
	LayerNormEps      float64 `json:"layer_norm_eps"`
}

// DefaultVisionConfig is CLIPVisionConfig's default (not ViT-L/14: a key
// missing from a config takes these values).
func DefaultVisionConfig() VisionConfig {
	return VisionConfig{HiddenSize: 768, IntermediateSize: 3072, ProjectionDim: 512, NumHiddenLayers: 12,
		NumAttentionHeads: 12, NumChannels: 3, ImageSize: 224, PatchSize: 32, HiddenAct: "quick_gelu", LayerNormEps: 1e-5}
}

// ParseVisionConfig completes the keys of a vision config object (a JSON
// object; missing keys take DefaultVisionConfig's values) and checks it.
func ParseVisionConfig(name string, data []byte) (VisionConfig, error) {
	c := DefaultVisionConfig()
	if len(data) > 0 && string(data) != "null" {
		if err := json.Unmarshal(data, &c); err != nil {
			return c, fmt.Errorf("%s: %w", name, err)
		}
	}
	return c, c.validate(name)
}

// VisionFromCLIPConfig reads the vision config and the projection width of
// a transformers CLIPConfig (a safety_checker/config.json): vision_config,
// or, when the legacy vision_config_dict is present, the defaults completed
// by it (it replaces every known key of vision_config, as CLIPConfig does);
// the projection is the top-level projection_dim (default 512).
func VisionFromCLIPConfig(name string, data []byte) (VisionConfig, int, error) {
	var top struct {
		Vision        json.RawMessage `json:"vision_config"`
		VisionLegacy  json.RawMessage `json:"vision_config_dict"`
		ProjectionDim *int            `json:"projection_dim"`
	}
	if err := json.Unmarshal(data, &top); err != nil {
		return VisionConfig{}, 0, fmt.Errorf("%s: not a JSON object: %w", name, err)
	}
	src := top.Vision
	if len(top.VisionLegacy) > 0 && string(top.VisionLegacy) != "null" {
		src = top.VisionLegacy
	}
	c, err := ParseVisionConfig(name+": vision_config", src)
	if err != nil {
		return c, 0, err
	}
	proj := 512
	if top.ProjectionDim != nil {
		proj = *top.ProjectionDim
	}
	if proj < 1 || proj > maxWidth {
		return c, 0, fmt.Errorf("%s: projection_dim %d: want 1 … %d", name, proj, maxWidth)
	}
	return c, proj, nil
}

// visionActs are the hidden_act values the vision tower runs.
var visionActs = []string{"quick_gelu", "gelu"}

func (c VisionConfig) validate(name string) error {
	switch {
	case c.HiddenSize < 1 || c.HiddenSize > maxWidth:
		return fmt.Errorf("%s: hidden_size %d: want 1 … %d", name, c.HiddenSize, maxWidth)
	case c.IntermediateSize < 1 || c.IntermediateSize > 4*maxWidth:
		return fmt.Errorf("%s: intermediate_size %d: want 1 … %d", name, c.IntermediateSize, 4*maxWidth)
	case c.NumHiddenLayers < 1 || c.NumHiddenLayers > maxLayers:
		return fmt.Errorf("%s: num_hidden_layers %d: want 1 … %d", name, c.NumHiddenLayers, maxLayers)
	case c.NumAttentionHeads < 1 || c.HiddenSize%c.NumAttentionHeads != 0:
		return fmt.Errorf("%s: num_attention_heads %d must divide hidden_size %d", name, c.NumAttentionHeads, c.HiddenSize)
	case c.NumChannels < 1 || c.NumChannels > 16:
		return fmt.Errorf("%s: num_channels %d: want 1 … 16", name, c.NumChannels)
	case c.PatchSize < 1 || c.ImageSize < c.PatchSize || c.ImageSize > 4096:
		return fmt.Errorf("%s: image_size %d and patch_size %d: want 1 ≤ patch_size ≤ image_size ≤ 4096", name, c.ImageSize, c.PatchSize)
	case (c.ImageSize/c.PatchSize)*(c.ImageSize/c.PatchSize) > 1<<16:
		return fmt.Errorf("%s: %d patches: at most %d", name, (c.ImageSize/c.PatchSize)*(c.ImageSize/c.PatchSize), 1<<16)
	case !slices.Contains(visionActs, c.HiddenAct):
		return fmt.Errorf("%s: hidden_act %q: want one of %v", name, c.HiddenAct, visionActs)
	case !(c.LayerNormEps > 0 && c.LayerNormEps < 1):
		return fmt.Errorf("%s: layer_norm_eps %g: want 0 < eps < 1", name, c.LayerNormEps)
	}
	return nil
}

// Tokens is the number of tokens: the class token and one per patch.
func (c VisionConfig) Tokens() int { g := c.ImageSize / c.PatchSize; return g*g + 1 }

// VisionModel is CLIPVisionModel (transformers) with its parameter names
// under a prefix of the caller's choosing (Params).
type VisionModel struct {
	Config            VisionConfig
	Device            tensor.Device
	ClassEmbedding    *tensor.Tensor // (D)
	PatchEmbedding    *nn.Conv2d     // no bias
	PositionEmbedding *nn.Embedding  // (N, D)
	PreLayerNorm      *nn.LayerNorm
	Layers            []*EncoderLayer
	PostLayerNorm     *nn.LayerNorm
}

// NewVisionModel builds the tower, initialised from r (PyTorch's default
// layer initialisation); with r nil, parameters are zero tensors awaiting
// weights.
func NewVisionModel(dev tensor.Device, c VisionConfig, r *rand.Rand) (*VisionModel, error) {
	if err := c.validate("clip vision config"); err != nil {
		return nil, err
	}
	D, eps := c.HiddenSize, float32(c.LayerNormEps)
	patch := nn.NewConv2d(dev, r, c.NumChannels, D, c.PatchSize, c.PatchSize, tensor.PadAll(0))
	patch.Bias = nil
	m := &VisionModel{Config: c, Device: dev, PatchEmbedding: patch,
		ClassEmbedding:    classEmbedding(dev, r, D),
		PositionEmbedding: nn.NewEmbedding(dev, r, c.Tokens(), D),
		PreLayerNorm:      nn.NewLayerNorm(dev, D, eps), PostLayerNorm: nn.NewLayerNorm(dev, D, eps)}
	for range c.NumHiddenLayers {
		m.Layers = append(m.Layers, newEncoderLayer(dev, r, D, c.IntermediateSize, c.NumAttentionHeads, c.HiddenAct, eps))
	}
	return m, nil
}

// classEmbedding is the bare (D) class-token parameter, N(0, 1) as
// transformers draws it (zero without r).
func classEmbedding(dev tensor.Device, r *rand.Rand, D int) *tensor.Tensor {
	if r == nil {
		return tensor.Zeros(dev, D).SetRequiresGrad(true)
	}
	v := make([]float32, D)
	for i := range v {
		v[i] = float32(r.NormFloat64())
	}
	return tensor.FromFloat32(dev, v, D).SetRequiresGrad(true)
}

// Collect lists the parameters in transformers' state-dict order under
// prefix ("vision_model." for CLIPVisionModel, "vision_model.vision_model."
// inside the safety checker).
func (m *VisionModel) Collect(prefix string, ps *nn.ParamList) {
	ps.Add(prefix+"embeddings.", "class_embedding", m.ClassEmbedding)
	m.PatchEmbedding.Collect(prefix+"embeddings.patch_embedding.", ps)
	m.PositionEmbedding.Collect(prefix+"embeddings.position_embedding.", ps)
	m.PreLayerNorm.Collect(prefix+"pre_layrnorm.", ps) // sic
	for i, l := range m.Layers {
		l.Collect(fmt.Sprintf("%sencoder.layers.%d.", prefix, i), ps)
	}
	m.PostLayerNorm.Collect(prefix+"post_layernorm.", ps)
}

// VisionOutput is what the tower returns for a batch of images.
type VisionOutput struct {
	LastHidden *tensor.Tensor   // (B, N, D), not normalized
	Pooled     *tensor.Tensor   // (B, D): post_layernorm of the class token
	Hidden     []*tensor.Tensor // the embeddings, the pre_layrnorm output, then each layer's output
}

// Forward runs pixel values (B, C, S, S), already CLIP-normalized.
func (m *VisionModel) Forward(pixels *tensor.Tensor) (out *VisionOutput, err error) {
	c := m.Config
	if pixels.Rank() != 4 || pixels.Dim(1) != c.NumChannels || pixels.Dim(2) != c.ImageSize || pixels.Dim(3) != c.ImageSize {
		return nil, fmt.Errorf("clip vision: input %v, want (B, %d, %d, %d)", pixels.Shape(), c.NumChannels, c.ImageSize, c.ImageSize)
	}
	err = tensor.Catch(func() { out = m.forward(pixels) })
	return out, err
}

func (m *VisionModel) forward(pixels *tensor.Tensor) *VisionOutput {
	c := m.Config
	B, D, N := pixels.Dim(0), c.HiddenSize, c.Tokens()
	patches := m.PatchEmbedding.Forward(pixels).Reshape(B, D, N-1).Permute(0, 2, 1) // (B, G·G, D), row-major
	cls := tensor.Add(tensor.Zeros(m.Device, B, 1, D), m.ClassEmbedding.Reshape(1, 1, D))
	x := tensor.Add(tensor.Concat(1, cls, patches), m.PositionEmbedding.Weight.Reshape(1, N, D))
	out := &VisionOutput{Hidden: []*tensor.Tensor{x}}
	x = m.PreLayerNorm.Forward(x)
	out.Hidden = append(out.Hidden, x)
	for _, l := range m.Layers {
		x = l.forward(x, nil)
		out.Hidden = append(out.Hidden, x)
	}
	out.LastHidden = x
	out.Pooled = m.PostLayerNorm.Forward(x.Narrow(1, 0, 1).Reshape(B, D))
	return out
}
