package clip

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/godiffuse/godiffuse/internal/sdfixtures"
	"github.com/godiffuse/godiffuse/kernels"
	"github.com/godiffuse/godiffuse/nn"
	"github.com/godiffuse/godiffuse/tensor"
)

// Tolerances from shared/reference/sd/README.md.
const (
	tolHidden = 5e-6
	tolGrad   = 1e-4
	tolLoss   = 1e-6
)

func TestTextModelParity(t *testing.T) {
	for _, dir := range sdfixtures.Folders(t, sdfixtures.CLIP) {
		t.Run(filepath.Base(dir), func(t *testing.T) { checkTextParity(t, kernels.CPU(), dir) })
	}
}

func checkTextParity(t *testing.T, dev tensor.Device, dir string) {
	m, err := LoadTextModel(dev, dir, nn.StoreF32)
	if err != nil {
		t.Fatal(err)
	}
	io := sdfixtures.IO(t, dir)
	ids := sdfixtures.Int64(t, io, "input_ids")
	_, shape := sdfixtures.Float32(t, io, "last_hidden_state")
	B := shape[0]
	out, err := m.Forward(ids, B)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; sdfixtures.Has(io, fmt.Sprintf("hidden_states/%d", i)); i++ {
		sdfixtures.Compare(t, io, fmt.Sprintf("hidden_states/%d", i), out.Hidden[i], tolHidden)
	}
	sdfixtures.Compare(t, io, "last_hidden_state", out.LastHidden, tolHidden)
	sdfixtures.Compare(t, io, "pooler_output", out.Pooled, tolHidden)
	if sdfixtures.Has(io, "clip_skip_1") {
		sdfixtures.Compare(t, io, "clip_skip_1", m.FinalLayerNorm.Forward(out.Hidden[len(out.Hidden)-2]), tolHidden)
	}
	// loss = mean((last − target)²) + mean(pooled²), then the stored gradients
	tv, tshape := sdfixtures.Float32(t, io, "target")
	target := tensor.FromFloat32(dev, tv, tshape...)
	loss := tensor.Add(tensor.MSELoss(out.LastHidden, target), tensor.Mean(tensor.Square(out.Pooled)))
	sdfixtures.Compare(t, io, "loss", loss, tolLoss)
	loss.Backward()
	sdfixtures.CheckGrads(t, io, m.Params(), tolGrad)
}

// FuzzTextConfig: no text_encoder/config.json (from a downloaded folder or
// diffuse train -text-config) may panic the parser or the model
// construction (on the shapes-only device: no memory).
func FuzzTextConfig(f *testing.F) {
	for _, file := range []string{"cmd/diffuse/configs/shapes-text.json", "bench/configs/shapes-text-128x4.json", "bench/configs/shapes-text-bidirectional.json"} {
		b, err := os.ReadFile(filepath.Join("..", "..", file))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`{"hidden_size": 64, "num_attention_heads": 5}`))
	f.Add([]byte(`{"hidden_size": 16384, "intermediate_size": 131072, "num_hidden_layers": 256, "vocab_size": 1048576}`))
	f.Add([]byte(`{"hidden_act": "relu"}`))
	f.Add([]byte(`{"layer_norm_eps": -1, "max_position_embeddings": 0}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := ParseTextConfig("fuzz", data)
		if err != nil {
			return
		}
		if _, err := NewTextModel(tensor.ShapesOnly(), cfg, nil); err != nil {
			t.Fatalf("an accepted config does not build: %v", err)
		}
	})
}

// TestBidirectional: with the causal mask a token's state ignores the words
// after it; without it (_godiffuse_bidirectional) the first token's state
// changes when a later word does.
func TestBidirectional(t *testing.T) {
	dev := kernels.CPU()
	c, err := ParseTextConfig("test", []byte(`{"vocab_size": 16, "hidden_size": 8, "intermediate_size": 16,
		"num_hidden_layers": 2, "num_attention_heads": 2, "max_position_embeddings": 4, "eos_token_id": 15,
		"_godiffuse_bidirectional": true}`))
	if err != nil || !c.Bidirectional {
		t.Fatalf("config: %+v, %v", c, err)
	}
	for _, bidirectional := range []bool{false, true} {
		c.Bidirectional = bidirectional
		m, err := NewTextModel(dev, c, rand.New(rand.NewPCG(1, 2)))
		if err != nil {
			t.Fatal(err)
		}
		first := func(ids ...int64) []float32 {
			out, err := m.Forward(ids, 1)
			if err != nil {
				t.Fatal(err)
			}
			v, err := out.LastHidden.Float32s()
			if err != nil {
				t.Fatal(err)
			}
			return v[:c.HiddenSize]
		}
		a, b := first(3, 4, 5, 15), first(3, 4, 9, 15)
		same := true
		for i := range a {
			same = same && a[i] == b[i]
		}
		if same == bidirectional {
			t.Errorf("bidirectional %v: the first token's state %s when the third word changes", bidirectional,
				map[bool]string{true: "stays", false: "changes"}[same])
		}
	}
}
