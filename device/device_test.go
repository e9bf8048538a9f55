package device

import (
	"strings"
	"testing"
)

func TestSelect(t *testing.T) {
	dev, why, err := Select("cpu")
	if err != nil || !strings.HasPrefix(dev.Name(), "cpu") || !strings.Contains(why, "cpu") {
		t.Fatalf("cpu: %v %q %v", dev, why, err)
	}
	// auto never fails: a GPU, or the CPU with a reason.
	dev, why, err = Select("auto")
	if err != nil || dev == nil || why == "" {
		t.Fatalf("auto: %v %q %v", dev, why, err)
	}
	t.Log(why)
	for _, bad := range []string{"gpu", "vulkan:x", "vulkan:-1"} {
		if _, _, err := Select(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	if _, _, err := Select("vulkan:99"); err == nil || !strings.Contains(err.Error(), "vulkan:99") {
		t.Errorf("vulkan:99: %v", err)
	}
	t.Setenv("GODIFFUSE_DEVICE", "cpu")
	if _, why, err := Select(""); err != nil || !strings.Contains(why, "GODIFFUSE_DEVICE=cpu") {
		t.Errorf("GODIFFUSE_DEVICE=cpu: %q %v", why, err)
	}
}
