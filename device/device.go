// Package device picks the tensor.Device a program runs on:
//
//	auto       a Vulkan GPU when one is present, otherwise the CPU
//	cpu        the CPU kernels
//	vulkan     the first discrete GPU, else integrated, else any Vulkan device
//	vulkan:N   Vulkan device N (as `diffuse devices` or vulkaninfo lists them)
//
// The empty spec means the GODIFFUSE_DEVICE environment variable, or auto.
// auto never fails: a missing loader, no device, or an error at start-up
// falls back to the CPU and the reason says why. An explicit vulkan fails
// with the cause instead.
package device

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"

	"github.com/godiffuse/godiffuse/kernels"
	"github.com/godiffuse/godiffuse/kernels/vulkan"
	"github.com/godiffuse/godiffuse/tensor"
)

var (
	mu     sync.Mutex
	opened = map[int]*vulkan.Device{}
)

// openVulkan opens a Vulkan device once per process and index.
func openVulkan(index int) (*vulkan.Device, error) {
	mu.Lock()
	defer mu.Unlock()
	if d, ok := opened[index]; ok {
		return d, nil
	}
	d, err := vulkan.New(index)
	if err != nil {
		return nil, err
	}
	opened[index] = d
	return d, nil
}

// MaxThreads bounds SelectThreads' thread count.
const MaxThreads = 4096

// Select returns the device for spec and one line saying which and why.
func Select(spec string) (tensor.Device, string, error) { return SelectThreads(spec, 0) }

// SelectThreads is Select with the CPU device's kernels on threads
// goroutines (0: GOMAXPROCS; results do not depend on it).
func SelectThreads(spec string, threads int) (tensor.Device, string, error) {
	if threads < 0 || threads > MaxThreads {
		return nil, "", fmt.Errorf("threads %d: want 0 (all cores) to %d", threads, MaxThreads)
	}
	source := "-device"
	if spec == "" {
		spec, source = os.Getenv("GODIFFUSE_DEVICE"), "GODIFFUSE_DEVICE"
		if spec == "" {
			spec, source = "auto", "default"
		}
	}
	cpu := kernels.CPU()
	if threads > 0 {
		cpu = kernels.NewCPU(threads)
	}
	switch {
	case spec == "cpu":
		return cpu, fmt.Sprintf("device %s (%s=cpu)", cpu.Name(), source), nil
	case spec == "auto":
		devs, err := vulkan.Devices()
		if err != nil {
			return cpu, fmt.Sprintf("device %s (auto: %v)", cpu.Name(), err), nil
		}
		for _, want := range []string{"discrete", "integrated", "virtual"} {
			for _, d := range devs {
				if d.Type != want {
					continue
				}
				vk, err := openVulkan(d.Index)
				if err != nil {
					return cpu, fmt.Sprintf("device %s (auto: Vulkan device %d %q failed to start: %v)", cpu.Name(), d.Index, d.Name, err), nil
				}
				return vk, fmt.Sprintf("device %s (auto: a %s GPU)", vk.Name(), want), nil
			}
		}
		why := "the Vulkan loader lists no device"
		if len(devs) > 0 {
			why = fmt.Sprintf("no Vulkan GPU; %q is a CPU implementation, slower than the CPU kernels (ask for it with vulkan:%d)", devs[0].Name, devs[0].Index)
		}
		return cpu, fmt.Sprintf("device %s (auto: %s)", cpu.Name(), why), nil
	case spec == "vulkan" || strings.HasPrefix(spec, "vulkan:"):
		index := -1
		if n, ok := strings.CutPrefix(spec, "vulkan:"); ok {
			i, err := strconv.Atoi(n)
			if err != nil || i < 0 {
				return nil, "", fmt.Errorf("%s %q: want vulkan:N with N ≥ 0", source, spec)
			}
			index = i
		}
		vk, err := openVulkan(index)
		if err != nil {
			return nil, "", fmt.Errorf("%s=%s: %w", source, spec, err)
		}
		return vk, fmt.Sprintf("device %s (%s=%s)", vk.Name(), source, spec), nil
	}
	return nil, "", fmt.Errorf("%s %q: want auto, cpu, vulkan or vulkan:N", source, spec)
}
