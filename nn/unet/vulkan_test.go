package unet

import (
	"path/filepath"
	"testing"

	"github.com/godiffuse/godiffuse/internal/sdfixtures"
	"github.com/godiffuse/godiffuse/internal/vktest"
)

// TestConditionParityVulkan runs the U-Net fixtures on the Vulkan device
// (forward and gradients at the CPU's tolerances), every op in a shader. The
// loss gets 5× the CPU's 1e-6: the shaders' GELU uses a 1.5e-7 erf
// (Abramowitz & Stegun 7.1.26), and the SD 2.x fixture's loss lands at
// 1.07e-6 on lavapipe.
func TestConditionParityVulkan(t *testing.T) {
	dev := vktest.Device(t)
	for _, dir := range sdfixtures.Folders(t, sdfixtures.UNet) {
		t.Run(filepath.Base(dir), func(t *testing.T) { checkConditionParity(t, dev, dir, 5*tolLoss) })
	}
}

// TestUNet3DParityVulkan runs the UNet3D fixture on the Vulkan device: every
// 3-D op (Conv3D in its three passes, trilinear upsampling) in a shader,
// the space-to-depth copies of patch_size too (package tensor splits views
// of more than six axes).
func TestUNet3DParityVulkan(t *testing.T) {
	dev := vktest.Device(t)
	checkUNet3DParity(t, dev)
}
