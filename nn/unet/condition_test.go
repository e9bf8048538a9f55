package unet

import (
	"fmt"
	"math"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/godiffuse/godiffuse/internal/sdfixtures"
	"github.com/godiffuse/godiffuse/internal/traincheck"
	"github.com/godiffuse/godiffuse/kernels"
	"github.com/godiffuse/godiffuse/nn"
	"github.com/godiffuse/godiffuse/safetensors"
	"github.com/godiffuse/godiffuse/tensor"
)

// Tolerances from shared/reference/sd/README.md.
const (
	tolAct  = 2e-5
	tolGrad = 1e-4
	tolLoss = 1e-6
)

func TestConditionParity(t *testing.T) {
	for _, dir := range sdfixtures.Folders(t, sdfixtures.UNet) {
		t.Run(filepath.Base(dir), func(t *testing.T) { checkConditionParity(t, kernels.CPU(), dir, tolLoss) })
	}
}

func checkConditionParity(t *testing.T, dev tensor.Device, dir string, lossTol float64) {
	m, err := LoadCondition(dev, dir, nn.StoreF32)
	if err != nil {
		t.Fatal(err)
	}
	io := sdfixtures.IO(t, dir)
	xv, xs := sdfixtures.Float32(t, io, "x")
	cv, cs := sdfixtures.Float32(t, io, "encoder_hidden_states")
	x := tensor.FromFloat32(dev, xv, xs...).SetRequiresGrad(true)
	ctx := tensor.FromFloat32(dev, cv, cs...).SetRequiresGrad(true)
	var ts []float32
	for _, v := range sdfixtures.Int64(t, io, "t") {
		ts = append(ts, float32(v))
	}
	trace := Trace{}
	out, err := m.Forward(x, ts, ctx, nil, trace)
	if err != nil {
		t.Fatal(err)
	}
	sdfixtures.Compare(t, io, "t_proj", trace["t_proj"], 1e-6)
	for _, k := range []string{"emb", "conv_in", "mid"} {
		sdfixtures.Compare(t, io, k, trace[k], tolAct)
	}
	for _, prefix := range []string{"down", "up"} {
		for i := 0; sdfixtures.Has(io, fmt.Sprintf("%s/%d", prefix, i)); i++ {
			k := fmt.Sprintf("%s/%d", prefix, i)
			sdfixtures.Compare(t, io, k, trace[k], tolAct)
		}
	}
	sdfixtures.Compare(t, io, "out", out, tolAct)
	tv, tshape := sdfixtures.Float32(t, io, "target")
	loss := tensor.MSELoss(out, tensor.FromFloat32(dev, tv, tshape...))
	sdfixtures.Compare(t, io, "loss", loss, lossTol)
	loss.Backward()
	sdfixtures.Compare(t, io, "grad/x", x.Grad(), tolGrad)
	sdfixtures.Compare(t, io, "grad/encoder_hidden_states", ctx.Grad(), tolGrad)
	sdfixtures.CheckGrads(t, io, m.Params(), tolGrad)
}

// TestConditionOddSizes: latent sizes that do not halve evenly (17×13,
// 15×16) against testdata/sd-odd, made by make_odd.py there from the
// reference (diffusers interpolates each upsampler to its skip's size).
func TestConditionOddSizes(t *testing.T) {
	dev := kernels.CPU()
	io, err := safetensors.Read(filepath.Join("..", "..", "testdata", "sd-odd", "io.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	m, err := LoadCondition(dev, filepath.Join("..", "..", "testdata", "sd", io.Metadata["unet"]), nn.StoreF32)
	if err != nil {
		t.Fatal(err)
	}
	defer m.NoGrad()()
	for i := 0; sdfixtures.Has(io, fmt.Sprintf("size/%d/x", i)); i++ {
		key := func(k string) string { return fmt.Sprintf("size/%d/%s", i, k) }
		xv, xs := sdfixtures.Float32(t, io, key("x"))
		cv, cs := sdfixtures.Float32(t, io, key("encoder_hidden_states"))
		var ts []float32
		for _, v := range sdfixtures.Int64(t, io, key("t")) {
			ts = append(ts, float32(v))
		}
		out, err := m.Forward(tensor.FromFloat32(dev, xv, xs...), ts, tensor.FromFloat32(dev, cv, cs...), nil, nil)
		if err != nil {
			t.Fatalf("%v: %v", xs, err)
		}
		sdfixtures.Compare(t, io, key("out"), out, tolAct)
	}
}

// TestConditionReleasedIntermediates: in inference the blocks release their
// intermediates and later layers reuse the buffers uncleared; every fixture
// model (linear and convolutional projections) still matches the reference,
// with the same bits pass after pass as the free lists warm up (on a device
// that recycles every length and fills reused arrays with NaN first) and as
// tensor.Repeat runs passes 3–5 on one thread.
func TestConditionReleasedIntermediates(t *testing.T) {
	for _, dir := range sdfixtures.Folders(t, sdfixtures.UNet) {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			dev := kernels.PoisonedCPU(2)
			m, err := LoadCondition(dev, dir, nn.StoreF32)
			if err != nil {
				t.Fatal(err)
			}
			defer m.NoGrad()()
			io := sdfixtures.IO(t, dir)
			xv, xs := sdfixtures.Float32(t, io, "x")
			cv, cs := sdfixtures.Float32(t, io, "encoder_hidden_states")
			var ts []float32
			for _, v := range sdfixtures.Int64(t, io, "t") {
				ts = append(ts, float32(v))
			}
			var first []float32
			for pass := range 8 {
				out, err := m.Forward(tensor.FromFloat32(dev, xv, xs...), ts, tensor.FromFloat32(dev, cv, cs...), nil, nil)
				if err != nil {
					t.Fatal(err)
				}
				sdfixtures.Compare(t, io, "out", out, tolAct)
				got := out.MustFloat32s()
				if pass == 0 {
					first = got
				} else if !slices.Equal(got, first) {
					t.Fatalf("pass %d: output differs from the first pass", pass)
				}
			}
		})
	}
}

// TestCoordinates: with _godiffuse_coordinates conv_in reads two more
// channels, the pixel's x and y from −1 to 1, which the model appends to
// the sample itself; the key survives a save and a wrong value is an error.
func TestCoordinates(t *testing.T) {
	dev := kernels.CPU()
	c, err := LoadConditionConfig(filepath.Join("..", "..", "bench", "configs", "shapes-unet-coord.json"))
	if err != nil {
		t.Fatal(err)
	}
	if !c.Coordinates || c.InChannels != 3 {
		t.Fatalf("config: coordinates %v, in_channels %d", c.Coordinates, c.InChannels)
	}
	if back, err := ParseConditionConfig("saved", c.Marshal()); err != nil || !back.Coordinates {
		t.Fatalf("saved and read again: coordinates %v, %v", back.Coordinates, err)
	}
	if _, err := ParseConditionConfig("bad.json", []byte(`{"_godiffuse_coordinates": "yes"}`)); err == nil ||
		!strings.Contains(err.Error(), "bad.json") || !strings.Contains(err.Error(), "_godiffuse_coordinates") {
		t.Fatalf("a string for the flag: %v", err)
	}
	m, err := NewCondition(dev, c, 7)
	if err != nil {
		t.Fatal(err)
	}
	defer m.NoGrad()()
	C0 := c.BlockOutChannels[0]
	if got := m.ConvIn.Weight.Shape(); !slices.Equal(got, []int{C0, 5, 3, 3}) {
		t.Fatalf("conv_in weight %v, want [%d 5 3 3]", got, C0)
	}
	const B, H, W = 2, 6, 5
	x := tensor.FromFloat32(dev, make([]float32, B*3*H*W), B, 3, H, W) // zeros: only the coordinates reach conv_in's output
	ctx := tensor.FromFloat32(dev, make([]float32, B*4*c.CrossAttentionDim.At(0)), B, 4, c.CrossAttentionDim.At(0))
	trace := Trace{}
	if _, err := m.Forward(x, []float32{10}, ctx, nil, trace); err != nil {
		t.Fatal(err)
	}
	got, _ := trace["conv_in"].Float32s()
	w, _ := m.ConvIn.Weight.Float32s()
	bias, _ := m.ConvIn.Bias.Float32s()
	coord := func(i, n int) float64 { return 2*float64(i)/float64(n-1) - 1 }
	for o := range C0 {
		for y := range H {
			for xx := range W {
				want := float64(bias[o])
				for ky := range 3 {
					for kx := range 3 {
						sy, sx := y+ky-1, xx+kx-1
						if sy < 0 || sy >= H || sx < 0 || sx >= W {
							continue
						}
						want += float64(w[((o*5+3)*3+ky)*3+kx])*coord(sx, W) + float64(w[((o*5+4)*3+ky)*3+kx])*coord(sy, H)
					}
				}
				for b := range B {
					if g := got[((b*C0+o)*H+y)*W+xx]; math.Abs(float64(g)-want) > 1e-5 {
						t.Fatalf("conv_in[%d, %d, %d, %d] = %g, want %g", b, o, y, xx, g, want)
					}
				}
			}
		}
	}
}

// TestAttentionCoordinates: with _godiffuse_attention_coordinates every
// spatial transformer adds a learnt map of each token's place to its
// tokens (pos_proj), so a picture that is the same everywhere comes out
// different from place to place, which without it cannot happen; with
// pos_proj at zero the transformer is the plain one; pos_proj trains; the
// key survives a save and a wrong value is an error naming it.
func TestAttentionCoordinates(t *testing.T) {
	dev := kernels.CPU()
	c, err := ParseConditionConfig("config.json", []byte(`{"sample_size": 8, "in_channels": 3, "out_channels": 3,
		"block_out_channels": [8, 16], "down_block_types": ["DownBlock2D", "CrossAttnDownBlock2D"],
		"up_block_types": ["CrossAttnUpBlock2D", "UpBlock2D"], "layers_per_block": 1, "cross_attention_dim": 8,
		"attention_head_dim": 2, "norm_num_groups": 4, "_godiffuse_attention_coordinates": true}`))
	if err != nil {
		t.Fatal(err)
	}
	if back, err := ParseConditionConfig("saved", c.Marshal()); err != nil || !back.AttentionCoordinates {
		t.Fatalf("saved and read again: attention coordinates %v, %v", back.AttentionCoordinates, err)
	}
	if _, err := ParseConditionConfig("bad.json", []byte(`{"_godiffuse_attention_coordinates": 1}`)); err == nil ||
		!strings.Contains(err.Error(), "bad.json") || !strings.Contains(err.Error(), "_godiffuse_attention_coordinates") {
		t.Fatalf("a number for the flag: %v", err)
	}
	m, err := NewCondition(dev, c, 3)
	if err != nil {
		t.Fatal(err)
	}
	named := map[string]bool{}
	for _, p := range m.Params() {
		named[p.Name] = true
	}
	for _, want := range []string{"down_blocks.1.attentions.0.pos_proj.weight", "up_blocks.0.attentions.0.pos_proj.weight",
		"mid_block.attentions.0.pos_proj.weight"} {
		if !named[want] {
			t.Errorf("no parameter %s", want)
		}
	}
	tr := m.DownBlocks[1].Attentions[0]
	const B, C, H, W = 2, 16, 3, 4
	flat := make([]float32, B*C*H*W) // the same value at every place of a channel
	for i := range flat {
		flat[i] = float32(i/(H*W)%C)*0.1 - 0.7
	}
	x := tensor.FromFloat32(dev, flat, B, C, H, W)
	ctx := tensor.FromFloat32(dev, make([]float32, B*3*8), B, 3, 8)
	spread := func(out *tensor.Tensor) float64 { // largest difference between two places of a channel
		v, _ := out.Float32s()
		worst := 0.0
		for bc := range B * C {
			for i := range H * W {
				worst = max(worst, math.Abs(float64(v[bc*H*W+i]-v[bc*H*W])))
			}
		}
		return worst
	}
	restore := m.NoGrad()
	withPlaces := tr.Forward(x, ctx)
	if s := spread(withPlaces); s < 1e-3 {
		t.Fatalf("a flat picture stays flat (largest difference %g) with the places added", s)
	}
	w := tr.PosProj.Weight
	saved, _ := w.Float32s()
	w.CopyFrom(tensor.FromFloat32(dev, make([]float32, len(saved)), w.Shape()...))
	if s := spread(tr.Forward(x, ctx)); s > 1e-5 {
		t.Fatalf("pos_proj at zero: the flat picture varies by %g", s)
	}
	plain := *tr
	plain.PosProj = nil
	a, _ := plain.Forward(x, ctx).Float32s()
	b, _ := tr.Forward(x, ctx).Float32s()
	if !slices.Equal(a, b) {
		t.Fatal("pos_proj at zero differs from the transformer without it")
	}
	w.CopyFrom(tensor.FromFloat32(dev, saved, w.Shape()...))
	restore()
	loss := tensor.Sum(tensor.Mul(tr.Forward(x, ctx), tensor.FromFloat32(dev, flat, B, C, H, W)))
	loss.Backward()
	g := w.Grad()
	if g == nil {
		t.Fatal("pos_proj.weight got no gradient")
	}
	gv, _ := g.Float32s()
	if slices.Max(gv) == 0 && slices.Min(gv) == 0 {
		t.Fatal("pos_proj.weight's gradient is zero")
	}
}

// TestBackwardReleaseKeepsConditionTraining: training steps of a
// text-conditioned U-Net (cross-attention, GEGLU's split, the places of
// _godiffuse_attention_coordinates, a context that takes a gradient) that
// hand the graph's activations and spent gradients back after backward
// (BackwardRelease), on a device that recycles every length and fills
// reused arrays with NaN, end with the same weights and context, bit for
// bit, as steps that leave them to the collector.
func TestBackwardReleaseKeepsConditionTraining(t *testing.T) {
	c, err := LoadConditionConfig(filepath.Join("..", "..", "bench", "configs", "shapes-unet-xattn16-places.json"))
	if err != nil {
		t.Fatal(err)
	}
	c.BlockOutChannels = []int{8, 16, 16}
	c.CrossAttentionDim = PerBlock[int]{One: 8}
	c.NormNumGroups = 4
	c.AdditionEmbedTypeNumHeads = 2
	const B, H, W, L = 2, 8, 8, 5
	traincheck.SameWhenReleased(t, 3, func(dev tensor.Device) traincheck.Model {
		m, err := NewCondition(dev, c, 4)
		if err != nil {
			t.Fatal(err)
		}
		ctx := tensor.FromFloat32(dev, traincheck.Random(B*L*8, 1), B, L, 8).SetRequiresGrad(true)
		params := []*tensor.Tensor{ctx}
		for _, p := range m.Params() {
			params = append(params, p.T)
		}
		return traincheck.Model{Params: params, Loss: func(step int) *tensor.Tensor {
			x := tensor.FromFloat32(dev, traincheck.Random(B*3*H*W, uint64(step+2)), B, 3, H, W)
			target := tensor.FromFloat32(dev, traincheck.Random(B*3*H*W, uint64(step+20)), B, 3, H, W)
			out, err := m.Forward(x, []float32{float32(100 * step), 900}, ctx, nil, nil)
			if err != nil {
				t.Fatal(err)
			}
			return tensor.MSELoss(out, target)
		}}
	})
}

// TestObserveCrossAttention: the observed probabilities are those the
// cross-attention uses (P·V per head is tensor.Attention's output), one map
// per transformer block at its image's size, and a loss on them reaches the
// queries' and keys' weights and the text states.
func TestObserveCrossAttention(t *testing.T) {
	dev := kernels.CPU()
	seed := uint64(5)
	randn := func(shape ...int) *tensor.Tensor { // a new draw each call
		n := 1
		for _, d := range shape {
			n *= d
		}
		seed++
		return tensor.FromFloat32(dev, traincheck.Random(n, seed), shape...)
	}
	const B, Lq, Lk, heads, D = 2, 5, 3, 2, 4
	q, k, v := randn(B, Lq, heads*D), randn(B, Lk, heads*D), randn(B, Lk, heads*D)
	p := attentionProbabilities(q, k, heads)
	if got := p.Shape(); !slices.Equal(got, []int{B, heads, Lq, Lk}) {
		t.Fatalf("probabilities %v, want (%d, %d, %d, %d)", got, B, heads, Lq, Lk)
	}
	// P·V, head by head, back to (B, Lq, heads·D).
	pv := tensor.MatMul(p, v.Reshape(B, Lk, heads, D).Transpose(1, 2)).Transpose(1, 2).Reshape(B, Lq, heads*D)
	floats := func(x *tensor.Tensor) []float32 {
		f, err := x.Float32s()
		if err != nil {
			t.Fatal(err)
		}
		return f
	}
	want, got := floats(tensor.Attention(q, k, v, heads)), floats(pv)
	for i := range want {
		if math.Abs(float64(got[i]-want[i])) > 1e-5 {
			t.Fatalf("P·V[%d] = %g, attention %g", i, got[i], want[i])
		}
	}

	c, err := ParseConditionConfig("config.json", []byte(`{"sample_size": 8, "in_channels": 3, "out_channels": 3,
		"block_out_channels": [8, 16], "down_block_types": ["DownBlock2D", "CrossAttnDownBlock2D"],
		"up_block_types": ["CrossAttnUpBlock2D", "UpBlock2D"], "layers_per_block": 1, "cross_attention_dim": 8,
		"attention_head_dim": 2, "norm_num_groups": 4}`))
	if err != nil {
		t.Fatal(err)
	}
	m, err := NewCondition(dev, c, 3)
	if err != nil {
		t.Fatal(err)
	}
	ctx := randn(B, Lk, 8)
	ctx.SetRequiresGrad(true)
	type seen struct {
		shape []int
		h, w  int
	}
	var maps []seen
	var loss *tensor.Tensor
	restore := m.ObserveCrossAttention(func(p *tensor.Tensor, h, w int) {
		maps = append(maps, seen{p.Shape(), h, w})
		// a loss that wants the first token looked at everywhere
		first := tensor.Sum(tensor.Split(p, -1, 1, p.Dim(-1)-1)[0])
		if loss == nil {
			loss = first
		} else {
			loss = tensor.Add(loss, first)
		}
	})
	if _, err := m.Forward(randn(B, 3, 8, 8), []float32{10, 500}, ctx, nil, nil); err != nil {
		t.Fatal(err)
	}
	restore()
	// down 1 (4×4), mid (4×4), up 0 (two layers at 4×4)
	if len(maps) != 4 {
		t.Fatalf("%d maps observed, want 4 (one per transformer)", len(maps))
	}
	for _, s := range maps {
		if s.h != 4 || s.w != 4 || !slices.Equal(s.shape, []int{B, 2, 16, Lk}) {
			t.Errorf("map %v at %d×%d, want (%d, 2, 16, %d) at 4×4", s.shape, s.h, s.w, B, Lk)
		}
	}
	if err := tensor.Catch(loss.Backward); err != nil {
		t.Fatal(err)
	}
	grads := map[string]bool{}
	for _, p := range m.Params() {
		if g := p.T.Grad(); g != nil && slices.ContainsFunc(floats(g), func(v float32) bool { return v != 0 }) {
			grads[p.Name] = true
		}
	}
	for _, name := range []string{"down_blocks.1.attentions.0.transformer_blocks.0.attn2.to_q.weight",
		"down_blocks.1.attentions.0.transformer_blocks.0.attn2.to_k.weight"} {
		if !grads[name] {
			t.Errorf("no gradient on %s", name)
		}
	}
	if g := ctx.Grad(); g == nil {
		t.Error("no gradient on the text states")
	}
	maps = nil
	if _, err := m.Forward(randn(B, 3, 8, 8), []float32{10, 500}, ctx, nil, nil); err != nil || len(maps) != 0 {
		t.Errorf("after restore: %d maps observed (%v)", len(maps), err)
	}
}
