// Package vktest opens the Vulkan device for tests of any package: once per
// test binary, skipping the test where this machine has no Vulkan loader or
// device — unless GODIFFUSE_REQUIRE_VULKAN=1 (as in .ci/run), which turns
// that skip into a failure so CI proves the Vulkan tests ran.
package vktest

import (
	"fmt"
	"os"
	"sync"
	"testing"

	"github.com/godiffuse/godiffuse/kernels/vulkan"
)

var (
	once sync.Once
	dev  *vulkan.Device
	err  error
)

// Device returns the shared test device (the one GODIFFUSE_DEVICE's auto
// rule would pick) or skips t.
func Device(t testing.TB) *vulkan.Device {
	t.Helper()
	once.Do(func() {
		var devs []vulkan.PhysicalDevice
		if devs, err = vulkan.Devices(); err == nil && len(devs) == 0 {
			err = fmt.Errorf("the loader lists no Vulkan device")
		}
		if err == nil {
			dev, err = vulkan.New(-1)
		}
		if err == nil {
			// The tests compare with the CPU at fp32 tolerances: the fp16
			// cooperative-matrix GEMMs (auto-selected on GPUs that have
			// them) are tested on their own (TestCooperativeMatrixGEMM).
			err = dev.SetMatMulFP16(false)
		}
	})
	if err != nil {
		if os.Getenv("GODIFFUSE_REQUIRE_VULKAN") == "1" {
			t.Fatalf("GODIFFUSE_REQUIRE_VULKAN=1 but Vulkan is unusable here: %v", err)
		}
		t.Skipf("no Vulkan here (%v): apt-get install libvulkan1 mesa-vulkan-drivers to run the Vulkan tests on lavapipe", err)
	}
	return dev
}
