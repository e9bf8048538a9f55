package unet

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/godiffuse/godiffuse/kernels"
	"github.com/godiffuse/godiffuse/nn"
	"github.com/godiffuse/godiffuse/tensor"
)

// textTimeReference is TextTimeEmbedding in float64 loops, written from
// diffusers' AttentionPooling (einsum form, scale d^-¼ on both sides).
func textTimeReference(e *TextTimeEmbedding, ctx []float32, B, L, D int) []float64 {
	get := func(t *tensor.Tensor) []float64 {
		v, _ := t.Float32s()
		out := make([]float64, len(v))
		for i, x := range v {
			out[i] = float64(x)
		}
		return out
	}
	layerNorm := func(x []float64, w, b []float64) []float64 {
		var mu, v float64
		for _, a := range x {
			mu += a
		}
		mu /= float64(len(x))
		for _, a := range x {
			v += (a - mu) * (a - mu)
		}
		v /= float64(len(x))
		out := make([]float64, len(x))
		for i, a := range x {
			out[i] = (a-mu)/math.Sqrt(v+1e-5)*w[i] + b[i]
		}
		return out
	}
	linear := func(x []float64, l *nn.Linear) []float64 {
		w, b := get(l.Weight), get(l.Bias)
		out := make([]float64, len(b))
		for o := range out {
			s := b[o]
			for i, a := range x {
				s += w[o*len(x)+i] * a
			}
			out[o] = s
		}
		return out
	}
	n1w, n1b, pos := get(e.Norm1.Weight), get(e.Norm1.Bias), get(e.PosEmbedding)
	n2w, n2b := get(e.Norm2.Weight), get(e.Norm2.Bias)
	H, dh := e.Heads, D/e.Heads
	scale := 1 / math.Sqrt(math.Sqrt(float64(dh)))
	var res []float64
	for b := range B {
		toks := make([][]float64, L+1)
		cls := make([]float64, D)
		for l := range L {
			x := make([]float64, D)
			for d := range D {
				x[d] = float64(ctx[(b*L+l)*D+d])
			}
			toks[l+1] = layerNorm(x, n1w, n1b)
			for d := range D {
				cls[d] += toks[l+1][d] / float64(L)
			}
		}
		for d := range D {
			cls[d] += pos[d]
		}
		toks[0] = cls
		q := linear(cls, e.Q)
		pooled := make([]float64, D)
		for h := range H {
			w := make([]float64, L+1)
			var mx float64 = math.Inf(-1)
			for s, tok := range toks {
				k := linear(tok, e.K)
				for c := range dh {
					w[s] += q[h*dh+c] * scale * k[h*dh+c] * scale
				}
				mx = max(mx, w[s])
			}
			var z float64
			for s := range w {
				w[s] = math.Exp(w[s] - mx)
				z += w[s]
			}
			for s, tok := range toks {
				v := linear(tok, e.V)
				for c := range dh {
					pooled[h*dh+c] += w[s] / z * v[h*dh+c]
				}
			}
		}
		res = append(res, layerNorm(linear(pooled, e.Proj), n2w, n2b)...)
	}
	return res
}

func TestTextTimeEmbedding(t *testing.T) {
	dev := kernels.CPU()
	for _, c := range []struct{ B, L, D, heads, temb int }{{1, 1, 4, 1, 8}, {2, 7, 12, 3, 20}, {3, 24, 64, 4, 128}} {
		r := rand.New(rand.NewPCG(uint64(c.D), 1))
		e := newTextTimeEmbedding(dev, r, c.D, c.temb, c.heads)
		// Non-trivial norms, so their parameters are tested too.
		for _, ln := range []*nn.LayerNorm{e.Norm1, e.Norm2} {
			for _, p := range []*tensor.Tensor{ln.Weight, ln.Bias} {
				v := make([]float32, p.Numel())
				for i := range v {
					v[i] = float32(r.NormFloat64()*0.3 + 0.5)
				}
				p.CopyFrom(tensor.FromFloat32(dev, v, p.Shape()...))
			}
		}
		ctx := make([]float32, c.B*c.L*c.D)
		for i := range ctx {
			ctx[i] = float32(r.NormFloat64() * 2)
		}
		x := tensor.FromFloat32(dev, ctx, c.B, c.L, c.D).SetRequiresGrad(true)
		out := e.Forward(x)
		if want := []int{c.B, c.temb}; !slices.Equal(out.Shape(), want) {
			t.Fatalf("%+v: shape %v, want %v", c, out.Shape(), want)
		}
		got, _ := out.Float32s()
		want := textTimeReference(e, ctx, c.B, c.L, c.D)
		var worst, scale float64
		for i := range want {
			worst = max(worst, math.Abs(float64(got[i])-want[i]))
			scale = max(scale, math.Abs(want[i]))
		}
		if worst > 1e-5*max(scale, 1) {
			t.Errorf("%+v: max |got − float64| = %.3g (max |value| %.3g)", c, worst, scale)
		}
		// Every parameter and the text states get a gradient.
		w := make([]float32, out.Numel())
		for i := range w {
			w[i] = float32(r.NormFloat64())
		}
		tensor.Sum(tensor.Mul(out, tensor.FromFloat32(dev, w, out.Shape()...))).Backward()
		var ps nn.ParamList
		e.Collect("add_embedding.", &ps)
		for _, p := range append(ps, nn.Param{Name: "ctx", T: x}) {
			g := p.T.Grad()
			if g == nil {
				t.Errorf("%+v: %s has no gradient", c, p.Name)
				continue
			}
			gv, _ := g.Float32s()
			if !slices.ContainsFunc(gv, func(v float32) bool { return v != 0 }) && !(c.L == 1 && strings.Contains(p.Name, "q_proj")) {
				t.Errorf("%+v: %s's gradient is zero", c, p.Name)
			}
		}
	}
}

// TestAddEmbeddingKeys: diffusers' state-dict names, after class_embedding.
func TestAddEmbeddingKeys(t *testing.T) {
	cfg, err := ParseConditionConfig("test", []byte(`{"sample_size": 8, "in_channels": 3, "out_channels": 3,
		"block_out_channels": [8, 16], "down_block_types": ["DownBlock2D", "CrossAttnDownBlock2D"],
		"up_block_types": ["CrossAttnUpBlock2D", "UpBlock2D"], "layers_per_block": 1, "norm_num_groups": 4,
		"cross_attention_dim": 12, "attention_head_dim": 2, "addition_embed_type": "text", "addition_embed_type_num_heads": 3}`))
	if err != nil {
		t.Fatal(err)
	}
	m, err := NewCondition(kernels.CPU(), cfg, 1)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, p := range m.Params() {
		if strings.HasPrefix(p.Name, "add_embedding.") {
			names = append(names, p.Name+fmt.Sprint(p.T.Shape()))
		}
	}
	want := "add_embedding.norm1.weight[12] add_embedding.norm1.bias[12] add_embedding.pool.positional_embedding[1 12] " +
		"add_embedding.pool.k_proj.weight[12 12] add_embedding.pool.k_proj.bias[12] add_embedding.pool.q_proj.weight[12 12] " +
		"add_embedding.pool.q_proj.bias[12] add_embedding.pool.v_proj.weight[12 12] add_embedding.pool.v_proj.bias[12] " +
		"add_embedding.proj.weight[32 12] add_embedding.proj.bias[32] add_embedding.norm2.weight[32] add_embedding.norm2.bias[32]"
	if got := strings.Join(names, " "); got != want {
		t.Errorf("keys\n got %s\nwant %s", got, want)
	}
	// The text states change the output through the added embedding alone
	// (this model's only cross-attention is in the lowest blocks, too).
	x := tensor.Zeros(kernels.CPU(), 1, 3, 8, 8)
	a := tensor.Full(kernels.CPU(), 0.5, 1, 5, 12)
	v := make([]float32, 60)
	for i := range v {
		v[i] = float32(i%7) - 3
	}
	b := tensor.FromFloat32(kernels.CPU(), v, 1, 5, 12)
	oa, err := m.Forward(x, []float32{10}, a, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	ob, _ := m.Forward(x, []float32{10}, b, nil, nil)
	if d, _ := tensor.Sum(tensor.Mul(tensor.Sub(oa, ob), tensor.Sub(oa, ob))).Item(); d == 0 {
		t.Error("the text states do not change the output")
	}
	for _, bad := range []string{`"addition_embed_type": "image"`, `"addition_embed_type": "text", "addition_embed_type_num_heads": 5`,
		`"addition_embed_type": "text", "cross_attention_dim": [12, 16]`} {
		_, err := ParseConditionConfig("bad.json", []byte(`{"block_out_channels": [8, 16], "norm_num_groups": 4, "attention_head_dim": 2,
			"down_block_types": ["DownBlock2D", "CrossAttnDownBlock2D"], "up_block_types": ["CrossAttnUpBlock2D", "UpBlock2D"],
			"cross_attention_dim": 12, `+bad+`}`))
		if err == nil || !strings.Contains(err.Error(), "bad.json") {
			t.Errorf("%s: error %v, want one naming the file and field", bad, err)
		}
	}
}
