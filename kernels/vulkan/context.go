//go:build !windows

package vulkan

import (
	"fmt"
	"os"
	"strings"

	"github.com/godiffuse/godiffuse/kernels/vulkan/internal/vk"
)

var deviceTypeNames = map[int32]string{0: "other", 1: "integrated", 2: "discrete", 3: "virtual", 4: "cpu"}

// context is an instance, a logical device with one compute queue, and the
// device's entry points.
type context struct {
	p          *procs
	instance   uintptr
	phys       PhysicalDevice
	device     uintptr
	queue      uintptr
	family     uint32
	memProps   vk.PhysicalDeviceMemoryProperties
	limits     vk.PhysicalDeviceLimits
	coopShader string   // the cooperative-matrix GEMM shader enabled on this device ("": none)
	coopSpec   []uint32 // its specialization constants
	cacheUUID  [16]uint8
	scratch    *arena // for one call's structs; reset after each use
}

func newInstance(p *procs, a *arena) (uintptr, error) {
	var err error
	if p.createInstance, err = p.instanceProc(a, 0, "vkCreateInstance"); err != nil {
		return 0, err
	}
	app := newIn[vk.ApplicationInfo](a)
	app.SType = stApplicationInfo
	app.PApplicationName = a.cstr("godiffuse")
	app.PEngineName = a.cstr("godiffuse")
	app.ApiVersion = apiVersion12
	ci := newIn[vk.InstanceCreateInfo](a)
	ci.SType = stInstanceCreateInfo
	ci.PApplicationInfo = addr(app)
	if layers := os.Getenv("GODIFFUSE_VULKAN_LAYERS"); layers != "" { // e.g. VK_LAYER_KHRONOS_validation
		names := strings.Split(layers, ",")
		arr := sliceIn[uintptr](a, len(names))
		for i, n := range names {
			arr[i] = a.cstr(n)
		}
		ci.EnabledLayerCount, ci.PpEnabledLayerNames = uint32(len(names)), addrOf(arr)
	}
	out := newIn[uintptr](a)
	if err := call("vkCreateInstance", p.createInstance, addr(ci), 0, addr(out)); err != nil {
		return 0, err
	}
	inst := *out
	for _, f := range []struct {
		name string
		dst  *uintptr
	}{
		{"vkDestroyInstance", &p.destroyInstance}, {"vkEnumeratePhysicalDevices", &p.enumeratePhysicalDevices},
		{"vkGetPhysicalDeviceProperties", &p.getPhysicalDeviceProperties},
		{"vkGetPhysicalDeviceProperties2", &p.getPhysicalDeviceProperties2},
		{"vkGetPhysicalDeviceFeatures2", &p.getPhysicalDeviceFeatures2},
		{"vkGetPhysicalDeviceQueueFamilyProperties", &p.getPhysicalDeviceQueueFamilyProperties},
		{"vkGetPhysicalDeviceMemoryProperties", &p.getPhysicalDeviceMemoryProperties},
		{"vkEnumerateDeviceExtensionProperties", &p.enumerateDeviceExtensionProperties},
		{"vkCreateDevice", &p.createDevice}, {"vkGetDeviceProcAddr", &p.getDeviceProcAddr},
	} {
		if *f.dst, err = p.instanceProc(a, inst, f.name); err != nil {
			callVoid(p.destroyInstance, inst, 0)
			return 0, err
		}
	}
	// Optional: absent on drivers without VK_KHR_cooperative_matrix.
	p.getCooperativeMatrixProperties, _ = p.instanceProc(a, inst, "vkGetPhysicalDeviceCooperativeMatrixPropertiesKHR")
	p.getCooperativeMatrixPropertiesNV, _ = p.instanceProc(a, inst, "vkGetPhysicalDeviceCooperativeMatrixPropertiesNV")
	return inst, nil
}

// enumerate lists the physical devices of an instance.
func enumerate(p *procs, a *arena, inst uintptr) ([]PhysicalDevice, error) {
	count := newIn[uint32](a)
	if err := call("vkEnumeratePhysicalDevices", p.enumeratePhysicalDevices, inst, addr(count), 0); err != nil {
		return nil, err
	}
	handles := sliceIn[uintptr](a, int(*count))
	if *count > 0 {
		if err := call("vkEnumeratePhysicalDevices", p.enumeratePhysicalDevices, inst, addr(count), addrOf(handles)); err != nil {
			return nil, err
		}
	}
	var out []PhysicalDevice
	for i, h := range handles[:*count] {
		sub := newIn[vk.PhysicalDeviceSubgroupProperties](a)
		sub.SType = stPhysicalDeviceSubgroupProperties
		props := newIn[vk.PhysicalDeviceProperties2](a)
		props.SType = stPhysicalDeviceProperties2
		props.PNext = addr(sub)
		callVoid(p.getPhysicalDeviceProperties2, h, addr(props))
		pr := &props.Properties
		v := pr.ApiVersion
		d := PhysicalDevice{Index: i, Name: cString(pr.DeviceName[:]), Type: deviceTypeNames[pr.DeviceType], typ: pr.DeviceType,
			APIVersion: fmt.Sprintf("%d.%d.%d", v>>22&0x7f, v>>12&0x3ff, v&0xfff), SubgroupSize: int(sub.SubgroupSize), handle: h}
		if hasExtension(p, a, h, "VK_KHR_cooperative_matrix") && p.getCooperativeMatrixProperties != 0 {
			d.CooperativeMatrix, d.khrFrag = coopShapes(p, a, h)
		}
		if hasExtension(p, a, h, "VK_NV_cooperative_matrix") && p.getCooperativeMatrixPropertiesNV != 0 {
			d.CooperativeMatrixNV = hasNVShape(p, a, h)
		}
		out = append(out, d)
	}
	return out, nil
}

func hasExtension(p *procs, a *arena, phys uintptr, name string) bool {
	count := newIn[uint32](a)
	if call("vkEnumerateDeviceExtensionProperties", p.enumerateDeviceExtensionProperties, phys, 0, addr(count), 0) != nil {
		return false
	}
	exts := sliceIn[vk.ExtensionProperties](a, int(*count))
	if *count == 0 || call("vkEnumerateDeviceExtensionProperties", p.enumerateDeviceExtensionProperties, phys, 0, addr(count), addrOf(exts)) != nil {
		return false
	}
	for _, e := range exts[:*count] {
		if cString(e.ExtensionName[:]) == name {
			return true
		}
	}
	return false
}

// Component types of VK_KHR_cooperative_matrix (VkComponentTypeKHR).
var componentNames = map[int32]string{0: "f16", 1: "f32", 2: "f64", 3: "i8", 4: "i16", 5: "i32", 6: "i64",
	7: "u8", 8: "u16", 9: "u32", 10: "u64", 1000141000: "bf16"}

// coopShapes lists the device's VK_KHR_cooperative_matrix shapes and picks
// the fragment edge for gemm_coop_khr: 16 where 16×16×16 fp16·fp16+fp32→fp32
// at subgroup scope is listed, else 8 for 8×8×8, else 0.
func coopShapes(p *procs, a *arena, phys uintptr) (shapes []string, frag int) {
	count := newIn[uint32](a)
	if call("vkGetPhysicalDeviceCooperativeMatrixPropertiesKHR", p.getCooperativeMatrixProperties, phys, addr(count), 0) != nil {
		return nil, 0
	}
	props := sliceIn[vk.CooperativeMatrixPropertiesKHR](a, int(*count))
	for i := range props {
		props[i].SType = stCooperativeMatrixPropertiesKHR
	}
	if *count == 0 || call("vkGetPhysicalDeviceCooperativeMatrixPropertiesKHR", p.getCooperativeMatrixProperties, phys, addr(count), addrOf(props)) != nil {
		return nil, 0
	}
	const f16, f32, subgroup = 0, 1, 3
	for _, c := range props[:*count] {
		shapes = append(shapes, fmt.Sprintf("%dx%dx%d %s·%s+%s→%s", c.MSize, c.NSize, c.KSize,
			componentNames[c.AType], componentNames[c.BType], componentNames[c.CType], componentNames[c.ResultType]))
		if c.MSize == c.NSize && c.NSize == c.KSize && (c.MSize == 16 || c.MSize == 8) && c.AType == f16 && c.BType == f16 &&
			c.CType == f32 && c.ResultType == f32 && c.Scope == subgroup && c.SaturatingAccumulation == 0 {
			frag = max(frag, int(c.MSize))
		}
	}
	return shapes, frag
}

// hasNVShape reports the 16×16×16 fp16·fp16 + fp32 → fp32 subgroup shape.
func hasNVShape(p *procs, a *arena, phys uintptr) bool {
	count := newIn[uint32](a)
	if call("vkGetPhysicalDeviceCooperativeMatrixPropertiesNV", p.getCooperativeMatrixPropertiesNV, phys, addr(count), 0) != nil || *count == 0 {
		return false
	}
	props := sliceIn[vk.CooperativeMatrixPropertiesNV](a, int(*count))
	for i := range props {
		props[i].SType = stCooperativeMatrixPropertiesNV
	}
	if call("vkGetPhysicalDeviceCooperativeMatrixPropertiesNV", p.getCooperativeMatrixPropertiesNV, phys, addr(count), addrOf(props)) != nil {
		return false
	}
	const f16, f32, subgroup = 0, 1, 3
	for _, c := range props[:*count] {
		if c.MSize == 16 && c.NSize == 16 && c.KSize == 16 && c.AType == f16 && c.BType == f16 &&
			c.CType == f32 && c.DType == f32 && c.Scope == subgroup {
			return true
		}
	}
	return false
}

// Devices lists the Vulkan devices of this machine (an error when there is
// no loader or no driver).
func Devices() ([]PhysicalDevice, error) {
	p, err := loadLib()
	if err != nil {
		return nil, err
	}
	a, err := newArena(1 << 20)
	if err != nil {
		return nil, err
	}
	defer a.free()
	inst, err := newInstance(p, a)
	if err != nil {
		return nil, err
	}
	defer callVoid(p.destroyInstance, inst, 0)
	return enumerate(p, a, inst)
}

// newContext creates a logical device with one compute queue on physical
// device index (-1: the first discrete GPU, else the first integrated one,
// else the first device of any type).
func newContext(index int) (*context, error) {
	p, err := loadLib()
	if err != nil {
		return nil, err
	}
	a, err := newArena(1 << 20)
	if err != nil {
		return nil, err
	}
	c := &context{p: p, scratch: a}
	if c.instance, err = newInstance(p, a); err != nil {
		a.free()
		return nil, err
	}
	fail := func(err error) (*context, error) {
		c.destroy()
		return nil, err
	}
	devs, err := enumerate(p, a, c.instance)
	if err != nil {
		return fail(err)
	}
	if len(devs) == 0 {
		return fail(fmt.Errorf("vulkan: the loader found no Vulkan device (is a driver such as mesa-vulkan-drivers installed?)"))
	}
	switch {
	case index >= len(devs):
		return fail(fmt.Errorf("vulkan: device %d asked for, but there are %d (0…%d)", index, len(devs), len(devs)-1))
	case index >= 0:
		c.phys = devs[index]
	default:
		c.phys = devs[0]
		for _, want := range []int32{physicalDeviceTypeDiscrete, physicalDeviceTypeIntegrated} {
			if i := indexOfType(devs, want); i >= 0 {
				c.phys = devs[i]
				break
			}
		}
	}
	ph := c.phys.handle
	props := newIn[vk.PhysicalDeviceProperties](a)
	callVoid(p.getPhysicalDeviceProperties, ph, addr(props))
	c.limits = props.Limits
	c.cacheUUID = props.PipelineCacheUUID
	mp := newIn[vk.PhysicalDeviceMemoryProperties](a)
	callVoid(p.getPhysicalDeviceMemoryProperties, ph, addr(mp))
	c.memProps = *mp

	count := newIn[uint32](a)
	callVoid(p.getPhysicalDeviceQueueFamilyProperties, ph, addr(count), 0)
	fams := sliceIn[vk.QueueFamilyProperties](a, int(*count))
	callVoid(p.getPhysicalDeviceQueueFamilyProperties, ph, addr(count), addrOf(fams))
	c.family = ^uint32(0)
	for i, f := range fams[:*count] {
		if f.QueueFlags&queueCompute != 0 {
			c.family = uint32(i)
			break
		}
	}
	if c.family == ^uint32(0) {
		return fail(fmt.Errorf("vulkan: %s has no compute queue", c.phys.Name))
	}

	prio := newIn[float32](a)
	*prio = 1
	qci := newIn[vk.DeviceQueueCreateInfo](a)
	qci.SType = stDeviceQueueCreateInfo
	qci.QueueFamilyIndex = c.family
	qci.QueueCount = 1
	qci.PQueuePriorities = addr(prio)
	dci := newIn[vk.DeviceCreateInfo](a)
	dci.SType = stDeviceCreateInfo
	dci.QueueCreateInfoCount = 1
	dci.PQueueCreateInfos = addr(qci)
	c.enableCooperativeMatrix(a, dci)
	out := newIn[uintptr](a)
	if err := call("vkCreateDevice", p.createDevice, ph, addr(dci), 0, addr(out)); err != nil {
		return fail(err)
	}
	c.device = *out
	if err := c.loadDeviceProcs(); err != nil {
		return fail(err)
	}
	q := newIn[uintptr](a)
	callVoid(p.getDeviceQueue, c.device, uintptr(c.family), 0, addr(q))
	c.queue = *q
	a.reset()
	return c, nil
}

// enableCooperativeMatrix chains onto dci what the fp16 GEMM shaders need —
// the extension, its feature, shaderFloat16 and the Vulkan memory model —
// when the device has all of it, and records which shader to use:
// gemm_coop_khr (VK_KHR_cooperative_matrix, any subgroup size; a workgroup
// is 4 subgroups) where possible, else gemm_coop (VK_NV_cooperative_matrix,
// subgroups of 32).
func (c *context) enableCooperativeMatrix(a *arena, dci *vk.DeviceCreateInfo) {
	ph, sg := c.phys, c.phys.SubgroupSize
	khr := ph.khrFrag > 0 && sg > 0 && 4*sg <= int(c.limits.MaxComputeWorkGroupInvocations)
	nv := ph.CooperativeMatrixNV && sg == 32
	if !khr && !nv {
		return
	}
	// Query the features; each coop struct is chained only when its extension is there.
	v12 := newIn[vk.PhysicalDeviceVulkan12Features](a)
	v12.SType = stPhysicalDeviceVulkan12Features
	cmKHR := newIn[vk.PhysicalDeviceCooperativeMatrixFeaturesKHR](a)
	cmKHR.SType = stPhysicalDeviceCooperativeMatrixFeaturesKHR
	cmNV := newIn[vk.PhysicalDeviceCooperativeMatrixFeaturesNV](a)
	cmNV.SType = stPhysicalDeviceCooperativeMatrixFeaturesNV
	next := &v12.PNext
	if ph.CooperativeMatrix != nil {
		*next, next = addr(cmKHR), &cmKHR.PNext
	}
	if ph.CooperativeMatrixNV {
		*next = addr(cmNV)
	}
	f2 := newIn[vk.PhysicalDeviceFeatures2](a)
	f2.SType = stPhysicalDeviceFeatures2
	f2.PNext = addr(v12)
	callVoid(c.p.getPhysicalDeviceFeatures2, ph.handle, addr(f2))
	if v12.ShaderFloat16 == 0 || v12.VulkanMemoryModel == 0 {
		return
	}
	on12 := newIn[vk.PhysicalDeviceVulkan12Features](a)
	on12.SType = stPhysicalDeviceVulkan12Features
	on12.ShaderFloat16 = 1
	on12.VulkanMemoryModel = 1
	var ext string
	var sType int32
	switch {
	case khr && cmKHR.CooperativeMatrix != 0:
		ext, sType = "VK_KHR_cooperative_matrix", stPhysicalDeviceCooperativeMatrixFeaturesKHR
		c.coopShader = fmt.Sprintf("gemm_coop_khr%d", ph.khrFrag)
		c.coopSpec = []uint32{uint32(4 * sg)}
	case nv && cmNV.CooperativeMatrix != 0:
		ext, sType = "VK_NV_cooperative_matrix", stPhysicalDeviceCooperativeMatrixFeaturesNV
		c.coopShader = "gemm_coop"
	default:
		return
	}
	on := newIn[vk.PhysicalDeviceCooperativeMatrixFeaturesKHR](a) // the NV struct has the same layout (layout_c_test.go)
	on.SType = sType
	on.CooperativeMatrix = 1
	on12.PNext = addr(on)
	names := sliceIn[uintptr](a, 1)
	names[0] = a.cstr(ext)
	dci.PNext = addr(on12)
	dci.EnabledExtensionCount = 1
	dci.PpEnabledExtensionNames = addrOf(names)
}

func indexOfType(devs []PhysicalDevice, typ int32) int {
	for i, d := range devs {
		if d.typ == typ {
			return i
		}
	}
	return -1
}

func (c *context) loadDeviceProcs() error {
	p := c.p
	var err error
	for _, f := range []struct {
		name string
		dst  *uintptr
	}{
		{"vkDestroyDevice", &p.destroyDevice}, {"vkGetDeviceQueue", &p.getDeviceQueue}, {"vkDeviceWaitIdle", &p.deviceWaitIdle},
		{"vkCreateBuffer", &p.createBuffer}, {"vkDestroyBuffer", &p.destroyBuffer},
		{"vkGetBufferMemoryRequirements", &p.getBufferMemoryRequirements}, {"vkAllocateMemory", &p.allocateMemory},
		{"vkFreeMemory", &p.freeMemory}, {"vkBindBufferMemory", &p.bindBufferMemory}, {"vkMapMemory", &p.mapMemory},
		{"vkUnmapMemory", &p.unmapMemory}, {"vkCreateShaderModule", &p.createShaderModule},
		{"vkDestroyShaderModule", &p.destroyShaderModule}, {"vkCreateDescriptorSetLayout", &p.createDescriptorSetLayout},
		{"vkDestroyDescriptorSetLayout", &p.destroyDescriptorSetLayout}, {"vkCreatePipelineLayout", &p.createPipelineLayout},
		{"vkDestroyPipelineLayout", &p.destroyPipelineLayout}, {"vkCreateComputePipelines", &p.createComputePipelines},
		{"vkDestroyPipeline", &p.destroyPipeline}, {"vkCreatePipelineCache", &p.createPipelineCache},
		{"vkDestroyPipelineCache", &p.destroyPipelineCache}, {"vkGetPipelineCacheData", &p.getPipelineCacheData}, {"vkCreateDescriptorPool", &p.createDescriptorPool},
		{"vkDestroyDescriptorPool", &p.destroyDescriptorPool}, {"vkResetDescriptorPool", &p.resetDescriptorPool},
		{"vkAllocateDescriptorSets", &p.allocateDescriptorSets}, {"vkUpdateDescriptorSets", &p.updateDescriptorSets},
		{"vkCreateCommandPool", &p.createCommandPool}, {"vkDestroyCommandPool", &p.destroyCommandPool},
		{"vkAllocateCommandBuffers", &p.allocateCommandBuffers}, {"vkBeginCommandBuffer", &p.beginCommandBuffer},
		{"vkEndCommandBuffer", &p.endCommandBuffer}, {"vkResetCommandBuffer", &p.resetCommandBuffer},
		{"vkCmdBindPipeline", &p.cmdBindPipeline}, {"vkCmdBindDescriptorSets", &p.cmdBindDescriptorSets},
		{"vkCmdPushConstants", &p.cmdPushConstants}, {"vkCmdDispatch", &p.cmdDispatch},
		{"vkCmdPipelineBarrier", &p.cmdPipelineBarrier}, {"vkCmdCopyBuffer", &p.cmdCopyBuffer},
		{"vkCmdFillBuffer", &p.cmdFillBuffer}, {"vkQueueSubmit", &p.queueSubmit}, {"vkCreateFence", &p.createFence},
		{"vkDestroyFence", &p.destroyFence}, {"vkWaitForFences", &p.waitForFences}, {"vkResetFences", &p.resetFences},
	} {
		if *f.dst, err = p.deviceProc(c.scratch, c.device, f.name); err != nil {
			return err
		}
	}
	return nil
}

// memoryType picks a memory type allowed by bits with all of the wanted
// properties.
func (c *context) memoryType(bits uint32, want uint32) (uint32, bool) {
	for i := range c.memProps.MemoryTypeCount {
		if bits&(1<<i) != 0 && c.memProps.MemoryTypes[i].PropertyFlags&want == want {
			return i, true
		}
	}
	return 0, false
}

func (c *context) destroy() {
	if c.device != 0 {
		callVoid(c.p.deviceWaitIdle, c.device)
		callVoid(c.p.destroyDevice, c.device, 0)
		c.device = 0
	}
	if c.instance != 0 {
		callVoid(c.p.destroyInstance, c.instance, 0)
		c.instance = 0
	}
	c.scratch.free()
}

var errNoDevice = fmt.Errorf("vulkan: the loader found no Vulkan device (is a driver such as mesa-vulkan-drivers installed?)")
