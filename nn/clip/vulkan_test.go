package clip

import (
	"path/filepath"
	"testing"

	"github.com/godiffuse/godiffuse/internal/sdfixtures"
	"github.com/godiffuse/godiffuse/internal/vktest"
)

// TestTextModelParityVulkan runs the text encoder fixtures on the Vulkan device
// (forward, loss and gradients at the CPU's tolerances), every op in a shader.
func TestTextModelParityVulkan(t *testing.T) {
	dev := vktest.Device(t)
	for _, dir := range sdfixtures.Folders(t, sdfixtures.CLIP) {
		t.Run(filepath.Base(dir), func(t *testing.T) { checkTextParity(t, dev, dir) })
	}
}
