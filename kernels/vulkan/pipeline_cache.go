//go:build !windows

package vulkan

import (
	"encoding/hex"
	"os"
	"path/filepath"
	"unsafe"

	"github.com/godiffuse/godiffuse/kernels/vulkan/internal/vk"
)

// The pipeline cache: drivers compile SPIR-V to machine code when a pipeline
// is created, which costs from milliseconds (a GPU driver) to about a second
// (lavapipe's LLVM) per shader. The compiled pipelines are kept in a
// VkPipelineCache saved under the user's cache directory, one file per
// driver build (its pipelineCacheUUID), and loaded at start-up; the driver
// checks the header and ignores a file that does not fit.

func (c *context) cachePath() string {
	dir, err := os.UserCacheDir()
	if err != nil || os.Getenv("GODIFFUSE_VULKAN_NO_CACHE") == "1" {
		return ""
	}
	return filepath.Join(dir, "godiffuse", "vulkan-pipelines-"+hex.EncodeToString(c.cacheUUID[:])+".bin")
}

// openPipelineCache creates the cache from the saved file, if any (0 when
// the driver refuses: pipelines are then created without one).
func (c *context) openPipelineCache() uintptr {
	a := c.scratch
	defer a.reset()
	ci := newIn[vk.PipelineCacheCreateInfo](a)
	ci.SType = stPipelineCacheCreateInfo
	if path := c.cachePath(); path != "" {
		if data, err := os.ReadFile(path); err == nil && len(data) > 0 && len(data) < 256<<20 {
			ci.InitialDataSize = uintptr(len(data))
			ci.PInitialData = a.bytesIn(data)
		}
	}
	out := newIn[uintptr](a)
	if call("vkCreatePipelineCache", c.p.createPipelineCache, c.device, addr(ci), 0, addr(out)) != nil {
		ci.InitialDataSize, ci.PInitialData = 0, 0 // a corrupt file: start empty
		if call("vkCreatePipelineCache", c.p.createPipelineCache, c.device, addr(ci), 0, addr(out)) != nil {
			return 0
		}
	}
	return *out
}

// savePipelineCache writes the cache atomically (temporary file, rename);
// failing to save only costs the next start its compile time.
func (c *context) savePipelineCache(cache uintptr) {
	path := c.cachePath()
	if cache == 0 || path == "" {
		return
	}
	a, err := newArena(64 << 20)
	if err != nil {
		return
	}
	defer a.free()
	size := newIn[uintptr](a)
	if call("vkGetPipelineCacheData", c.p.getPipelineCacheData, c.device, cache, addr(size), 0) != nil || *size == 0 || *size > 60<<20 {
		return
	}
	buf := a.alloc(int(*size), 16)
	if call("vkGetPipelineCacheData", c.p.getPipelineCacheData, c.device, cache, addr(size), uintptr(buf)) != nil {
		return
	}
	data := append([]byte(nil), unsafe.Slice((*byte)(buf), int(*size))...)
	if os.MkdirAll(filepath.Dir(path), 0o755) != nil {
		return
	}
	tmp := path + ".tmp"
	if os.WriteFile(tmp, data, 0o644) == nil {
		os.Rename(tmp, path)
	}
}
