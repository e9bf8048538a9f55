package unet

import (
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
