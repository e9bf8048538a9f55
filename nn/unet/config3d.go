package unet

import (
	"encoding/json"
	"fmt"
	"os"
	"sort"
	"strings"
)

// UNet3DConfig is a UNet3D's config.json, in the UNet2DModel's style. Absent
// fields take the defaults of DefaultUNet3DConfig; keys starting with "_"
// are ignored and unknown keys are listed in Ignored.
type UNet3DConfig struct {
	SampleSize            int      `json:"sample_size"` // the side of the cubic volumes it was trained on (0: unknown)
	InChannels            int      `json:"in_channels"`
	OutChannels           int      `json:"out_channels"`
	BlockOutChannels      []int    `json:"block_out_channels"`
	LayersPerBlock        int      `json:"layers_per_block"`
	DownBlockTypes        []string `json:"down_block_types"` // DownBlock3D | AttnDownBlock3D
	UpBlockTypes          []string `json:"up_block_types"`   // UpBlock3D | AttnUpBlock3D
	MidBlockType          *string  `json:"mid_block_type"`   // UNetMidBlock3D or null
	AddAttention          bool     `json:"add_attention"`    // self-attention in the mid block
	AttentionHeadDim      *int     `json:"attention_head_dim"`
	NormNumGroups         int      `json:"norm_num_groups"`
	NormEps               float64  `json:"norm_eps"`
	FlipSinToCos          bool     `json:"flip_sin_to_cos"`
	FreqShift             float64  `json:"freq_shift"`
	UpsampleInterpolation string   `json:"upsample_interpolation"` // nearest | trilinear
	NumClassEmbeds        *int     `json:"num_class_embeds"`
	// PatchSize p folds each p×p×p block of voxels into channels before
	// conv_in and unfolds conv_out's channels after (space-to-depth, as
	// "simple diffusion", Hoogeboom et al. 2023, patches large images): the
	// U-Net then runs at 1/p of the resolution with in_channels·p³ inputs.
	PatchSize int `json:"patch_size"`

	Ignored []string `json:"-"`
}

// DefaultUNet3DConfig is a small class-conditional model for 32³ volumes.
func DefaultUNet3DConfig() UNet3DConfig {
	mid, head := "UNetMidBlock3D", 32
	return UNet3DConfig{
		SampleSize: 32, InChannels: 1, OutChannels: 1, BlockOutChannels: []int{32, 64, 64}, LayersPerBlock: 1,
		DownBlockTypes: []string{"DownBlock3D", "DownBlock3D", "DownBlock3D"},
		UpBlockTypes:   []string{"UpBlock3D", "UpBlock3D", "UpBlock3D"},
		MidBlockType:   &mid, AddAttention: true, AttentionHeadDim: &head, NormNumGroups: 8, NormEps: 1e-5,
		FlipSinToCos: true, UpsampleInterpolation: "trilinear", PatchSize: 1,
	}
}

var knownConfig3DKeys = func() map[string]bool {
	m := map[string]bool{}
	b, _ := json.Marshal(DefaultUNet3DConfig())
	var keys map[string]json.RawMessage
	json.Unmarshal(b, &keys)
	for k := range keys {
		m[k] = true
	}
	return m
}()

// ClassName3D is the _class_name a UNet3D's config.json carries.
const ClassName3D = "UNet3DModel"

// ParseUNet3DConfig parses config.json bytes; name is used in errors, which
// name the field.
func ParseUNet3DConfig(name string, data []byte) (UNet3DConfig, error) {
	cfg := DefaultUNet3DConfig()
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(data, &raw); err != nil {
		return cfg, fmt.Errorf("%s: not a JSON object: %v", name, err)
	}
	if c, ok := raw["_class_name"]; ok && !jsonEqual(c, `"`+ClassName3D+`"`) {
		return cfg, fmt.Errorf("%s: field _class_name is %s, want %q", name, c, ClassName3D)
	}
	for k, v := range raw {
		if !knownConfig3DKeys[k] {
			if !strings.HasPrefix(k, "_") {
				cfg.Ignored = append(cfg.Ignored, k)
			}
			continue
		}
		obj := append(append([]byte(`{"`+k+`":`), v...), '}')
		if err := json.Unmarshal(obj, &cfg); err != nil {
			return cfg, fmt.Errorf("%s: field %q: %v", name, k, err)
		}
	}
	sort.Strings(cfg.Ignored)
	if err := cfg.Validate(); err != nil {
		return cfg, fmt.Errorf("%s: %w", name, err)
	}
	return cfg, nil
}

// LoadUNet3DConfig reads a config.json file.
func LoadUNet3DConfig(path string) (UNet3DConfig, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return UNet3DConfig{}, err
	}
	return ParseUNet3DConfig(path, data)
}

// Marshal renders the config with _class_name.
func (c UNet3DConfig) Marshal() []byte {
	b, _ := json.Marshal(c)
	var m map[string]json.RawMessage
	json.Unmarshal(b, &m)
	m["_class_name"] = json.RawMessage(`"` + ClassName3D + `"`)
	out, _ := json.MarshalIndent(m, "", "  ")
	return append(out, '\n')
}

// Validate checks that the config describes a UNet3D this package can
// build, before anything is allocated; each error names the field.
func (c UNet3DConfig) Validate() error {
	n := len(c.BlockOutChannels)
	in := func(v, lo, hi int) bool { return v >= lo && v <= hi }
	switch {
	case n == 0 || n > 8:
		return fmt.Errorf("field block_out_channels: want 1 … 8 blocks, have %d", n)
	case len(c.DownBlockTypes) != n || len(c.UpBlockTypes) != n:
		return fmt.Errorf("fields down_block_types (%d) and up_block_types (%d): want one per block_out_channels entry (%d)",
			len(c.DownBlockTypes), len(c.UpBlockTypes), n)
	case !in(c.InChannels, 1, 64) || !in(c.OutChannels, 1, 64):
		return fmt.Errorf("fields in_channels/out_channels: want 1 … 64, have %d/%d", c.InChannels, c.OutChannels)
	case !in(c.LayersPerBlock, 1, 16):
		return fmt.Errorf("field layers_per_block: want 1 … 16, have %d", c.LayersPerBlock)
	case !in(c.NormNumGroups, 1, 1024):
		return fmt.Errorf("field norm_num_groups: want 1 … 1024, have %d", c.NormNumGroups)
	case !(c.NormEps > 0 && c.NormEps < 1):
		return fmt.Errorf("field norm_eps: want 0 < eps < 1, have %g", c.NormEps)
	case !in(c.SampleSize, 0, 1024):
		return fmt.Errorf("field sample_size: want 0 (unknown) … 1024, have %d", c.SampleSize)
	case c.UpsampleInterpolation != "nearest" && c.UpsampleInterpolation != "trilinear":
		return fmt.Errorf("field upsample_interpolation: want \"nearest\" or \"trilinear\", have %q", c.UpsampleInterpolation)
	case c.NumClassEmbeds != nil && !in(*c.NumClassEmbeds, 1, 1<<16):
		return fmt.Errorf("field num_class_embeds: want 1 … 65536 or null, have %d", *c.NumClassEmbeds)
	case c.MidBlockType != nil && *c.MidBlockType != "UNetMidBlock3D":
		return fmt.Errorf("field mid_block_type: want \"UNetMidBlock3D\" or null, have %q", *c.MidBlockType)
	case !in(c.PatchSize, 1, 4):
		return fmt.Errorf("field patch_size: want 1 … 4, have %d", c.PatchSize)
	case c.FreqShift != c.FreqShift:
		return fmt.Errorf("field freq_shift: NaN")
	}
	for i, ch := range c.BlockOutChannels {
		if !in(ch, 2, 4096) || ch%c.NormNumGroups != 0 {
			return fmt.Errorf("field block_out_channels[%d] = %d: want 2 … 4096, a multiple of norm_num_groups (%d)", i, ch, c.NormNumGroups)
		}
		if t := c.DownBlockTypes[i]; t != "DownBlock3D" && t != "AttnDownBlock3D" {
			return fmt.Errorf("field down_block_types[%d]: want DownBlock3D or AttnDownBlock3D, have %q", i, t)
		}
		if t := c.UpBlockTypes[i]; t != "UpBlock3D" && t != "AttnUpBlock3D" {
			return fmt.Errorf("field up_block_types[%d]: want UpBlock3D or AttnUpBlock3D, have %q", i, t)
		}
		if c.AttentionHeadDim != nil && (*c.AttentionHeadDim < 1 || ch%*c.AttentionHeadDim != 0) {
			return fmt.Errorf("field attention_head_dim = %d: want a divisor of block %d's %d channels, or null", *c.AttentionHeadDim, i, ch)
		}
	}
	if step := c.SideStep(); c.SampleSize > 0 && c.SampleSize%step != 0 {
		return fmt.Errorf("field sample_size = %d: want a multiple of %d (patch_size times one halving per down block)", c.SampleSize, step)
	}
	return nil
}

// SideStep is what every side of an input volume must be a multiple of:
// patch_size·2^(blocks-1).
func (c UNet3DConfig) SideStep() int { return c.PatchSize << (len(c.BlockOutChannels) - 1) }
