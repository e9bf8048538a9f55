//go:build !windows

package vulkan

import (
	"os"
	"testing"
)

// requireVulkan skips a test when this machine has no Vulkan loader or
// device, unless GODIFFUSE_REQUIRE_VULKAN=1 (as in .ci/run), which makes
// that a failure so CI proves the Vulkan tests ran.
func requireVulkan(t testing.TB) []PhysicalDevice {
	t.Helper()
	devs, err := Devices()
	if err == nil && len(devs) == 0 {
		err = errNoDevice
	}
	if err != nil {
		if os.Getenv("GODIFFUSE_REQUIRE_VULKAN") == "1" {
			t.Fatalf("GODIFFUSE_REQUIRE_VULKAN=1 but Vulkan is unusable here: %v", err)
		}
		t.Skipf("no Vulkan here (%v): apt-get install libvulkan1 mesa-vulkan-drivers to run the Vulkan tests on lavapipe", err)
	}
	return devs
}

func TestDevices(t *testing.T) {
	for _, d := range requireVulkan(t) {
		t.Logf("device %d: %s (%s, Vulkan %s, subgroup %d, cooperative matrix %v)", d.Index, d.Name, d.Type, d.APIVersion, d.SubgroupSize, d.CooperativeMatrix)
	}
	c, err := newContext(-1)
	if err != nil {
		t.Fatal(err)
	}
	defer c.destroy()
	t.Logf("chose %s, queue family %d, max shared memory %d, max workgroup invocations %d",
		c.phys.Name, c.family, c.limits.MaxComputeSharedMemorySize, c.limits.MaxComputeWorkGroupInvocations)
	if _, err := newContext(99); err == nil {
		t.Error("device 99 was accepted")
	}
}
