package nn

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"sort"
	"strings"
)

// UNet2DConfig is diffusers' UNet2DModel config.json. Fields absent from the
// file take diffusers' defaults; keys starting with "_" are ignored and
// unknown keys only warn, as in diffusers.
type UNet2DConfig struct {
	SampleSize           json.RawMessage `json:"sample_size"`
	InChannels           int             `json:"in_channels"`
	OutChannels          int             `json:"out_channels"`
	CenterInputSample    bool            `json:"center_input_sample"`
	TimeEmbeddingType    string          `json:"time_embedding_type"`
	TimeEmbeddingDim     *int            `json:"time_embedding_dim"`
	FreqShift            float64         `json:"freq_shift"`
	FlipSinToCos         bool            `json:"flip_sin_to_cos"`
	DownBlockTypes       []string        `json:"down_block_types"`
	MidBlockType         *string         `json:"mid_block_type"`
	UpBlockTypes         []string        `json:"up_block_types"`
	BlockOutChannels     []int           `json:"block_out_channels"`
	LayersPerBlock       int             `json:"layers_per_block"`
	MidBlockScaleFactor  float64         `json:"mid_block_scale_factor"`
	DownsamplePadding    int             `json:"downsample_padding"`
	DownsampleType       string          `json:"downsample_type"`
	UpsampleType         string          `json:"upsample_type"`
	Dropout              float64         `json:"dropout"`
	ActFn                string          `json:"act_fn"`
	AttentionHeadDim     *int            `json:"attention_head_dim"`
	NormNumGroups        int             `json:"norm_num_groups"`
	AttnNormNumGroups    *int            `json:"attn_norm_num_groups"`
	NormEps              float64         `json:"norm_eps"`
	ResnetTimeScaleShift string          `json:"resnet_time_scale_shift"`
	AddAttention         bool            `json:"add_attention"`
	ClassEmbedType       *string         `json:"class_embed_type"`
	NumClassEmbeds       *int            `json:"num_class_embeds"`
	NumTrainTimesteps    *int            `json:"num_train_timesteps"`

	// Ignored lists the file's keys this package does not know (diffusers
	// warns about them); they are not used. The library does not log them.
	Ignored []string `json:"-"`
}

func ptr[T any](v T) *T { return &v }

// DefaultUNet2DConfig returns diffusers' UNet2DModel defaults.
func DefaultUNet2DConfig() UNet2DConfig {
	return UNet2DConfig{
		SampleSize: json.RawMessage("null"), InChannels: 3, OutChannels: 3,
		TimeEmbeddingType: "positional", FreqShift: 0, FlipSinToCos: true,
		DownBlockTypes:   []string{"DownBlock2D", "AttnDownBlock2D", "AttnDownBlock2D", "AttnDownBlock2D"},
		MidBlockType:     ptr("UNetMidBlock2D"),
		UpBlockTypes:     []string{"AttnUpBlock2D", "AttnUpBlock2D", "AttnUpBlock2D", "UpBlock2D"},
		BlockOutChannels: []int{224, 448, 672, 896}, LayersPerBlock: 2, MidBlockScaleFactor: 1,
		DownsamplePadding: 1, DownsampleType: "conv", UpsampleType: "conv", ActFn: "silu",
		AttentionHeadDim: ptr(8), NormNumGroups: 32, NormEps: 1e-5,
		ResnetTimeScaleShift: "default", AddAttention: true,
	}
}

var knownConfigKeys = func() map[string]bool {
	m := map[string]bool{}
	b, _ := json.Marshal(DefaultUNet2DConfig())
	var keys map[string]json.RawMessage
	json.Unmarshal(b, &keys)
	for k := range keys {
		m[k] = true
	}
	return m
}()

// ParseUNet2DConfig parses config.json bytes; name is used in errors.
func ParseUNet2DConfig(name string, data []byte) (UNet2DConfig, error) {
	cfg := DefaultUNet2DConfig()
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(data, &raw); err != nil {
		return cfg, fmt.Errorf("%s: not a JSON object: %v", name, err)
	}
	var unknown []string
	for k := range raw {
		if !strings.HasPrefix(k, "_") && !knownConfigKeys[k] {
			unknown = append(unknown, k)
		}
	}
	sort.Strings(unknown)
	cfg.Ignored = unknown
	// Decode field by field so an error names the field.
	for k, v := range raw {
		if !knownConfigKeys[k] {
			continue
		}
		obj := append(append([]byte(`{"`+k+`":`), v...), '}')
		if err := json.Unmarshal(obj, &cfg); err != nil {
			return cfg, fmt.Errorf("%s: field %q: %v", name, k, unwrapJSON(err))
		}
	}
	if err := cfg.Validate(); err != nil {
		return cfg, fmt.Errorf("%s: %w", name, err)
	}
	return cfg, nil
}

func unwrapJSON(err error) string {
	if te, ok := err.(*json.UnmarshalTypeError); ok {
		return fmt.Sprintf("got a JSON %s, want %s", te.Value, te.Type)
	}
	return err.Error()
}

// LoadUNet2DConfig reads a config.json file.
func LoadUNet2DConfig(path string) (UNet2DConfig, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return UNet2DConfig{}, err
	}
	return ParseUNet2DConfig(path, data)
}

// Marshal renders the config as diffusers writes it (with _class_name).
func (c UNet2DConfig) Marshal() []byte {
	b, _ := json.Marshal(c)
	var m map[string]json.RawMessage
	json.Unmarshal(b, &m)
	m["_class_name"] = json.RawMessage(`"UNet2DModel"`)
	out, _ := json.MarshalIndent(m, "", "  ")
	return append(out, '\n')
}

// SampleHW returns sample_size as (height, width), with ok false when null.
func (c UNet2DConfig) SampleHW() (h, w int, ok bool) {
	s := bytes.TrimSpace(c.SampleSize)
	if len(s) == 0 || string(s) == "null" {
		return 0, 0, false
	}
	var n int
	if json.Unmarshal(s, &n) == nil {
		return n, n, true
	}
	var p []int
	if json.Unmarshal(s, &p) == nil && len(p) == 2 {
		return p[0], p[1], true
	}
	return 0, 0, false
}

func blockType(name string) string { return strings.TrimPrefix(name, "UNetRes") }

// Validate checks that the config describes a U-Net this package can build;
// each error names the field and what was expected.
func (c UNet2DConfig) Validate() error {
	n := len(c.BlockOutChannels)
	if err := c.checkBounds(); err != nil {
		return err
	}
	switch {
	case n == 0:
		return fmt.Errorf("field block_out_channels: want at least one block")
	case len(c.DownBlockTypes) != n || len(c.UpBlockTypes) != n:
		return fmt.Errorf("fields down_block_types (%d) and up_block_types (%d): want one per block_out_channels entry (%d)",
			len(c.DownBlockTypes), len(c.UpBlockTypes), n)
	case c.InChannels < 1 || c.OutChannels < 1:
		return fmt.Errorf("fields in_channels/out_channels: want ≥ 1, have %d/%d", c.InChannels, c.OutChannels)
	case c.LayersPerBlock < 1:
		return fmt.Errorf("field layers_per_block: want ≥ 1, have %d", c.LayersPerBlock)
	case c.TimeEmbeddingType != "positional":
		return fmt.Errorf("field time_embedding_type: only \"positional\" is supported, have %q", c.TimeEmbeddingType)
	case c.ClassEmbedType != nil:
		return fmt.Errorf("field class_embed_type: only null (a learned table with num_class_embeds) is supported, have %q", *c.ClassEmbedType)
	case c.DownsampleType != "conv" || c.UpsampleType != "conv":
		return fmt.Errorf("fields downsample_type/upsample_type: only \"conv\" is supported, have %q/%q", c.DownsampleType, c.UpsampleType)
	case c.ResnetTimeScaleShift != "default" && c.ResnetTimeScaleShift != "scale_shift":
		return fmt.Errorf("field resnet_time_scale_shift: want \"default\" or \"scale_shift\", have %q", c.ResnetTimeScaleShift)
	case c.NormNumGroups < 1:
		return fmt.Errorf("field norm_num_groups: want ≥ 1, have %d", c.NormNumGroups)
	case c.NormEps <= 0:
		return fmt.Errorf("field norm_eps: want > 0, have %g", c.NormEps)
	case c.MidBlockScaleFactor == 0:
		return fmt.Errorf("field mid_block_scale_factor: want non-zero")
	case c.Dropout < 0 || c.Dropout >= 1:
		return fmt.Errorf("field dropout: want 0 ≤ p < 1, have %g", c.Dropout)
	case c.DownsamplePadding < 0:
		return fmt.Errorf("field downsample_padding: want ≥ 0, have %d", c.DownsamplePadding)
	case c.NumClassEmbeds != nil && *c.NumClassEmbeds < 1:
		return fmt.Errorf("field num_class_embeds: want ≥ 1 or null, have %d", *c.NumClassEmbeds)
	case c.TimeEmbeddingDim != nil && *c.TimeEmbeddingDim < 1:
		return fmt.Errorf("field time_embedding_dim: want ≥ 1 or null")
	}
	if c.MidBlockType != nil && blockType(*c.MidBlockType) != "UNetMidBlock2D" {
		return fmt.Errorf("field mid_block_type: want \"UNetMidBlock2D\" or null, have %q", *c.MidBlockType)
	}
	switch c.ActFn {
	case "silu", "swish", "gelu", "relu", "sigmoid", "tanh":
	default:
		return fmt.Errorf("field act_fn: unsupported activation %q", c.ActFn)
	}
	for i, ch := range c.BlockOutChannels {
		if ch < 1 || ch%c.NormNumGroups != 0 {
			return fmt.Errorf("field block_out_channels[%d] = %d: want a positive multiple of norm_num_groups (%d)", i, ch, c.NormNumGroups)
		}
		if t := blockType(c.DownBlockTypes[i]); t != "DownBlock2D" && t != "AttnDownBlock2D" {
			return fmt.Errorf("field down_block_types[%d]: want DownBlock2D or AttnDownBlock2D, have %q", i, c.DownBlockTypes[i])
		}
		if t := blockType(c.UpBlockTypes[i]); t != "UpBlock2D" && t != "AttnUpBlock2D" {
			return fmt.Errorf("field up_block_types[%d]: want UpBlock2D or AttnUpBlock2D, have %q", i, c.UpBlockTypes[i])
		}
		if c.AttentionHeadDim != nil && (*c.AttentionHeadDim < 1 || *c.AttentionHeadDim > ch) {
			return fmt.Errorf("field attention_head_dim = %d: want 1 … %d (block %d's channels) or null", *c.AttentionHeadDim, ch, i)
		}
	}
	if c.AttnNormNumGroups != nil && (*c.AttnNormNumGroups < 1 || c.BlockOutChannels[n-1]%*c.AttnNormNumGroups != 0) {
		return fmt.Errorf("field attn_norm_num_groups = %d: want a divisor of %d", *c.AttnNormNumGroups, c.BlockOutChannels[n-1])
	}
	if c.BlockOutChannels[0] < 2 {
		return fmt.Errorf("field block_out_channels[0]: want ≥ 2 for the time projection")
	}
	return nil
}

// Bounds every UNet2D config must respect, checked before anything is
// allocated (model files come from the internet).
const (
	MaxChannels  = 1 << 14
	maxBlocks    = 16
	maxLayers    = 64
	maxClasses   = 1 << 20
	maxImageSide = 1 << 14
	// MaxParams bounds the parameters a config may describe (16 GiB of float32).
	MaxParams = 4 << 30
)

func (c UNet2DConfig) checkBounds() error {
	in := func(v, lo, hi int) bool { return v >= lo && v <= hi }
	switch {
	case len(c.BlockOutChannels) > maxBlocks:
		return fmt.Errorf("field block_out_channels: %d blocks, want at most %d", len(c.BlockOutChannels), maxBlocks)
	case !in(c.InChannels, 1, MaxChannels) || !in(c.OutChannels, 1, MaxChannels):
		return fmt.Errorf("fields in_channels/out_channels: want 1 … %d, have %d/%d", MaxChannels, c.InChannels, c.OutChannels)
	case !in(c.LayersPerBlock, 1, maxLayers):
		return fmt.Errorf("field layers_per_block: want 1 … %d, have %d", maxLayers, c.LayersPerBlock)
	case !in(c.NormNumGroups, 1, MaxChannels):
		return fmt.Errorf("field norm_num_groups: want 1 … %d, have %d", MaxChannels, c.NormNumGroups)
	case c.NumClassEmbeds != nil && !in(*c.NumClassEmbeds, 1, maxClasses):
		return fmt.Errorf("field num_class_embeds: want 1 … %d or null, have %d", maxClasses, *c.NumClassEmbeds)
	case c.TimeEmbeddingDim != nil && !in(*c.TimeEmbeddingDim, 1, 4*MaxChannels):
		return fmt.Errorf("field time_embedding_dim: want 1 … %d or null, have %d", 4*MaxChannels, *c.TimeEmbeddingDim)
	case c.AttnNormNumGroups != nil && !in(*c.AttnNormNumGroups, 1, MaxChannels):
		return fmt.Errorf("field attn_norm_num_groups: want 1 … %d or null, have %d", MaxChannels, *c.AttnNormNumGroups)
	case c.NumTrainTimesteps != nil && !in(*c.NumTrainTimesteps, 2, 100_000):
		return fmt.Errorf("field num_train_timesteps: want 2 … 100000 or null, have %d", *c.NumTrainTimesteps)
	case c.Dropout != c.Dropout || c.NormEps != c.NormEps || c.MidBlockScaleFactor != c.MidBlockScaleFactor:
		return fmt.Errorf("fields dropout/norm_eps/mid_block_scale_factor: NaN")
	}
	for i, ch := range c.BlockOutChannels {
		if !in(ch, 1, MaxChannels) {
			return fmt.Errorf("field block_out_channels[%d] = %d: want 1 … %d", i, ch, MaxChannels)
		}
	}
	if s := bytes.TrimSpace(c.SampleSize); len(s) > 0 && string(s) != "null" {
		h, w, ok := c.SampleHW()
		if !ok || !in(h, 1, maxImageSide) || !in(w, 1, maxImageSide) {
			return fmt.Errorf("field sample_size %s: want a size (or [h, w]) of 1 … %d", s, maxImageSide)
		}
	}
	return nil
}
