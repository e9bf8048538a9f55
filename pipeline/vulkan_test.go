package pipeline

import (
	"path/filepath"
	"testing"

	"github.com/godiffuse/godiffuse/internal/sdfixtures"
	"github.com/godiffuse/godiffuse/internal/vktest"
)

// TestPipelineParityVulkan runs the tiny pipeline on the Vulkan device
// (forward, loss and gradients at the CPU's tolerances), every op in a shader.
func TestPipelineParityVulkan(t *testing.T) {
	dev := vktest.Device(t)
	for _, dir := range sdfixtures.Folders(t, sdfixtures.Pipeline) {
		t.Run(filepath.Base(dir), func(t *testing.T) { checkPipeline(t, dev, dir) })
	}
}
