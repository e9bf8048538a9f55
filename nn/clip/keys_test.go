package clip

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/godiffuse/godiffuse/internal/sdfixtures"
	"github.com/godiffuse/godiffuse/tensor"
)

// TestFullSizeKeys: SD 1.5's CLIP ViT-L/14 text tower and SD 2.1's OpenCLIP
// ViT-H text tower (23 layers), every key and shape.
func TestFullSizeKeys(t *testing.T) {
	for name, want := range map[string]int{"sd15": 123060480, "sd21": 340387840} {
		dir := filepath.Join("..", "..", "testdata", "sd-configs", name)
		b, err := os.ReadFile(filepath.Join(dir, "text_encoder", "config.json"))
		if err != nil {
			t.Fatal(err)
		}
		cfg, err := ParseTextConfig(name, b)
		if err != nil {
			t.Fatal(err)
		}
		m, err := NewTextModel(tensor.ShapesOnly(), cfg, nil)
		if err != nil {
			t.Fatal(err)
		}
		if n := sdfixtures.CheckKeys(t, filepath.Join(dir, "text_encoder.keys.txt"), m.Params()); n != want {
			t.Errorf("%s: %d parameters, want %d", name, n, want)
		}
	}
}
