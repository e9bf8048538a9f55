// Package vae holds diffusers' AutoencoderKL, the latent autoencoder of
// Stable Diffusion 1.x and 2.x, built from its config.json with diffusers'
// state-dict keys (current and, through nn.ConvertLegacyKey, the 2022
// query/key/value/proj_attn names of the mid-block attention).
package vae

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/godiffuse/godiffuse/nn"
	"github.com/godiffuse/godiffuse/safetensors"
	"github.com/godiffuse/godiffuse/tensor"
)

// ---------------------------------------------------------------------------
// AutoencoderKL. Semantics point by point in
// shared/reference/sd/autoencoder_kl.py; in short (every GroupNorm eps 1e-6):
//
//	encoder: conv_in; per block resnets then (except last) pad (0,1,0,1) +
//	         stride-2 conv; mid (resnet, one-head attention, resnet);
//	         norm, silu, conv_out → 2·latent channels
//	quant_conv; mean, logvar = halves; logvar clamped to [−30, 20]
//	decoder: post_quant_conv; conv_in; mid; per reversed block resnets then
//	         (except last) nearest ×2 + conv; norm, silu, conv_out
// ---------------------------------------------------------------------------

// Config is diffusers' AutoencoderKL config.json.
type Config struct {
	InChannels           int      `json:"in_channels"`
	OutChannels          int      `json:"out_channels"`
	DownBlockTypes       []string `json:"down_block_types"`
	UpBlockTypes         []string `json:"up_block_types"`
	BlockOutChannels     []int    `json:"block_out_channels"`
	LayersPerBlock       int      `json:"layers_per_block"`
	ActFn                string   `json:"act_fn"`
	LatentChannels       int      `json:"latent_channels"`
	NormNumGroups        int      `json:"norm_num_groups"`
	SampleSize           any      `json:"sample_size"`
	ScalingFactor        float64  `json:"scaling_factor"`
	UseQuantConv         bool     `json:"use_quant_conv"`
	UsePostQuantConv     bool     `json:"use_post_quant_conv"`
	MidBlockAddAttention bool     `json:"mid_block_add_attention"`
	ForceUpcast          bool     `json:"force_upcast"`
	ShiftFactor          *float64 `json:"shift_factor"`
}

// DefaultConfig is diffusers' AutoencoderKL default.
func DefaultConfig() Config {
	return Config{InChannels: 3, OutChannels: 3, DownBlockTypes: []string{"DownEncoderBlock2D"},
		UpBlockTypes: []string{"UpDecoderBlock2D"}, BlockOutChannels: []int{64}, LayersPerBlock: 1, ActFn: "silu",
		LatentChannels: 4, NormNumGroups: 32, SampleSize: 32, ScalingFactor: 0.18215, UseQuantConv: true,
		UsePostQuantConv: true, MidBlockAddAttention: true, ForceUpcast: true}
}

const (
	maxChannels = 1 << 14
	maxBlocks   = 16
	maxLayers   = 64
)

// ParseConfig parses config.json bytes; name is used in errors.
func ParseConfig(name string, data []byte) (Config, error) {
	c := DefaultConfig()
	if err := json.Unmarshal(data, &c); err != nil {
		return c, fmt.Errorf("%s: not an AutoencoderKL config: %v", name, err)
	}
	var raw map[string]json.RawMessage
	json.Unmarshal(data, &raw)
	for _, k := range []string{"latents_mean", "latents_std"} {
		if v, ok := raw[k]; ok && strings.TrimSpace(string(v)) != "null" {
			return c, fmt.Errorf("%s: %s is not supported (SD 1.x/2.x VAEs have none)", name, k)
		}
	}
	if v, ok := raw["scaling_factor"]; ok && strings.TrimSpace(string(v)) == "null" {
		c.ScalingFactor = 0.18215
	}
	if err := c.Validate(); err != nil {
		return c, fmt.Errorf("%s: %w", name, err)
	}
	return c, nil
}

// Validate checks the config; errors name the field.
func (c Config) Validate() error {
	n := len(c.BlockOutChannels)
	in := func(v, lo, hi int) bool { return v >= lo && v <= hi }
	switch {
	case !in(n, 1, maxBlocks):
		return fmt.Errorf("field block_out_channels: want 1 … %d blocks, have %d", maxBlocks, n)
	case len(c.DownBlockTypes) != n || len(c.UpBlockTypes) != n:
		return fmt.Errorf("fields down_block_types (%d) and up_block_types (%d): want one per block_out_channels entry (%d)",
			len(c.DownBlockTypes), len(c.UpBlockTypes), n)
	case !in(c.InChannels, 1, maxChannels) || !in(c.OutChannels, 1, maxChannels) || !in(c.LatentChannels, 1, maxChannels):
		return fmt.Errorf("fields in_channels/out_channels/latent_channels: want 1 … %d, have %d/%d/%d", maxChannels,
			c.InChannels, c.OutChannels, c.LatentChannels)
	case !in(c.LayersPerBlock, 1, maxLayers):
		return fmt.Errorf("field layers_per_block: want 1 … %d, have %d", maxLayers, c.LayersPerBlock)
	case !in(c.NormNumGroups, 1, maxChannels):
		return fmt.Errorf("field norm_num_groups: want 1 … %d, have %d", maxChannels, c.NormNumGroups)
	case c.ActFn != "silu" && c.ActFn != "swish":
		return fmt.Errorf("field act_fn: only \"silu\" is supported, have %q", c.ActFn)
	case !(c.ScalingFactor > 0 && c.ScalingFactor < 1e6):
		return fmt.Errorf("field scaling_factor: want a positive number, have %g", c.ScalingFactor)
	case c.ShiftFactor != nil && *c.ShiftFactor != 0:
		return fmt.Errorf("field shift_factor = %g is not supported (SD 1.x/2.x VAEs have none)", *c.ShiftFactor)
	}
	for i, ch := range c.BlockOutChannels {
		if !in(ch, 1, maxChannels) || ch%c.NormNumGroups != 0 {
			return fmt.Errorf("field block_out_channels[%d] = %d: want a multiple of norm_num_groups (%d) up to %d", i, ch, c.NormNumGroups, maxChannels)
		}
		if c.DownBlockTypes[i] != "DownEncoderBlock2D" {
			return fmt.Errorf("field down_block_types[%d]: only DownEncoderBlock2D is supported, have %q", i, c.DownBlockTypes[i])
		}
		if c.UpBlockTypes[i] != "UpDecoderBlock2D" {
			return fmt.Errorf("field up_block_types[%d]: only UpDecoderBlock2D is supported, have %q", i, c.UpBlockTypes[i])
		}
	}
	return nil
}

// AutoencoderKL is the VAE.
type AutoencoderKL struct {
	Config        Config
	Device        tensor.Device
	Encoder       *Coder
	Decoder       *Coder
	QuantConv     *nn.Conv2d // nil without use_quant_conv
	PostQuantConv *nn.Conv2d // nil without use_post_quant_conv
}

// Coder is the encoder or the decoder: conv_in, blocks, mid block, output.
type Coder struct {
	ConvIn      *nn.Conv2d
	Blocks      []*Block
	MidResnets  [2]*nn.ResnetBlock2D
	MidAttn     *nn.Attention // nil without mid_block_add_attention
	ConvNormOut *nn.GroupNorm
	ConvOut     *nn.Conv2d
	decoder     bool
}

// Block is DownEncoderBlock2D (Resample a stride-2 conv) or UpDecoderBlock2D
// (Resample the conv after nearest ×2); Resample is nil in the last block.
type Block struct {
	Resnets  []*nn.ResnetBlock2D
	Resample *nn.Conv2d
}

const eps = 1e-6

// New builds the VAE initialised from seed (training from scratch).
func New(dev tensor.Device, c Config, seed uint64) (*AutoencoderKL, error) {
	return newVAE(dev, c, rand.New(rand.NewPCG(seed, 0x5eed)))
}

// Build builds the module tree with zero parameters awaiting weights.
func Build(dev tensor.Device, c Config) (*AutoencoderKL, error) { return newVAE(dev, c, nil) }

func newVAE(dev tensor.Device, c Config, r *rand.Rand) (*AutoencoderKL, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	ch, n, g, L := c.BlockOutChannels, len(c.BlockOutChannels), c.NormNumGroups, c.LatentChannels
	resnet := func(in, out int) *nn.ResnetBlock2D {
		return nn.NewResnetBlock2D(dev, r, nn.ResnetConfig{In: in, Out: out, Groups: g, Eps: eps, Act: "silu"})
	}
	conv3 := func(in, out int) *nn.Conv2d { return nn.NewConv2d(dev, r, in, out, 3, 1, tensor.PadAll(1)) }
	mid := func(cd *Coder) {
		last := ch[n-1]
		cd.MidResnets = [2]*nn.ResnetBlock2D{resnet(last, last), resnet(last, last)}
		if c.MidBlockAddAttention {
			cd.MidAttn = nn.NewSpatialAttention(dev, r, last, last, g, eps)
		}
	}
	enc := &Coder{ConvIn: conv3(c.InChannels, ch[0])}
	for i := range n {
		b := &Block{}
		for j := range c.LayersPerBlock {
			in := ch[i]
			if j == 0 {
				in = ch[max(i-1, 0)]
			}
			b.Resnets = append(b.Resnets, resnet(in, ch[i]))
		}
		if i < n-1 {
			b.Resample = nn.NewConv2d(dev, r, ch[i], ch[i], 3, 2, tensor.Pad4{0, 1, 0, 1})
		}
		enc.Blocks = append(enc.Blocks, b)
	}
	mid(enc)
	enc.ConvNormOut = nn.NewGroupNorm(dev, g, ch[n-1], eps)
	enc.ConvOut = conv3(ch[n-1], 2*L)

	rch := slices.Clone(ch)
	slices.Reverse(rch)
	dec := &Coder{ConvIn: conv3(L, ch[n-1]), decoder: true}
	for i := range n {
		b := &Block{}
		for j := range c.LayersPerBlock + 1 {
			in := rch[i]
			if j == 0 {
				in = rch[max(i-1, 0)]
			}
			b.Resnets = append(b.Resnets, resnet(in, rch[i]))
		}
		if i < n-1 {
			b.Resample = conv3(rch[i], rch[i])
		}
		dec.Blocks = append(dec.Blocks, b)
	}
	mid(dec)
	dec.ConvNormOut = nn.NewGroupNorm(dev, g, ch[0], eps)
	dec.ConvOut = conv3(ch[0], c.OutChannels)

	v := &AutoencoderKL{Config: c, Device: dev, Encoder: enc, Decoder: dec}
	if c.UseQuantConv {
		v.QuantConv = nn.NewConv2d(dev, r, 2*L, 2*L, 1, 1, tensor.PadAll(0))
	}
	if c.UsePostQuantConv {
		v.PostQuantConv = nn.NewConv2d(dev, r, L, L, 1, 1, tensor.PadAll(0))
	}
	return v, nil
}

// Params lists the parameters in diffusers' state-dict order.
func (v *AutoencoderKL) Params() []nn.Param {
	var ps nn.ParamList
	v.Encoder.collect("encoder.", &ps)
	v.Decoder.collect("decoder.", &ps)
	if v.QuantConv != nil {
		v.QuantConv.Collect("quant_conv.", &ps)
	}
	if v.PostQuantConv != nil {
		v.PostQuantConv.Collect("post_quant_conv.", &ps)
	}
	return ps
}

func (cd *Coder) collect(prefix string, ps *nn.ParamList) {
	cd.ConvIn.Collect(prefix+"conv_in.", ps)
	blocks := func() {
		kind, resample := "down_blocks", "downsamplers"
		if cd.decoder {
			kind, resample = "up_blocks", "upsamplers"
		}
		for i, b := range cd.Blocks {
			p := fmt.Sprintf("%s%s.%d.", prefix, kind, i)
			for j, r := range b.Resnets {
				r.Collect(fmt.Sprintf("%sresnets.%d.", p, j), ps)
			}
			if b.Resample != nil {
				b.Resample.Collect(p+resample+".0.conv.", ps)
			}
		}
	}
	mid := func() {
		if cd.MidAttn != nil {
			cd.MidAttn.Collect(prefix+"mid_block.attentions.0.", ps)
		}
		cd.MidResnets[0].Collect(prefix+"mid_block.resnets.0.", ps)
		cd.MidResnets[1].Collect(prefix+"mid_block.resnets.1.", ps)
	}
	blocks() // the decoder's up_blocks too are registered before its mid_block
	mid()
	cd.ConvNormOut.Collect(prefix+"conv_norm_out.", ps)
	cd.ConvOut.Collect(prefix+"conv_out.", ps)
}

func (cd *Coder) forward(x *tensor.Tensor) *tensor.Tensor {
	// Each layer's output replaces h; in inference the one it replaces (never
	// x, the caller's) goes back to the device (tensor.Release), which at
	// 512×512 spares clearing 134 MB per decoder activation.
	h := cd.ConvIn.Forward(x)
	next := func(out *tensor.Tensor) {
		tensor.Release(h)
		h = out
	}
	mid := func() {
		next(cd.MidResnets[0].Forward(h, nil))
		if cd.MidAttn != nil {
			next(cd.MidAttn.Forward(h))
		}
		next(cd.MidResnets[1].Forward(h, nil))
	}
	if cd.decoder {
		mid()
	}
	for _, b := range cd.Blocks {
		for _, r := range b.Resnets {
			next(r.Forward(h, nil))
		}
		if b.Resample != nil {
			if cd.decoder {
				next(tensor.Upsample2x(h))
			}
			next(b.Resample.Forward(h))
			if cd.decoder {
				// The next level's activations are 4× the length of this
				// one's: what this level released is of no use to the rest
				// of the decode, and at 512×512 it had held 1.2 GB of such
				// arrays by its last level. (The encoder's levels shrink:
				// its first level is its peak.)
				tensor.ForgetRecycled(h.Device())
			}
		}
	}
	if !cd.decoder {
		mid()
	}
	next(cd.ConvNormOut.ForwardAct(h, "silu"))
	out := cd.ConvOut.Forward(h)
	tensor.Release(h)
	return out
}

// DownFactor is the ratio of image to latent size, 2^(blocks−1).
func (v *AutoencoderKL) DownFactor() int { return 1 << (len(v.Config.BlockOutChannels) - 1) }

// Encode maps images x (B, in_channels, H, W) in [−1, 1] to the mean and the
// clamped log-variance of the latent distribution (B, latent, H/f, W/f).
func (v *AutoencoderKL) Encode(x *tensor.Tensor) (mean, logvar *tensor.Tensor, err error) {
	f := v.DownFactor()
	if x.Rank() != 4 || x.Dim(1) != v.Config.InChannels || x.Dim(2)%f != 0 || x.Dim(3)%f != 0 || x.Dim(2) == 0 || x.Dim(3) == 0 {
		return nil, nil, fmt.Errorf("vae: image %v, want (B, %d, H, W) with H and W multiples of %d", x.Shape(), v.Config.InChannels, f)
	}
	err = tensor.Catch(func() {
		h := v.Encoder.forward(x)
		if v.QuantConv != nil {
			q := v.QuantConv.Forward(h)
			tensor.Release(h)
			h = q
		}
		L := v.Config.LatentChannels
		parts := tensor.Split(h, 1, L, L)
		mean, logvar = parts[0], tensor.Clamp(parts[1], -30, 20)
	})
	return mean, logvar, err
}

// Decode maps latents z (B, latent, h, w) to images (B, out_channels, f·h, f·w).
func (v *AutoencoderKL) Decode(z *tensor.Tensor) (img *tensor.Tensor, err error) {
	if z.Rank() != 4 || z.Dim(1) != v.Config.LatentChannels || z.Dim(2) == 0 || z.Dim(3) == 0 {
		return nil, fmt.Errorf("vae: latents %v, want (B, %d, h, w)", z.Shape(), v.Config.LatentChannels)
	}
	err = tensor.Catch(func() {
		if v.PostQuantConv == nil {
			img = v.Decoder.forward(z)
			return
		}
		pq := v.PostQuantConv.Forward(z)
		img = v.Decoder.forward(pq)
		tensor.Release(pq)
	})
	return img, err
}

// NoGrad turns gradients off for inference; call the result to restore them.
func (v *AutoencoderKL) NoGrad() (restore func()) { return nn.NoGrad(v.Params()) }

// Load reads a diffusers vae/ folder (config.json and
// diffusion_pytorch_model[.fp16].safetensors), its weights kept as storage says.
func Load(dev tensor.Device, dir string, storage nn.Storage) (*AutoencoderKL, error) {
	cfgPath := filepath.Join(dir, "config.json")
	b, err := os.ReadFile(cfgPath)
	if err != nil {
		return nil, fmt.Errorf("vae: %w", err)
	}
	c, err := ParseConfig(cfgPath, b)
	if err != nil {
		return nil, err
	}
	weights, err := nn.FindWeights(dir, "diffusion_pytorch_model")
	if err != nil {
		return nil, fmt.Errorf("vae: %w", err)
	}
	st, err := safetensors.Read(weights)
	if err != nil {
		return nil, err
	}
	defer st.Close()
	v, err := newVAE(tensor.ShapesOnly(), c, nil) // parameters get their buffers as they load
	if err != nil {
		return nil, fmt.Errorf("%s: %w", dir, err)
	}
	v.Device = dev
	if err := nn.LoadParams(v.Params(), st, nn.LoadOptions{Rename: nn.ConvertLegacyKey, Storage: storage, Device: dev}); err != nil {
		return nil, err
	}
	return v, nil
}
