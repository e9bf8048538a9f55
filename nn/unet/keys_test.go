package unet

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/godiffuse/godiffuse/internal/sdfixtures"
	"github.com/godiffuse/godiffuse/tensor"
)

// TestFullSizeKeys builds SD 1.5's and SD 2.1's U-Nets from their real
// configs (shapes only) and compares every key, shape and the count with the
// reference's lists.
func TestFullSizeKeys(t *testing.T) {
	for name, want := range map[string]int{"sd15": 859520964, "sd21": 865910724} {
		dir := filepath.Join("..", "..", "testdata", "sd-configs", name)
		cfg, err := LoadConditionConfig(filepath.Join(dir, "unet", "config.json"))
		if err != nil {
			t.Fatal(err)
		}
		m, err := newCondition(tensor.ShapesOnly(), cfg, nil)
		if err != nil {
			t.Fatal(err)
		}
		if n := sdfixtures.CheckKeys(t, filepath.Join(dir, "unet.keys.txt"), m.Params()); n != want {
			t.Errorf("%s: %d parameters, want %d", name, n, want)
		}
	}
}

// FuzzConditionConfig: no config.json may panic the parser or the model
// construction (on the shapes-only device: no memory).
func FuzzConditionConfig(f *testing.F) {
	for _, name := range []string{"sd15", "sd21"} {
		b, err := os.ReadFile(filepath.Join("..", "..", "testdata", "sd-configs", name, "unet", "config.json"))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`{"block_out_channels": [8388608], "down_block_types": ["DownBlock2D"], "up_block_types": ["UpBlock2D"]}`))
	f.Add([]byte(`{"attention_head_dim": [0, 1, 2, 3], "layers_per_block": [1]}`))
	f.Add([]byte(`{"dual_cross_attention": true}`))
	if b, err := os.ReadFile(filepath.Join("..", "..", "bench", "configs", "shapes-unet-coord.json")); err == nil {
		f.Add(b) // _godiffuse_coordinates
	} else {
		f.Fatal(err)
	}
	f.Add([]byte(`{"_godiffuse_coordinates": 1, "in_channels": 3}`))
	if b, err := os.ReadFile(filepath.Join("..", "..", "bench", "configs", "shapes-unet-xattn16-places.json")); err == nil {
		f.Add(b) // _godiffuse_attention_coordinates
	} else {
		f.Fatal(err)
	}
	f.Add([]byte(`{"_godiffuse_attention_coordinates": "yes", "only_cross_attention": true}`))
	f.Add([]byte(`{"addition_embed_type": "text", "addition_embed_type_num_heads": 0, "cross_attention_dim": [8, 16]}`))
	f.Add([]byte(`{"addition_embed_type": "text_image", "cross_attention_dim": 12, "addition_embed_type_num_heads": 5}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := ParseConditionConfig("fuzz", data)
		if err != nil {
			return
		}
		if _, err := BuildCondition(tensor.ShapesOnly(), cfg); err != nil {
			t.Fatalf("an accepted config does not build: %v", err)
		}
	})
}
