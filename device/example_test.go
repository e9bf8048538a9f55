package device_test

import (
	"fmt"
	"strings"

	"github.com/godiffuse/godiffuse/device"
)

// Choosing a device: "auto" takes a Vulkan GPU when the loader finds one
// and the CPU otherwise, and says why; "cpu" asks for the CPU kernels.
func ExampleSelect() {
	dev, why, err := device.Select("cpu")
	if err != nil {
		panic(err)
	}
	fmt.Println(strings.HasPrefix(dev.Name(), "cpu("), strings.Contains(why, "-device=cpu"))
	// Output: true true
}
