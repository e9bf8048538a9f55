package unet

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"sort"
	"strings"
)

// ConditionConfig is diffusers' UNet2DConditionModel config.json, for the
// options SD 1.x and 2.x use. Options that exist in diffusers but not in
// those models are accepted only at their default value; any other value is
// an error that names the option.
type ConditionConfig struct {
	SampleSize                json.RawMessage `json:"sample_size"`
	InChannels                int             `json:"in_channels"`
	OutChannels               int             `json:"out_channels"`
	CenterInputSample         bool            `json:"center_input_sample"`
	FlipSinToCos              bool            `json:"flip_sin_to_cos"`
	FreqShift                 float64         `json:"freq_shift"`
	DownBlockTypes            []string        `json:"down_block_types"`
	MidBlockType              *string         `json:"mid_block_type"`
	UpBlockTypes              []string        `json:"up_block_types"`
	OnlyCrossAttention        PerBlock[bool]  `json:"only_cross_attention"`
	BlockOutChannels          []int           `json:"block_out_channels"`
	LayersPerBlock            PerBlock[int]   `json:"layers_per_block"`
	DownsamplePadding         int             `json:"downsample_padding"`
	MidBlockScaleFactor       float64         `json:"mid_block_scale_factor"`
	Dropout                   float64         `json:"dropout"`
	ActFn                     string          `json:"act_fn"`
	NormNumGroups             int             `json:"norm_num_groups"`
	NormEps                   float64         `json:"norm_eps"`
	CrossAttentionDim         PerBlock[int]   `json:"cross_attention_dim"`
	TransformerLayersPerBlock PerBlock[int]   `json:"transformer_layers_per_block"`
	AttentionHeadDim          PerBlock[int]   `json:"attention_head_dim"` // the number of heads (diffusers' misnomer)
	UseLinearProjection       bool            `json:"use_linear_projection"`
	UpcastAttention           bool            `json:"upcast_attention"` // precision of fp16 runs only: no effect in float32
	NumClassEmbeds            *int            `json:"num_class_embeds"`
	AdditionEmbedType         *string         `json:"addition_embed_type"`           // null, or "text" (TextTimeEmbedding)
	AdditionEmbedTypeNumHeads int             `json:"addition_embed_type_num_heads"` // its pooling heads
	TimeEmbeddingDim          *int            `json:"time_embedding_dim"`
	ConvInKernel              int             `json:"conv_in_kernel"`
	ConvOutKernel             int             `json:"conv_out_kernel"`

	// Coordinates (a godiffuse key; diffusers does not know it) gives conv_in
	// two more input channels, the pixel's x and y from −1 to 1, which the
	// model appends to every sample itself: in_channels stays the sample's.
	// A convolution alone locates a pixel only through the zero padding at
	// the borders (Liu et al., 2018, "CoordConv"); captions that say where
	// things go ("a red circle to the left of a blue square") need it
	// (bench/configs/shapes-unet-coord.json).
	Coordinates bool `json:"_godiffuse_coordinates,omitempty"`
	// AttentionCoordinates (a godiffuse key) adds to every spatial
	// transformer's tokens, after proj_in, a learnt linear map of each
	// token's place (its x and y and their sines and cosines at two
	// frequencies, transformer.go): the queries of the cross-attention then
	// know where their pixel is, so a word that says where its object goes
	// can be matched with the pixels there, instead of only through
	// whatever place the convolutions before it kept.
	AttentionCoordinates bool `json:"_godiffuse_attention_coordinates,omitempty"`

	// Ignored lists the keys of the file this package does not know (diffusers
	// warns about them); they are not used.
	Ignored []string `json:"-"`
}

// PerBlock is a config value given once for every block or as a list with
// one entry per block.
type PerBlock[T any] struct {
	One  T
	List []T // nil when one value applies to every block
}

// UnmarshalJSON accepts a value or a list of values.
func (p *PerBlock[T]) UnmarshalJSON(b []byte) error {
	if t := bytes.TrimSpace(b); len(t) > 0 && t[0] == '[' {
		p.List = nil
		return json.Unmarshal(b, &p.List)
	}
	p.List = nil
	return json.Unmarshal(b, &p.One)
}

// MarshalJSON writes what was read.
func (p PerBlock[T]) MarshalJSON() ([]byte, error) {
	if p.List != nil {
		return json.Marshal(p.List)
	}
	return json.Marshal(p.One)
}

// At is the value of block i.
func (p PerBlock[T]) At(i int) T {
	if p.List != nil {
		return p.List[i]
	}
	return p.One
}

func (p PerBlock[T]) fits(n int) bool { return p.List == nil || len(p.List) == n }

// DefaultConditionConfig returns diffusers' defaults (SD 1.x's structure with
// a cross-attention width of 1280).
func DefaultConditionConfig() ConditionConfig {
	mid := "UNetMidBlock2DCrossAttn"
	return ConditionConfig{
		SampleSize: json.RawMessage("null"), InChannels: 4, OutChannels: 4, FlipSinToCos: true,
		DownBlockTypes:   []string{"CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"},
		MidBlockType:     &mid,
		UpBlockTypes:     []string{"UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"},
		BlockOutChannels: []int{320, 640, 1280, 1280}, LayersPerBlock: PerBlock[int]{One: 2},
		DownsamplePadding: 1, MidBlockScaleFactor: 1, ActFn: "silu", NormNumGroups: 32, NormEps: 1e-5,
		CrossAttentionDim: PerBlock[int]{One: 1280}, TransformerLayersPerBlock: PerBlock[int]{One: 1},
		AttentionHeadDim: PerBlock[int]{One: 8}, ConvInKernel: 3, ConvOutKernel: 3, AdditionEmbedTypeNumHeads: 64,
	}
}

// unsupported are diffusers options outside SD 1.x/2.x, with the only value
// (as JSON) this package accepts.
var unsupported = map[string]string{
	"num_attention_heads": "null", "dual_cross_attention": "false", "class_embed_type": "null",
	"encoder_hid_dim": "null", "encoder_hid_dim_type": "null",
	"time_embedding_type": `"positional"`, "time_embedding_act_fn": "null", "timestep_post_act": "null",
	"time_cond_proj_dim": "null", "attention_type": `"default"`, "class_embeddings_concat": "false",
	"cross_attention_norm": "null", "resnet_time_scale_shift": `"default"`, "resnet_skip_time_act": "false",
	"reverse_transformer_layers_per_block": "null", "resnet_out_scale_factor": "1",
	"mid_block_only_cross_attention": "null", "projection_class_embeddings_input_dim": "null",
	"addition_time_embed_dim": "null",
}

// Limits that keep a hostile config from exhausting memory before any check.
const (
	maxChannels = 1 << 14
	maxBlocks   = 16
	maxLayers   = 64
)

// ParseConditionConfig parses config.json bytes; name is used in errors.
func ParseConditionConfig(name string, data []byte) (ConditionConfig, error) {
	c := DefaultConditionConfig()
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(data, &raw); err != nil {
		return c, fmt.Errorf("%s: not a JSON object: %v", name, err)
	}
	known := map[string]bool{}
	b, _ := json.Marshal(DefaultConditionConfig())
	var keys map[string]json.RawMessage
	json.Unmarshal(b, &keys)
	for k := range keys {
		known[k] = true
	}
	for k, v := range raw {
		if flag, ok := map[string]*bool{"_godiffuse_coordinates": &c.Coordinates,
			"_godiffuse_attention_coordinates": &c.AttentionCoordinates}[k]; ok {
			if err := json.Unmarshal(v, flag); err != nil {
				return c, fmt.Errorf("%s: field %s: want true or false, have %s", name, k, bytes.TrimSpace(v))
			}
			continue
		}
		if strings.HasPrefix(k, "_") {
			continue
		}
		if want, ok := unsupported[k]; ok {
			if !jsonEqual(v, want) {
				return c, fmt.Errorf("%s: %s = %s is not supported (only %s)", name, k, bytes.TrimSpace(v), want)
			}
			continue
		}
		if !known[k] {
			c.Ignored = append(c.Ignored, k)
			continue
		}
		one := map[string]json.RawMessage{k: v}
		ob, _ := json.Marshal(one)
		if err := json.Unmarshal(ob, &c); err != nil {
			return c, fmt.Errorf("%s: field %s: %v", name, k, err)
		}
	}
	sort.Strings(c.Ignored)
	if err := c.Validate(); err != nil {
		return c, fmt.Errorf("%s: %w", name, err)
	}
	return c, nil
}

func jsonEqual(a json.RawMessage, b string) bool {
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal([]byte(b), &y) != nil {
		return false
	}
	xb, _ := json.Marshal(x)
	yb, _ := json.Marshal(y)
	return bytes.Equal(xb, yb)
}

// LoadConditionConfig reads a config.json file.
func LoadConditionConfig(path string) (ConditionConfig, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return ConditionConfig{}, err
	}
	return ParseConditionConfig(path, data)
}

func blockType(name string) string { return strings.TrimPrefix(name, "UNetRes") }

// Validate checks that the config describes a model this package builds;
// each error names the field and what was expected.
func (c ConditionConfig) Validate() error {
	n := len(c.BlockOutChannels)
	in := func(v, lo, hi int) bool { return v >= lo && v <= hi }
	switch {
	case !in(n, 1, maxBlocks):
		return fmt.Errorf("field block_out_channels: want 1 … %d blocks, have %d", maxBlocks, n)
	case len(c.DownBlockTypes) != n || len(c.UpBlockTypes) != n:
		return fmt.Errorf("fields down_block_types (%d) and up_block_types (%d): want one per block_out_channels entry (%d)",
			len(c.DownBlockTypes), len(c.UpBlockTypes), n)
	case !in(c.InChannels, 1, maxChannels) || !in(c.OutChannels, 1, maxChannels):
		return fmt.Errorf("fields in_channels/out_channels: want 1 … %d, have %d/%d", maxChannels, c.InChannels, c.OutChannels)
	case !in(c.NormNumGroups, 1, maxChannels):
		return fmt.Errorf("field norm_num_groups: want 1 … %d, have %d", maxChannels, c.NormNumGroups)
	case !(c.NormEps > 0 && c.NormEps < 1):
		return fmt.Errorf("field norm_eps: want a small positive number, have %g", c.NormEps)
	case c.MidBlockScaleFactor == 0:
		return fmt.Errorf("field mid_block_scale_factor: want non-zero")
	case !(c.Dropout >= 0 && c.Dropout < 1):
		return fmt.Errorf("field dropout: want 0 ≤ p < 1, have %g", c.Dropout)
	case !in(c.DownsamplePadding, 0, 1):
		return fmt.Errorf("field downsample_padding: want 0 or 1, have %d", c.DownsamplePadding)
	case c.ActFn != "silu" && c.ActFn != "swish":
		return fmt.Errorf("field act_fn: only \"silu\" is supported, have %q", c.ActFn)
	case c.ConvInKernel%2 != 1 || !in(c.ConvInKernel, 1, 7) || c.ConvOutKernel%2 != 1 || !in(c.ConvOutKernel, 1, 7):
		return fmt.Errorf("fields conv_in_kernel/conv_out_kernel: want an odd size 1 … 7, have %d/%d", c.ConvInKernel, c.ConvOutKernel)
	case c.NumClassEmbeds != nil && !in(*c.NumClassEmbeds, 1, 1<<20):
		return fmt.Errorf("field num_class_embeds: want 1 … %d or null, have %d", 1<<20, *c.NumClassEmbeds)
	case c.TimeEmbeddingDim != nil && !in(*c.TimeEmbeddingDim, 1, 4*maxChannels):
		return fmt.Errorf("field time_embedding_dim: want 1 … %d or null", 4*maxChannels)
	case c.AdditionEmbedType != nil && *c.AdditionEmbedType != "text":
		return fmt.Errorf("field addition_embed_type: want null or \"text\", have %q", *c.AdditionEmbedType)
	}
	for field, ok := range map[string]bool{
		"only_cross_attention": c.OnlyCrossAttention.fits(n), "layers_per_block": c.LayersPerBlock.fits(n),
		"cross_attention_dim": c.CrossAttentionDim.fits(n), "transformer_layers_per_block": c.TransformerLayersPerBlock.fits(n),
		"attention_head_dim": c.AttentionHeadDim.fits(n),
	} {
		if !ok {
			return fmt.Errorf("field %s: a list must have one entry per block (%d)", field, n)
		}
	}
	if c.MidBlockType != nil {
		if t := blockType(*c.MidBlockType); t != "UNetMidBlock2DCrossAttn" && t != "UNetMidBlock2D" {
			return fmt.Errorf("field mid_block_type: want UNetMidBlock2DCrossAttn, UNetMidBlock2D or null, have %q", *c.MidBlockType)
		}
	}
	for i, ch := range c.BlockOutChannels {
		if !in(ch, 1, maxChannels) || ch%c.NormNumGroups != 0 {
			return fmt.Errorf("field block_out_channels[%d] = %d: want a multiple of norm_num_groups (%d) up to %d", i, ch, c.NormNumGroups, maxChannels)
		}
		if t := blockType(c.DownBlockTypes[i]); !slices.Contains([]string{"CrossAttnDownBlock2D", "DownBlock2D"}, t) {
			return fmt.Errorf("field down_block_types[%d]: want CrossAttnDownBlock2D or DownBlock2D, have %q", i, c.DownBlockTypes[i])
		}
		if t := blockType(c.UpBlockTypes[i]); !slices.Contains([]string{"CrossAttnUpBlock2D", "UpBlock2D"}, t) {
			return fmt.Errorf("field up_block_types[%d]: want CrossAttnUpBlock2D or UpBlock2D, have %q", i, c.UpBlockTypes[i])
		}
		if h := c.AttentionHeadDim.At(i); h < 1 || ch%h != 0 {
			return fmt.Errorf("field attention_head_dim (block %d) = %d: want a number of heads dividing %d channels", i, h, ch)
		}
		if v := c.LayersPerBlock.At(i); !in(v, 1, maxLayers) {
			return fmt.Errorf("field layers_per_block (block %d) = %d: want 1 … %d", i, v, maxLayers)
		}
		if v := c.TransformerLayersPerBlock.At(i); !in(v, 1, maxLayers) {
			return fmt.Errorf("field transformer_layers_per_block (block %d) = %d: want 1 … %d", i, v, maxLayers)
		}
		if v := c.CrossAttentionDim.At(i); !in(v, 1, maxChannels) {
			return fmt.Errorf("field cross_attention_dim (block %d) = %d: want 1 … %d", i, v, maxChannels)
		}
	}
	if c.AdditionEmbedType != nil {
		// diffusers pools text states of width cross_attention_dim (one value).
		d := c.CrossAttentionDim.At(0)
		if h := c.AdditionEmbedTypeNumHeads; h < 1 || d%h != 0 {
			return fmt.Errorf("field addition_embed_type_num_heads = %d: want a number of heads dividing cross_attention_dim (%d)", h, d)
		}
		if c.CrossAttentionDim.List != nil && slices.ContainsFunc(c.CrossAttentionDim.List, func(v int) bool { return v != d }) {
			return fmt.Errorf("field cross_attention_dim: addition_embed_type \"text\" needs one width for every block, have %v", c.CrossAttentionDim.List)
		}
	}
	if c.BlockOutChannels[0] < 2 {
		return fmt.Errorf("field block_out_channels[0]: want ≥ 2 for the time projection")
	}
	return nil
}

// Marshal renders the config as diffusers writes it (with _class_name).
func (c ConditionConfig) Marshal() []byte {
	b, _ := json.Marshal(c)
	var m map[string]json.RawMessage
	json.Unmarshal(b, &m)
	m["_class_name"] = json.RawMessage(`"UNet2DConditionModel"`)
	out, _ := json.MarshalIndent(m, "", "  ")
	return append(out, '\n')
}
