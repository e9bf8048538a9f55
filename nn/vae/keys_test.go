package vae

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/godiffuse/godiffuse/internal/sdfixtures"
	"github.com/godiffuse/godiffuse/tensor"
)

// TestFullSizeKeys: SD 1.5's and SD 2.1's VAEs, every key and shape.
func TestFullSizeKeys(t *testing.T) {
	for _, name := range []string{"sd15", "sd21"} {
		dir := filepath.Join("..", "..", "testdata", "sd-configs", name)
		b, err := os.ReadFile(filepath.Join(dir, "vae", "config.json"))
		if err != nil {
			t.Fatal(err)
		}
		cfg, err := ParseConfig(name, b)
		if err != nil {
			t.Fatal(err)
		}
		v, err := newVAE(tensor.ShapesOnly(), cfg, nil)
		if err != nil {
			t.Fatal(err)
		}
		if n := sdfixtures.CheckKeys(t, filepath.Join(dir, "vae.keys.txt"), v.Params()); n != 83653863 {
			t.Errorf("%s: %d parameters, want 83,653,863", name, n)
		}
	}
}
