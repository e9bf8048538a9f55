package unet

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"

	"github.com/godiffuse/godiffuse/internal/atomicfile"
	"github.com/godiffuse/godiffuse/nn"
	"github.com/godiffuse/godiffuse/safetensors"
	"github.com/godiffuse/godiffuse/tensor"
)

// ---------------------------------------------------------------------------
// UNet3D: the UNet2DModel's structure in three dimensions, for volumes
// (N, C, D, H, W). Every piece is the 2-D one with its convolutions made
// 3×3×3 and its resampling volumetric:
//
//	conv_in → down blocks (ResNet blocks with the time (+ class) embedding,
//	optional self-attention, a stride-2 3×3×3 convolution between levels)
//	→ mid block (resnet, attention, resnet) → up blocks (each resnet takes
//	cat([h, skip]); ×2 nearest or trilinear upsampling + 3×3×3 convolution)
//	→ GroupNorm, SiLU, conv_out.
//
// Attention treats every voxel as a token. Parameters carry the UNet2DModel's
// names (down_blocks.0.resnets.0.conv1.weight, …), so the safetensors files
// read like a diffusers U-Net's; the config names the blocks DownBlock3D,
// AttnDownBlock3D, UpBlock3D, AttnUpBlock3D and UNetMidBlock3D.
//
// The training loop and the samplers of package ddpm move images (B, C, H, W);
// a volume travels through them as the stack of its slices (B, C, D·H, W),
// and Forward takes either shape and answers in the one it was given.
// ---------------------------------------------------------------------------

// UNet3D is a volumetric U-Net built from a UNet3DConfig.
type UNet3D struct {
	Config         UNet3DConfig
	Device         tensor.Device
	ConvIn         *nn.Conv3d
	TimeEmbedding  *nn.TimestepEmbedding
	ClassEmbedding *nn.Embedding // nil without num_class_embeds
	DownBlocks     []*Block3D
	MidResnets     []*ResnetBlock3D // two, or none without a mid block
	MidAttention   *nn.Attention    // nil without add_attention
	UpBlocks       []*Block3D
	ConvNormOut    *nn.GroupNorm
	ConvOut        *nn.Conv3d
}

// Block3D is a down or up block: resnets, their attentions (nil for the
// plain blocks) and the resampling convolution (nil at the last level).
type Block3D struct {
	Resnets    []*ResnetBlock3D
	Attentions []*nn.Attention
	Resample   *nn.Conv3d
}

// ResnetBlock3D is nn.ResnetBlock2D with 3×3×3 convolutions:
//
//	h = conv1(SiLU(norm1(x)));  h = conv2(SiLU(norm2(h + time_emb_proj(SiLU(emb)))))
//	out = shortcut(x) + h
type ResnetBlock3D struct {
	Norm1, Norm2 *nn.GroupNorm
	Conv1, Conv2 *nn.Conv3d
	TimeEmbProj  *nn.Linear
	ConvShortcut *nn.Conv3d // 1×1×1, nil when in == out channels
}

func newResnet3D(dev tensor.Device, r *rand.Rand, in, out, temb, groups int, eps float32) *ResnetBlock3D {
	b := &ResnetBlock3D{
		Norm1: nn.NewGroupNorm(dev, groups, in, eps), Conv1: nn.NewConv3d(dev, r, in, out, 3, 1, 1),
		Norm2: nn.NewGroupNorm(dev, groups, out, eps), Conv2: nn.NewConv3d(dev, r, out, out, 3, 1, 1),
		TimeEmbProj: nn.NewLinear(dev, r, temb, out, true),
	}
	if in != out {
		b.ConvShortcut = nn.NewConv3d(dev, r, in, out, 1, 1, 0)
	}
	return b
}

// Forward runs the block on x (B, C, D, H, W) with emb (B, temb).
// In inference each intermediate is released once read (tensor.Release).
func (b *ResnetBlock3D) Forward(x, emb *tensor.Tensor) *tensor.Tensor {
	n := b.Norm1.ForwardAct(x, "silu")
	h := b.Conv1.Forward(n)
	tensor.Release(n)
	e := b.TimeEmbProj.Forward(tensor.SiLU(emb))
	n = b.Norm2.ForwardAct(tensor.AddInPlace(h, e.Reshape(e.Dim(0), e.Dim(1), 1, 1, 1)), "silu") // h: conv1's fresh output
	tensor.Release(h)
	h = b.Conv2.Forward(n)
	tensor.Release(n)
	skip := x
	if b.ConvShortcut != nil {
		skip = b.ConvShortcut.Forward(x)
	}
	out := tensor.AddInPlace(h, skip) // h: conv2's fresh output
	if skip != x {
		tensor.Release(skip)
	}
	return out
}

func (b *ResnetBlock3D) Collect(prefix string, ps *nn.ParamList) {
	b.Norm1.Collect(prefix+"norm1.", ps)
	b.Conv1.Collect(prefix+"conv1.", ps)
	b.TimeEmbProj.Collect(prefix+"time_emb_proj.", ps)
	b.Norm2.Collect(prefix+"norm2.", ps)
	b.Conv2.Collect(prefix+"conv2.", ps)
	if b.ConvShortcut != nil {
		b.ConvShortcut.Collect(prefix+"conv_shortcut.", ps)
	}
}

// attend runs spatial self-attention over the voxels of x (B, C, D, H, W):
// nn.Attention sees the volume as an image of D·H rows.
func attend(a *nn.Attention, x *tensor.Tensor) *tensor.Tensor {
	s := x.Shape()
	return a.Forward(x.Reshape(s[0], s[1], s[2]*s[3], s[4])).Reshape(s...)
}

// NewUNet3D builds a UNet3D with PyTorch's default initialisation drawn from seed.
func NewUNet3D(dev tensor.Device, cfg UNet3DConfig, seed uint64) (*UNet3D, error) {
	return newUNet3D(dev, cfg, rand.New(rand.NewPCG(seed, 0x3d5eed)))
}

func newUNet3D(dev tensor.Device, cfg UNet3DConfig, r *rand.Rand) (*UNet3D, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	ch, n, L := cfg.BlockOutChannels, len(cfg.BlockOutChannels), cfg.LayersPerBlock
	g, eps := cfg.NormNumGroups, float32(cfg.NormEps)
	temb := 4 * ch[0]
	headDim := func(c int) int {
		if cfg.AttentionHeadDim != nil {
			return *cfg.AttentionHeadDim
		}
		return c
	}
	m := &UNet3D{Config: cfg, Device: dev}
	p3 := cfg.PatchSize * cfg.PatchSize * cfg.PatchSize
	m.ConvIn = nn.NewConv3d(dev, r, cfg.InChannels*p3, ch[0], 3, 1, 1)
	m.TimeEmbedding = &nn.TimestepEmbedding{Linear1: nn.NewLinear(dev, r, ch[0], temb, true), Linear2: nn.NewLinear(dev, r, temb, temb, true)}
	if cfg.NumClassEmbeds != nil {
		m.ClassEmbedding = nn.NewEmbedding(dev, r, *cfg.NumClassEmbeds, temb)
	}
	for i, t := range cfg.DownBlockTypes {
		in, out := ch[max(i-1, 0)], ch[i]
		b := &Block3D{}
		for j := range L {
			cin := out
			if j == 0 {
				cin = in
			}
			b.Resnets = append(b.Resnets, newResnet3D(dev, r, cin, out, temb, g, eps))
		}
		if t == "AttnDownBlock3D" {
			for range L {
				b.Attentions = append(b.Attentions, nn.NewSpatialAttention(dev, r, out, headDim(out), g, eps))
			}
		}
		if i < n-1 {
			b.Resample = nn.NewConv3d(dev, r, out, out, 3, 2, 1)
		}
		m.DownBlocks = append(m.DownBlocks, b)
	}
	if cfg.MidBlockType != nil {
		c := ch[n-1]
		m.MidResnets = []*ResnetBlock3D{newResnet3D(dev, r, c, c, temb, g, eps), nil}
		if cfg.AddAttention {
			m.MidAttention = nn.NewSpatialAttention(dev, r, c, headDim(c), g, eps)
		}
		m.MidResnets[1] = newResnet3D(dev, r, c, c, temb, g, eps)
	}
	for i, t := range cfg.UpBlockTypes {
		ins, out := nn.UpResnetChannels(ch, i, L+1)
		b := &Block3D{}
		for _, in := range ins {
			b.Resnets = append(b.Resnets, newResnet3D(dev, r, in, out, temb, g, eps))
		}
		if t == "AttnUpBlock3D" {
			for range L + 1 {
				b.Attentions = append(b.Attentions, nn.NewSpatialAttention(dev, r, out, headDim(out), g, eps))
			}
		}
		if i < n-1 {
			b.Resample = nn.NewConv3d(dev, r, out, out, 3, 1, 1)
		}
		m.UpBlocks = append(m.UpBlocks, b)
	}
	m.ConvNormOut = nn.NewGroupNorm(dev, g, ch[0], eps)
	m.ConvOut = nn.NewConv3d(dev, r, ch[0], cfg.OutChannels*p3, 3, 1, 1)
	return m, nil
}

// Params lists the parameters in the UNet2DModel's state-dict order.
func (m *UNet3D) Params() []nn.Param {
	var ps nn.ParamList
	m.ConvIn.Collect("conv_in.", &ps)
	m.TimeEmbedding.Collect("time_embedding.", &ps)
	if m.ClassEmbedding != nil {
		m.ClassEmbedding.Collect("class_embedding.", &ps)
	}
	collect := func(prefix, resample string, b *Block3D) {
		for i, a := range b.Attentions {
			a.Collect(fmt.Sprintf("%sattentions.%d.", prefix, i), &ps)
		}
		for i, r := range b.Resnets {
			r.Collect(fmt.Sprintf("%sresnets.%d.", prefix, i), &ps)
		}
		if b.Resample != nil {
			b.Resample.Collect(prefix+resample+".0.conv.", &ps)
		}
	}
	for i, b := range m.DownBlocks {
		collect(fmt.Sprintf("down_blocks.%d.", i), "downsamplers", b)
	}
	for i, b := range m.UpBlocks {
		collect(fmt.Sprintf("up_blocks.%d.", i), "upsamplers", b)
	}
	if m.MidResnets != nil {
		if m.MidAttention != nil {
			m.MidAttention.Collect("mid_block.attentions.0.", &ps)
		}
		m.MidResnets[0].Collect("mid_block.resnets.0.", &ps)
		m.MidResnets[1].Collect("mid_block.resnets.1.", &ps)
	}
	m.ConvNormOut.Collect("conv_norm_out.", &ps)
	m.ConvOut.Collect("conv_out.", &ps)
	return ps
}

// NumParams counts the scalar parameters.
func (m *UNet3D) NumParams() int { return nn.CountParams(m.Params()) }

// NoGrad turns off gradients for every parameter (sampling); the returned
// function restores them.
func (m *UNet3D) NoGrad() (restore func()) { return nn.NoGrad(m.Params()) }

// Forward runs the U-Net on x (B, in_channels, D, H, W), or on the same
// volumes as stacks of slices (B, in_channels, D·H, W) with H = W, at the
// given timesteps (one per sample or one for all) and, for a
// class-conditional model, labels in [0, num_class_embeds). The answer has
// the input's shape with out_channels channels. opt may be nil (dropout is
// not part of this model).
func (m *UNet3D) Forward(x *tensor.Tensor, timesteps []float32, labels []int64, opt *nn.ForwardOptions) (out *tensor.Tensor, err error) {
	cfg := m.Config
	shape := x.Shape()
	switch {
	case x.Rank() == 4 && x.Dim(3) > 0 && x.Dim(2)%x.Dim(3) == 0:
		x = x.Reshape(shape[0], shape[1], shape[2]/shape[3], shape[3], shape[3])
	case x.Rank() == 5:
	default:
		return nil, fmt.Errorf("unet3d: input %v, want (B, %d, D, H, W) or slices (B, %d, D·W, W)", shape, cfg.InChannels, cfg.InChannels)
	}
	if x.Dim(1) != cfg.InChannels {
		return nil, fmt.Errorf("unet3d: input %v has %d channels, want %d", shape, x.Dim(1), cfg.InChannels)
	}
	B := x.Dim(0)
	step := cfg.SideStep()
	for _, s := range x.Shape()[2:] {
		if s%step != 0 || s == 0 {
			return nil, fmt.Errorf("unet3d: volume %v: every side must be a positive multiple of %d (patch_size %d, one halving per down block)", x.Shape()[2:], step, cfg.PatchSize)
		}
	}
	switch len(timesteps) {
	case B:
	case 1:
		timesteps = slices.Repeat(timesteps, B)
	default:
		return nil, fmt.Errorf("unet3d: %d timesteps for a batch of %d (want 1 or %d)", len(timesteps), B, B)
	}
	if err := nn.CheckClassLabels("unet3d", labels, B, cfg.NumClassEmbeds); err != nil {
		return nil, err
	}
	run := func() {
		out = m.forward(x, timesteps, labels)
		out = out.Reshape(append([]int{shape[0], cfg.OutChannels}, shape[2:]...)...)
	}
	if nn.Recording(x, m.ConvIn.Weight) {
		return out, tensor.Catch(run)
	}
	// A sampler calls the same forward at every step (tensor.Repeat).
	key := nn.RepeatKey(m, B, x.Dim(2), x.Dim(3)*x.Dim(4), 0)
	err = tensor.Catch(func() { tensor.Repeat(x.Device(), key, run) })
	return out, err
}

func (m *UNet3D) forward(x *tensor.Tensor, timesteps []float32, labels []int64) *tensor.Tensor {
	cfg, dev := m.Config, m.Device
	B, C0 := x.Dim(0), cfg.BlockOutChannels[0]
	tp := nn.TimestepProjection(timesteps, C0, cfg.FlipSinToCos, float32(cfg.FreqShift))
	emb := m.TimeEmbedding.Forward(tensor.FromFloat32(dev, tp, B, C0))
	if m.ClassEmbedding != nil {
		emb = tensor.Add(emb, m.ClassEmbedding.Forward(tensor.FromInt64(dev, labels, B)))
	}
	in := fold(x, cfg.PatchSize)
	h := m.ConvIn.Forward(in)
	if in != x && !h.RequiresGrad() { // in training conv_in's backward reads its input
		tensor.Release(in)
	}
	// In inference what has been read and is not a skip is released
	// (tensor.Release: a no-op in training).
	then := func(out *tensor.Tensor) {
		tensor.Release(h)
		h = out
	}
	skips := []*tensor.Tensor{h}
	for _, b := range m.DownBlocks {
		for i, r := range b.Resnets {
			h = r.Forward(h, emb)
			if b.Attentions != nil {
				then(attend(b.Attentions[i], h))
			}
			skips = append(skips, h)
		}
		if b.Resample != nil {
			h = b.Resample.Forward(h)
			skips = append(skips, h)
		}
	}
	if m.MidResnets != nil {
		h = m.MidResnets[0].Forward(h, emb)
		if m.MidAttention != nil {
			then(attend(m.MidAttention, h))
		}
		then(m.MidResnets[1].Forward(h, emb))
	}
	mode := tensor.Nearest
	if cfg.UpsampleInterpolation == "trilinear" {
		mode = tensor.Trilinear
	}
	for _, b := range m.UpBlocks {
		for i, r := range b.Resnets {
			skip := skips[len(skips)-1]
			skips = skips[:len(skips)-1]
			then(tensor.Concat(1, h, skip))
			tensor.Release(skip)
			then(r.Forward(h, emb))
			if b.Attentions != nil {
				then(attend(b.Attentions[i], h))
			}
		}
		if b.Resample != nil {
			then(tensor.Upsample3D(h, mode))
			then(b.Resample.Forward(h))
		}
	}
	then(m.ConvNormOut.ForwardAct(h, "silu"))
	out := m.ConvOut.Forward(h)
	tensor.Release(h)
	if y := unfold(out, cfg.PatchSize); y != out {
		tensor.Release(out)
		return y
	}
	return out
}

// fold is space-to-depth: (B, C, D, H, W) → (B, C·p³, D/p, H/p, W/p), the
// voxel at offset (i, j, k) of a p×p×p block going to channel c·p³ + (i·p + j)·p + k.
func fold(x *tensor.Tensor, p int) *tensor.Tensor {
	if p == 1 {
		return x
	}
	s := x.Shape()
	B, C, D, H, W := s[0], s[1], s[2]/p, s[3]/p, s[4]/p
	return x.Reshape(B, C, D, p, H, p, W, p).Permute(0, 1, 3, 5, 7, 2, 4, 6).Reshape(B, C*p*p*p, D, H, W)
}

// unfold is fold's inverse (depth-to-space).
func unfold(x *tensor.Tensor, p int) *tensor.Tensor {
	if p == 1 {
		return x
	}
	s := x.Shape()
	B, C, D, H, W := s[0], s[1]/(p*p*p), s[2], s[3], s[4]
	return x.Reshape(B, C, p, p, p, D, H, W).Permute(0, 1, 5, 2, 6, 3, 7, 4).Reshape(B, C, D*p, H*p, W*p)
}

// LoadWeights copies every parameter from st (strict, as nn.LoadParams).
func (m *UNet3D) LoadWeights(st *safetensors.File) error {
	return nn.LoadParams(m.Params(), st, nn.LoadOptions{})
}

// Save writes dir/config.json and dir/diffusion_pytorch_model.safetensors
// (float32), each atomically.
func (m *UNet3D) Save(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	sd, err := nn.StateDict(m.Params())
	if err != nil {
		return err
	}
	if err := safetensors.Write(filepath.Join(dir, nn.WeightsFile), sd, map[string]string{"format": "pt"}); err != nil {
		return err
	}
	return atomicfile.Write(filepath.Join(dir, nn.ConfigFile), m.Config.Marshal())
}

// LoadUNet3D loads a folder written by Save (config.json and
// diffusion_pytorch_model.safetensors) onto dev.
func LoadUNet3D(dev tensor.Device, dir string) (*UNet3D, error) {
	cfgPath := filepath.Join(dir, nn.ConfigFile)
	cfg, err := LoadUNet3DConfig(cfgPath)
	if err != nil {
		return nil, err
	}
	m, err := newUNet3D(tensor.ShapesOnly(), cfg, nil) // parameters get their buffers as they load
	if err != nil {
		return nil, fmt.Errorf("%s: %w", cfgPath, err)
	}
	m.Device = dev
	st, err := safetensors.Read(filepath.Join(dir, nn.WeightsFile))
	if err != nil {
		return nil, err
	}
	defer st.Close()
	if err := nn.LoadParams(m.Params(), st, nn.LoadOptions{Device: dev}); err != nil {
		return nil, err
	}
	return m, nil
}
