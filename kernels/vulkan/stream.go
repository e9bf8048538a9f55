//go:build !windows

package vulkan

import (
	"errors"
	"fmt"
	"unsafe"

	"github.com/godiffuse/godiffuse/kernels/vulkan/internal/vk"
)

// vkBuf is a VkBuffer with its own VkDeviceMemory.
type vkBuf struct {
	buf, mem uintptr
	size     uint64
	mapped   []byte // host-visible buffers only
}

const wholeSize = ^uint64(0)

// newBuffer creates a storage buffer of size bytes in memory with the
// wanted properties (and maps it when it is host-visible).
func (c *context) newBuffer(size uint64, want uint32) (*vkBuf, error) {
	a := c.scratch
	defer a.reset()
	size = max(size, 4)
	ci := newIn[vk.BufferCreateInfo](a)
	ci.SType = stBufferCreateInfo
	ci.Size = size
	ci.Usage = bufferUsageStorage | bufferUsageTransferSrc | bufferUsageTransferDst
	out := newIn[uintptr](a)
	if err := call("vkCreateBuffer", c.p.createBuffer, c.device, addr(ci), 0, addr(out)); err != nil {
		return nil, err
	}
	b := &vkBuf{buf: *out, size: size}
	req := newIn[vk.MemoryRequirements](a)
	callVoid(c.p.getBufferMemoryRequirements, c.device, b.buf, addr(req))
	typ, ok := c.memoryType(req.MemoryTypeBits, want)
	if !ok {
		callVoid(c.p.destroyBuffer, c.device, b.buf, 0)
		return nil, fmt.Errorf("vulkan: %s has no memory type with properties %#x for a buffer", c.phys.Name, want)
	}
	ai := newIn[vk.MemoryAllocateInfo](a)
	ai.SType = stMemoryAllocateInfo
	ai.AllocationSize = req.Size
	ai.MemoryTypeIndex = typ
	if err := call("vkAllocateMemory", c.p.allocateMemory, c.device, addr(ai), 0, addr(out)); err != nil {
		callVoid(c.p.destroyBuffer, c.device, b.buf, 0)
		return nil, fmt.Errorf("%w (allocating %d bytes)", err, req.Size)
	}
	b.mem = *out
	if err := call("vkBindBufferMemory", c.p.bindBufferMemory, c.device, b.buf, b.mem, 0); err != nil {
		c.freeBuffer(b)
		return nil, err
	}
	if want&memHostVisible != 0 {
		ptr := newIn[unsafe.Pointer](a) // the driver's address, outside the Go heap
		if err := call("vkMapMemory", c.p.mapMemory, c.device, b.mem, 0, uintptr(wholeSize), 0, addr(ptr)); err != nil {
			c.freeBuffer(b)
			return nil, err
		}
		b.mapped = unsafe.Slice((*byte)(*ptr), size)
	}
	return b, nil
}

func (c *context) freeBuffer(b *vkBuf) {
	if b.mapped != nil {
		callVoid(c.p.unmapMemory, c.device, b.mem)
		b.mapped = nil
	}
	callVoid(c.p.destroyBuffer, c.device, b.buf, 0)
	callVoid(c.p.freeMemory, c.device, b.mem, 0)
}

// pipeline is a compute shader with nbuf storage buffers (bindings 0…nbuf-1
// of set 0) and push constants.
type pipeline struct {
	name                  string
	setLayout, layout, pl uintptr
	nbuf, push            int
}

const maxPush = 128 // bytes of push constants every device supports

// newPipeline makes a compute pipeline; spec holds the values of the
// shader's specialization constants 0, 1, … (4 bytes each).
func (c *context) newPipeline(name string, spirv []byte, nbuf int, cache uintptr, spec []uint32) (*pipeline, error) {
	a := c.scratch
	defer a.reset()
	if len(spirv)%4 != 0 || len(spirv) == 0 {
		return nil, fmt.Errorf("vulkan: shader %s: %d bytes of SPIR-V", name, len(spirv))
	}
	p := &pipeline{name: name, nbuf: nbuf, push: maxPush}
	out := newIn[uintptr](a)
	sm := newIn[vk.ShaderModuleCreateInfo](a)
	sm.SType = stShaderModuleCreateInfo
	sm.CodeSize = uintptr(len(spirv))
	sm.PCode = a.bytesIn(spirv)
	if err := call("vkCreateShaderModule "+name, c.p.createShaderModule, c.device, addr(sm), 0, addr(out)); err != nil {
		return nil, err
	}
	module := *out
	defer callVoid(c.p.destroyShaderModule, c.device, module, 0)

	binds := sliceIn[vk.DescriptorSetLayoutBinding](a, nbuf)
	for i := range binds {
		binds[i] = vk.DescriptorSetLayoutBinding{Binding: uint32(i), DescriptorType: descriptorTypeStorageBuffer,
			DescriptorCount: 1, StageFlags: shaderStageCompute}
	}
	dl := newIn[vk.DescriptorSetLayoutCreateInfo](a)
	dl.SType = stDescriptorSetLayoutCreateInfo
	dl.BindingCount = uint32(nbuf)
	dl.PBindings = addrOf(binds)
	if err := call("vkCreateDescriptorSetLayout", c.p.createDescriptorSetLayout, c.device, addr(dl), 0, addr(out)); err != nil {
		return nil, err
	}
	p.setLayout = *out
	pr := newIn[vk.PushConstantRange](a)
	pr.StageFlags = shaderStageCompute
	pr.Size = maxPush
	pl := newIn[vk.PipelineLayoutCreateInfo](a)
	pl.SType = stPipelineLayoutCreateInfo
	pl.SetLayoutCount = 1
	sl := newIn[uintptr](a)
	*sl = p.setLayout
	pl.PSetLayouts = addr(sl)
	pl.PushConstantRangeCount = 1
	pl.PPushConstantRanges = addr(pr)
	if err := call("vkCreatePipelineLayout", c.p.createPipelineLayout, c.device, addr(pl), 0, addr(out)); err != nil {
		c.destroyPipeline(p)
		return nil, err
	}
	p.layout = *out
	ci := newIn[vk.ComputePipelineCreateInfo](a)
	ci.SType = stComputePipelineCreateInfo
	ci.Stage.SType = stPipelineShaderStageCreateInfo
	ci.Stage.Stage = shaderStageCompute
	ci.Stage.Module = module
	ci.Stage.PName = a.cstr("main")
	if len(spec) > 0 {
		entries := sliceIn[vk.SpecializationMapEntry](a, len(spec))
		data := sliceIn[uint32](a, len(spec))
		for i, v := range spec {
			entries[i] = vk.SpecializationMapEntry{ConstantID: uint32(i), Offset: uint32(4 * i), Size: 4}
			data[i] = v
		}
		si := newIn[vk.SpecializationInfo](a)
		si.MapEntryCount = uint32(len(spec))
		si.PMapEntries = addrOf(entries)
		si.DataSize = uintptr(4 * len(spec))
		si.PData = addrOf(data)
		ci.Stage.PSpecializationInfo = addr(si)
	}
	ci.Layout = p.layout
	if err := call("vkCreateComputePipelines "+name, c.p.createComputePipelines, c.device, cache, 1, addr(ci), 0, addr(out)); err != nil {
		c.destroyPipeline(p)
		return nil, err
	}
	p.pl = *out
	return p, nil
}

func (c *context) destroyPipeline(p *pipeline) {
	if p.pl != 0 {
		callVoid(c.p.destroyPipeline, c.device, p.pl, 0)
	}
	if p.layout != 0 {
		callVoid(c.p.destroyPipelineLayout, c.device, p.layout, 0)
	}
	if p.setLayout != 0 {
		callVoid(c.p.destroyDescriptorSetLayout, c.device, p.setLayout, 0)
	}
}

// stream records work into one command buffer and submits it only when the
// host needs a result (a download, Synchronize) or a pool runs out, so a
// whole forward/backward/optimizer step goes to the GPU in a few
// submissions. Every dispatch and copy is followed by a full memory barrier:
// the ops of a step depend on each other in sequence anyway.
type stream struct {
	c        *context
	cmdPool  uintptr
	cb       uintptr
	fence    uintptr
	descPool uintptr
	sets     int // descriptor sets used since the last submit
	open     bool
	a        *arena // structs of the recorded commands; reset after each submit
	records  int
}

const setsPerSubmit = 4096

func newStream(c *context) (*stream, error) {
	a, err := newArena(64 << 20)
	if err != nil {
		return nil, err
	}
	s := &stream{c: c, a: a}
	sc := c.scratch
	defer sc.reset()
	out := newIn[uintptr](sc)
	cp := newIn[vk.CommandPoolCreateInfo](sc)
	cp.SType = stCommandPoolCreateInfo
	cp.Flags = commandPoolResetBuffer
	cp.QueueFamilyIndex = c.family
	if err := call("vkCreateCommandPool", c.p.createCommandPool, c.device, addr(cp), 0, addr(out)); err != nil {
		a.free()
		return nil, err
	}
	s.cmdPool = *out
	ca := newIn[vk.CommandBufferAllocateInfo](sc)
	ca.SType = stCommandBufferAllocateInfo
	ca.CommandPool = s.cmdPool
	ca.Level = commandBufferLevelPrimary
	ca.CommandBufferCount = 1
	if err := call("vkAllocateCommandBuffers", c.p.allocateCommandBuffers, c.device, addr(ca), addr(out)); err != nil {
		s.destroy()
		return nil, err
	}
	s.cb = *out
	fi := newIn[vk.FenceCreateInfo](sc)
	fi.SType = stFenceCreateInfo
	if err := call("vkCreateFence", c.p.createFence, c.device, addr(fi), 0, addr(out)); err != nil {
		s.destroy()
		return nil, err
	}
	s.fence = *out
	ps := newIn[vk.DescriptorPoolSize](sc)
	ps.Type = descriptorTypeStorageBuffer
	ps.DescriptorCount = setsPerSubmit * 8
	dp := newIn[vk.DescriptorPoolCreateInfo](sc)
	dp.SType = stDescriptorPoolCreateInfo
	dp.MaxSets = setsPerSubmit
	dp.PoolSizeCount = 1
	dp.PPoolSizes = addr(ps)
	if err := call("vkCreateDescriptorPool", c.p.createDescriptorPool, c.device, addr(dp), 0, addr(out)); err != nil {
		s.destroy()
		return nil, err
	}
	s.descPool = *out
	return s, nil
}

func (s *stream) destroy() {
	p, d := s.c.p, s.c.device
	if s.descPool != 0 {
		callVoid(p.destroyDescriptorPool, d, s.descPool, 0)
	}
	if s.fence != 0 {
		callVoid(p.destroyFence, d, s.fence, 0)
	}
	if s.cmdPool != 0 {
		callVoid(p.destroyCommandPool, d, s.cmdPool, 0)
	}
	s.a.free()
}

func (s *stream) begin() error {
	if s.open {
		return nil
	}
	bi := newIn[vk.CommandBufferBeginInfo](s.a)
	bi.SType = stCommandBufferBeginInfo
	bi.Flags = commandBufferOneTimeSubmit
	if err := call("vkBeginCommandBuffer", s.c.p.beginCommandBuffer, s.cb, addr(bi)); err != nil {
		return err
	}
	s.open = true
	return nil
}

// barrier makes every earlier shader or transfer write visible to every
// later shader, transfer or host access.
func (s *stream) barrier() {
	mb := newIn[vk.MemoryBarrier](s.a)
	mb.SType = stMemoryBarrier
	mb.SrcAccessMask = accessShaderWrite | accessTransferWrite
	mb.DstAccessMask = accessShaderRead | accessShaderWrite | accessTransferRead | accessTransferWrite | accessHostRead
	callVoid(s.c.p.cmdPipelineBarrier, s.cb, stageComputeShader|stageTransfer, stageComputeShader|stageTransfer|stageHost,
		0, 1, addr(mb), 0, 0, 0, 0)
}

// dispatch records one compute dispatch over bufs with push constants.
func (s *stream) dispatch(p *pipeline, bufs []uintptr, push []uint32, gx, gy, gz int) error {
	if len(bufs) != p.nbuf || len(push)*4 > p.push {
		return fmt.Errorf("vulkan: %s takes %d buffers and %d bytes of constants, given %d and %d", p.name, p.nbuf, p.push, len(bufs), 4*len(push))
	}
	if gx == 0 || gy == 0 || gz == 0 {
		return nil
	}
	lim := s.c.limits.MaxComputeWorkGroupCount
	if uint32(gx) > lim[0] || uint32(gy) > lim[1] || uint32(gz) > lim[2] {
		return fmt.Errorf("vulkan: %s: %d×%d×%d workgroups exceed the device's %v", p.name, gx, gy, gz, lim)
	}
	if s.sets == setsPerSubmit || s.a.off > len(s.a.mem)-(1<<20) {
		if err := s.flush(); err != nil {
			return err
		}
	}
	if err := s.begin(); err != nil {
		return err
	}
	a := s.a
	ai := newIn[vk.DescriptorSetAllocateInfo](a)
	ai.SType = stDescriptorSetAllocateInfo
	ai.DescriptorPool = s.descPool
	ai.DescriptorSetCount = 1
	sl := newIn[uintptr](a)
	*sl = p.setLayout
	ai.PSetLayouts = addr(sl)
	set := newIn[uintptr](a)
	if err := call("vkAllocateDescriptorSets", s.c.p.allocateDescriptorSets, s.c.device, addr(ai), addr(set)); err != nil {
		return err
	}
	s.sets++
	infos := sliceIn[vk.DescriptorBufferInfo](a, len(bufs))
	writes := sliceIn[vk.WriteDescriptorSet](a, len(bufs))
	for i, b := range bufs {
		infos[i] = vk.DescriptorBufferInfo{Buffer: b, Offset: 0, Range: wholeSize}
		writes[i] = vk.WriteDescriptorSet{SType: stWriteDescriptorSet, DstSet: *set, DstBinding: uint32(i), DescriptorCount: 1,
			DescriptorType: descriptorTypeStorageBuffer, PBufferInfo: addr(&infos[i])}
	}
	callVoid(s.c.p.updateDescriptorSets, s.c.device, uintptr(len(writes)), addrOf(writes), 0, 0)
	callVoid(s.c.p.cmdBindPipeline, s.cb, pipelineBindPointCompute, p.pl)
	callVoid(s.c.p.cmdBindDescriptorSets, s.cb, pipelineBindPointCompute, p.layout, 0, 1, addr(set), 0, 0)
	if len(push) > 0 {
		pc := sliceIn[uint32](a, len(push))
		copy(pc, push)
		callVoid(s.c.p.cmdPushConstants, s.cb, p.layout, shaderStageCompute, 0, uintptr(4*len(push)), addrOf(pc))
	}
	callVoid(s.c.p.cmdDispatch, s.cb, uintptr(gx), uintptr(gy), uintptr(gz))
	s.barrier()
	s.records++
	return nil
}

// copyBuffer records a copy of n bytes.
func (s *stream) copyBuffer(dst, src uintptr, dstOff, srcOff, n uint64) error {
	if n == 0 {
		return nil
	}
	if err := s.begin(); err != nil {
		return err
	}
	r := newIn[vk.BufferCopy](s.a)
	*r = vk.BufferCopy{SrcOffset: srcOff, DstOffset: dstOff, Size: n}
	callVoid(s.c.p.cmdCopyBuffer, s.cb, src, dst, 1, addr(r))
	s.barrier()
	s.records++
	return nil
}

// fill records a fill of n bytes (a multiple of 4) with a 32-bit pattern.
func (s *stream) fill(dst uintptr, off, n uint64, pattern uint32) error {
	if n == 0 {
		return nil
	}
	if err := s.begin(); err != nil {
		return err
	}
	callVoid(s.c.p.cmdFillBuffer, s.cb, dst, uintptr(off), uintptr(n), uintptr(pattern))
	s.barrier()
	s.records++
	return nil
}

var errDeviceLost = errors.New("vulkan: the device was lost")

// flush submits what was recorded and waits for it.
func (s *stream) flush() error {
	if !s.open {
		return nil
	}
	s.open = false
	p, d := s.c.p, s.c.device
	if err := call("vkEndCommandBuffer", p.endCommandBuffer, s.cb); err != nil {
		return err
	}
	si := newIn[vk.SubmitInfo](s.a)
	si.SType = stSubmitInfo
	si.CommandBufferCount = 1
	cb := newIn[uintptr](s.a)
	*cb = s.cb
	si.PCommandBuffers = addr(cb)
	if err := call("vkQueueSubmit", p.queueSubmit, s.c.queue, 1, addr(si), s.fence); err != nil {
		return err
	}
	fence := newIn[uintptr](s.a)
	*fence = s.fence
	for {
		err := call("vkWaitForFences", p.waitForFences, d, 1, addr(fence), 1, uintptr(10_000_000_000))
		var ve *vkError
		if errors.As(err, &ve) && ve.result == vkTimeout {
			continue // a long step; keep waiting
		}
		if err != nil {
			return err
		}
		break
	}
	if err := call("vkResetFences", p.resetFences, d, 1, addr(fence)); err != nil {
		return err
	}
	if err := call("vkResetDescriptorPool", p.resetDescriptorPool, d, s.descPool, 0); err != nil {
		return err
	}
	if err := call("vkResetCommandBuffer", p.resetCommandBuffer, s.cb, 0); err != nil {
		return err
	}
	s.sets = 0
	s.a.reset()
	return nil
}
