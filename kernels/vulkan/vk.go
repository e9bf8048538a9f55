//go:build !windows

package vulkan

import (
	"fmt"
	"runtime"
	"sync"

	"github.com/ebitengine/purego"
)

// Vulkan enum and flag values used here (from vulkan_core.h).
const (
	vkSuccess    = 0
	vkTimeout    = 2
	vkIncomplete = 5

	stApplicationInfo                            = 0
	stInstanceCreateInfo                         = 1
	stDeviceQueueCreateInfo                      = 2
	stDeviceCreateInfo                           = 3
	stSubmitInfo                                 = 4
	stMemoryAllocateInfo                         = 5
	stFenceCreateInfo                            = 8
	stBufferCreateInfo                           = 12
	stShaderModuleCreateInfo                     = 16
	stPipelineCacheCreateInfo                    = 17
	stPipelineShaderStageCreateInfo              = 18
	stComputePipelineCreateInfo                  = 29
	stPipelineLayoutCreateInfo                   = 30
	stDescriptorSetLayoutCreateInfo              = 32
	stDescriptorPoolCreateInfo                   = 33
	stDescriptorSetAllocateInfo                  = 34
	stWriteDescriptorSet                         = 35
	stCommandPoolCreateInfo                      = 39
	stCommandBufferAllocateInfo                  = 40
	stCommandBufferBeginInfo                     = 42
	stMemoryBarrier                              = 46
	stPhysicalDeviceFeatures2                    = 1000059000
	stPhysicalDeviceProperties2                  = 1000059001
	stPhysicalDeviceSubgroupProperties           = 1000094000
	stPhysicalDeviceVulkan11Features             = 49
	stPhysicalDeviceVulkan12Features             = 51
	stPhysicalDeviceCooperativeMatrixFeaturesKHR = 1000506000
	stCooperativeMatrixPropertiesKHR             = 1000506001
	stPhysicalDeviceCooperativeMatrixFeaturesNV  = 1000249000
	stCooperativeMatrixPropertiesNV              = 1000249001

	bufferUsageTransferSrc = 0x1
	bufferUsageTransferDst = 0x2
	bufferUsageStorage     = 0x20

	memDeviceLocal  = 0x1
	memHostVisible  = 0x2
	memHostCoherent = 0x4
	memHostCached   = 0x8

	queueCompute = 0x2

	descriptorTypeStorageBuffer = 7
	shaderStageCompute          = 0x20
	pipelineBindPointCompute    = 1

	stageComputeShader = 0x800
	stageTransfer      = 0x1000
	stageHost          = 0x4000

	accessShaderRead    = 0x20
	accessShaderWrite   = 0x40
	accessTransferRead  = 0x800
	accessTransferWrite = 0x1000
	accessHostRead      = 0x2000
	accessHostWrite     = 0x4000

	commandBufferOneTimeSubmit = 0x1
	commandPoolResetBuffer     = 0x2
	commandBufferLevelPrimary  = 0

	physicalDeviceTypeDiscrete   = 2
	physicalDeviceTypeIntegrated = 1
	physicalDeviceTypeCPU        = 4

	apiVersion12 = 1<<22 | 2<<12
)

var resultNames = map[int32]string{
	1: "VK_NOT_READY", 2: "VK_TIMEOUT", 3: "VK_EVENT_SET", 4: "VK_EVENT_RESET", 5: "VK_INCOMPLETE",
	-1: "VK_ERROR_OUT_OF_HOST_MEMORY", -2: "VK_ERROR_OUT_OF_DEVICE_MEMORY", -3: "VK_ERROR_INITIALIZATION_FAILED",
	-4: "VK_ERROR_DEVICE_LOST", -5: "VK_ERROR_MEMORY_MAP_FAILED", -6: "VK_ERROR_LAYER_NOT_PRESENT",
	-7: "VK_ERROR_EXTENSION_NOT_PRESENT", -8: "VK_ERROR_FEATURE_NOT_PRESENT", -9: "VK_ERROR_INCOMPATIBLE_DRIVER",
	-10: "VK_ERROR_TOO_MANY_OBJECTS", -11: "VK_ERROR_FORMAT_NOT_SUPPORTED", -12: "VK_ERROR_FRAGMENTED_POOL",
	-13: "VK_ERROR_UNKNOWN", -1000069000: "VK_ERROR_OUT_OF_POOL_MEMORY",
}

// vkError is a failed Vulkan call.
type vkError struct {
	call   string
	result int32
}

func (e *vkError) Error() string {
	name, ok := resultNames[e.result]
	if !ok {
		name = fmt.Sprintf("VkResult %d", e.result)
	}
	return fmt.Sprintf("vulkan: %s failed: %s", e.call, name)
}

// procs holds the entry points, fetched by name through
// vkGetInstanceProcAddr and vkGetDeviceProcAddr.
type procs struct {
	getInstanceProcAddr uintptr
	getDeviceProcAddr   uintptr

	// global
	createInstance uintptr
	// instance
	destroyInstance, enumeratePhysicalDevices, getPhysicalDeviceProperties, getPhysicalDeviceProperties2,
	getPhysicalDeviceFeatures2, getPhysicalDeviceQueueFamilyProperties, getPhysicalDeviceMemoryProperties,
	enumerateDeviceExtensionProperties, createDevice, getCooperativeMatrixProperties, getCooperativeMatrixPropertiesNV uintptr
	// device
	destroyDevice, getDeviceQueue, deviceWaitIdle,
	createBuffer, destroyBuffer, getBufferMemoryRequirements, allocateMemory, freeMemory, bindBufferMemory,
	mapMemory, unmapMemory,
	createShaderModule, destroyShaderModule, createDescriptorSetLayout, destroyDescriptorSetLayout,
	createPipelineLayout, destroyPipelineLayout, createComputePipelines, destroyPipeline,
	createPipelineCache, destroyPipelineCache, getPipelineCacheData,
	createDescriptorPool, destroyDescriptorPool, resetDescriptorPool, allocateDescriptorSets, updateDescriptorSets,
	createCommandPool, destroyCommandPool, allocateCommandBuffers, beginCommandBuffer, endCommandBuffer,
	resetCommandBuffer, cmdBindPipeline, cmdBindDescriptorSets, cmdPushConstants, cmdDispatch,
	cmdPipelineBarrier, cmdCopyBuffer, cmdFillBuffer,
	queueSubmit, createFence, destroyFence, waitForFences, resetFences uintptr
}

var loadLib = sync.OnceValues(func() (*procs, error) {
	if runtime.GOOS != "linux" {
		return nil, fmt.Errorf("vulkan: only Linux is supported (this is %s)", runtime.GOOS)
	}
	h, err := purego.Dlopen("libvulkan.so.1", purego.RTLD_NOW|purego.RTLD_GLOBAL)
	if err != nil {
		return nil, fmt.Errorf("vulkan: no Vulkan loader (libvulkan.so.1): %v", err)
	}
	p := &procs{}
	if p.getInstanceProcAddr, err = purego.Dlsym(h, "vkGetInstanceProcAddr"); err != nil {
		return nil, fmt.Errorf("vulkan: libvulkan.so.1 lacks vkGetInstanceProcAddr: %v", err)
	}
	return p, nil
})

// call invokes a Vulkan entry point that returns VkResult.
func call(name string, fn uintptr, args ...uintptr) error {
	r, _, _ := purego.SyscallN(fn, args...)
	if res := int32(r); res != vkSuccess {
		return &vkError{call: name, result: res}
	}
	return nil
}

// callVoid invokes a Vulkan entry point without a result.
func callVoid(fn uintptr, args ...uintptr) { purego.SyscallN(fn, args...) }

// instanceProc fetches an instance-level (or, with instance 0, global) entry point.
func (p *procs) instanceProc(a *arena, instance uintptr, name string) (uintptr, error) {
	r, _, _ := purego.SyscallN(p.getInstanceProcAddr, instance, a.cstr(name))
	if r == 0 {
		return 0, fmt.Errorf("vulkan: the loader has no %s", name)
	}
	return r, nil
}

func (p *procs) deviceProc(a *arena, device uintptr, name string) (uintptr, error) {
	r, _, _ := purego.SyscallN(p.getDeviceProcAddr, device, a.cstr(name))
	if r == 0 {
		return 0, fmt.Errorf("vulkan: the device has no %s", name)
	}
	return r, nil
}
