package nn_test

import (
	"path/filepath"
	"testing"

	"github.com/godiffuse/godiffuse/internal/vktest"
)

// TestParityVulkan runs the same fixtures on the Vulkan device (the fp32
// shaders): forward, loss and every stored gradient within 1e-4 of max|ref|.
func TestParityVulkan(t *testing.T) {
	dev := vktest.Device(t)
	dirs, _ := filepath.Glob("../testdata/fixtures/*")
	for _, dir := range dirs {
		t.Run(filepath.Base(dir), func(t *testing.T) { checkParity(t, dev, dir) })
	}
}
