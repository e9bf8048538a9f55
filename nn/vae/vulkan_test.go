package vae

import (
	"path/filepath"
	"testing"

	"github.com/godiffuse/godiffuse/internal/sdfixtures"
	"github.com/godiffuse/godiffuse/internal/vktest"
)

// TestVAEParityVulkan runs the VAE fixtures on the Vulkan device
// (forward, loss and gradients at the CPU's tolerances), every op in a shader.
func TestVAEParityVulkan(t *testing.T) {
	dev := vktest.Device(t)
	for _, dir := range sdfixtures.Folders(t, sdfixtures.VAE) {
		t.Run(filepath.Base(dir), func(t *testing.T) { checkVAEParity(t, dev, dir) })
	}
}
