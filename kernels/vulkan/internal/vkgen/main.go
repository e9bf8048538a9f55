// Command vkgen writes the Vulkan struct layouts the vulkan package uses:
// Go structs transcribed from Debian's vulkan_core.h (libvulkan-dev), and a
// test table of every struct's size and field offsets as gcc lays them out,
// which layout_test.go compares with unsafe.Sizeof/Offsetof of the Go
// structs. Run it from the repository root after changing the list below:
//
//	apt-get install libvulkan-dev gcc
//	go run ./kernels/vulkan/internal/vkgen
//
// Structs newer than that header (VK_KHR_cooperative_matrix) are declared
// below in C as the Vulkan specification gives them, and go through the
// same two steps.
package main

import (
	"bufio"
	"bytes"
	"fmt"
	"go/format"
	"log"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
)

var structs = []string{
	"VkApplicationInfo", "VkInstanceCreateInfo", "VkExtensionProperties", "VkLayerProperties",
	"VkPhysicalDeviceProperties", "VkPhysicalDeviceLimits", "VkPhysicalDeviceSparseProperties",
	"VkPhysicalDeviceProperties2", "VkPhysicalDeviceSubgroupProperties",
	"VkPhysicalDeviceFeatures", "VkPhysicalDeviceFeatures2", "VkPhysicalDeviceVulkan11Features",
	"VkPhysicalDeviceVulkan12Features", "VkPhysicalDeviceVulkan13Features",
	"VkQueueFamilyProperties", "VkExtent3D", "VkPhysicalDeviceMemoryProperties", "VkMemoryType", "VkMemoryHeap",
	"VkDeviceQueueCreateInfo", "VkDeviceCreateInfo",
	"VkBufferCreateInfo", "VkMemoryRequirements", "VkMemoryAllocateInfo", "VkMappedMemoryRange",
	"VkShaderModuleCreateInfo", "VkDescriptorSetLayoutBinding", "VkDescriptorSetLayoutCreateInfo",
	"VkPushConstantRange", "VkPipelineLayoutCreateInfo", "VkSpecializationMapEntry", "VkSpecializationInfo",
	"VkPipelineShaderStageCreateInfo", "VkComputePipelineCreateInfo", "VkPipelineCacheCreateInfo",
	"VkDescriptorPoolSize", "VkDescriptorPoolCreateInfo", "VkDescriptorSetAllocateInfo", "VkDescriptorBufferInfo",
	"VkWriteDescriptorSet", "VkCommandPoolCreateInfo", "VkCommandBufferAllocateInfo", "VkCommandBufferBeginInfo",
	"VkBufferCopy", "VkMemoryBarrier", "VkSubmitInfo", "VkFenceCreateInfo",
	"VkCooperativeMatrixPropertiesKHR", "VkPhysicalDeviceCooperativeMatrixFeaturesKHR",
	"VkCooperativeMatrixPropertiesNV", "VkPhysicalDeviceCooperativeMatrixFeaturesNV",
}

// Declarations from the Vulkan specification that Debian 12's header lacks.
const extraC = `
typedef enum VkComponentTypeKHR { VK_COMPONENT_TYPE_FLOAT16_KHR = 0, VK_COMPONENT_TYPE_MAX_ENUM_KHR = 0x7FFFFFFF } VkComponentTypeKHR;
typedef enum VkScopeKHR { VK_SCOPE_DEVICE_KHR = 1, VK_SCOPE_MAX_ENUM_KHR = 0x7FFFFFFF } VkScopeKHR;
typedef struct VkCooperativeMatrixPropertiesKHR {
    VkStructureType       sType;
    void*                 pNext;
    uint32_t              MSize;
    uint32_t              NSize;
    uint32_t              KSize;
    VkComponentTypeKHR    AType;
    VkComponentTypeKHR    BType;
    VkComponentTypeKHR    CType;
    VkComponentTypeKHR    ResultType;
    VkBool32              saturatingAccumulation;
    VkScopeKHR            scope;
} VkCooperativeMatrixPropertiesKHR;
typedef struct VkPhysicalDeviceCooperativeMatrixFeaturesKHR {
    VkStructureType    sType;
    void*              pNext;
    VkBool32           cooperativeMatrix;
    VkBool32           cooperativeMatrixRobustBufferAccess;
} VkPhysicalDeviceCooperativeMatrixFeaturesKHR;
`

type field struct {
	ctype, name, array string
	pointer            bool
}

func main() {
	header := flag("/usr/include/vulkan/vulkan_core.h")
	src, err := os.ReadFile(header)
	if err != nil {
		log.Fatal(err)
	}
	text := string(src) + extraC
	kinds := map[string]string{} // type name -> handle | enum | flags | flags64 | struct
	defines := map[string]string{}
	for _, m := range regexp.MustCompile(`VK_DEFINE_(?:NON_DISPATCHABLE_)?HANDLE\((\w+)\)`).FindAllStringSubmatch(text, -1) {
		kinds[m[1]] = "handle"
	}
	for _, m := range regexp.MustCompile(`typedef enum (\w+)`).FindAllStringSubmatch(text, -1) {
		kinds[m[1]] = "enum"
	}
	for _, m := range regexp.MustCompile(`typedef VkFlags (\w+);`).FindAllStringSubmatch(text, -1) {
		kinds[m[1]] = "flags"
	}
	for _, m := range regexp.MustCompile(`typedef VkFlags64 (\w+);`).FindAllStringSubmatch(text, -1) {
		kinds[m[1]] = "flags64"
	}
	for _, m := range regexp.MustCompile(`#define (VK_\w+)\s+(\d+)U?\b`).FindAllStringSubmatch(text, -1) {
		defines[m[1]] = m[2]
	}
	bodies := map[string][]field{}
	bad := map[string]string{} // struct -> a field line the parser does not handle
	fieldRe := regexp.MustCompile(`^\s*(?:const\s+)?(\w+)\s*(\*?)\s*(?:const\s*)?(\*?)\s+(\w+)(?:\[(\w+)\])?;`)
	sc := bufio.NewScanner(strings.NewReader(text))
	var cur string
	for sc.Scan() {
		line := sc.Text()
		if m := regexp.MustCompile(`^typedef struct (\w+) \{`).FindStringSubmatch(line); m != nil {
			cur = m[1]
			bodies[cur] = nil
			kinds[cur] = "struct"
			continue
		}
		if cur == "" {
			continue
		}
		if strings.HasPrefix(line, "}") {
			cur = ""
			continue
		}
		m := fieldRe.FindStringSubmatch(strings.Replace(line, "struct ", "", 1))
		if m == nil {
			bad[cur] = line
			continue
		}
		bodies[cur] = append(bodies[cur], field{ctype: m[1], pointer: m[2] != "" || m[3] != "", name: m[4], array: m[5]})
	}

	var g bytes.Buffer
	fmt.Fprintf(&g, "//go:build !windows\n\n// Code generated by go run ./kernels/vulkan/internal/vkgen from %s; DO NOT EDIT.\n\n", filepath.Base(header))
	g.WriteString("// Package vk mirrors the Vulkan C structs the vulkan package passes to the\n// driver (field by field, checked against gcc's layout by its test).\npackage vk\n\n")
	var c bytes.Buffer
	c.WriteString("#include <stdio.h>\n#include <stddef.h>\n#include <vulkan/vulkan_core.h>\n" + extraC + "\nint main(void) {\n")
	for _, s := range structs {
		fs, ok := bodies[s]
		if !ok {
			log.Fatalf("struct %s not found", s)
		}
		if line, ok := bad[s]; ok {
			log.Fatalf("%s: cannot parse field line %q", s, line)
		}
		fmt.Fprintf(&g, "// %s mirrors the C struct %s.\ntype %s struct {\n", goStruct(s), s, goStruct(s))
		fmt.Fprintf(&c, "  printf(\"\\t{\\\"%s\\\", %%zu, []uintptr{\", sizeof(%s));\n", s, s)
		for _, f := range fs {
			fmt.Fprintf(&g, "\t%s %s\n", goName(f.name), goType(f, kinds, defines))
			fmt.Fprintf(&c, "  printf(\"%%zu, \", offsetof(%s, %s));\n", s, f.name)
		}
		g.WriteString("}\n\n")
		c.WriteString("  printf(\"}},\\n\");\n")
	}
	c.WriteString("  return 0;\n}\n")
	out, err := format.Source(g.Bytes())
	if err != nil {
		log.Fatalf("%v\n%s", err, g.Bytes())
	}
	if err := os.WriteFile("kernels/vulkan/internal/vk/structs.go", out, 0o644); err != nil {
		log.Fatal(err)
	}

	tmp, err := os.MkdirTemp("", "vkgen")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(tmp)
	if err := os.WriteFile(filepath.Join(tmp, "layout.c"), c.Bytes(), 0o644); err != nil {
		log.Fatal(err)
	}
	if b, err := exec.Command("gcc", "-o", filepath.Join(tmp, "layout"), filepath.Join(tmp, "layout.c")).CombinedOutput(); err != nil {
		log.Fatalf("gcc: %v\n%s", err, b)
	}
	table, err := exec.Command(filepath.Join(tmp, "layout")).Output()
	if err != nil {
		log.Fatal(err)
	}
	var t bytes.Buffer
	fmt.Fprintf(&t, "//go:build !windows\n\n// Code generated by go run ./kernels/vulkan/internal/vkgen (gcc on %s); DO NOT EDIT.\n\n", filepath.Base(header))
	t.WriteString("package vk\n\n// cLayouts holds each struct's sizeof and the offsetof of its fields in order, as gcc computed them.\nvar cLayouts = []struct {\n\tname    string\n\tsize    uintptr\n\toffsets []uintptr\n}{\n")
	t.Write(table)
	t.WriteString("}\n\n// goStructs maps each name to a value of the Go struct.\nvar goStructs = map[string]any{\n")
	for _, s := range structs {
		fmt.Fprintf(&t, "\t%q: %s{},\n", s, goStruct(s))
	}
	t.WriteString("}\n")
	out, err = format.Source(t.Bytes())
	if err != nil {
		log.Fatal(err)
	}
	if err := os.WriteFile("kernels/vulkan/internal/vk/layout_c_test.go", out, 0o644); err != nil {
		log.Fatal(err)
	}
	fmt.Printf("wrote %d structs\n", len(structs))
}

func flag(def string) string {
	if len(os.Args) > 1 {
		return os.Args[1]
	}
	return def
}

// goStruct is the Go name of a C struct: without the Vk prefix, as package
// vk's name already says it (vk.BufferCreateInfo).
func goStruct(c string) string { return strings.TrimPrefix(c, "Vk") }

func goName(n string) string {
	return strings.ToUpper(n[:1]) + n[1:]
}

func goType(f field, kinds, defines map[string]string) string {
	var base string
	switch {
	case f.pointer:
		base = "uintptr"
	case f.ctype == "uint32_t" || f.ctype == "VkBool32" || f.ctype == "VkFlags" || f.ctype == "VkSampleMask":
		base = "uint32"
	case f.ctype == "int32_t":
		base = "int32"
	case f.ctype == "uint64_t" || f.ctype == "VkDeviceSize" || f.ctype == "VkDeviceAddress" || f.ctype == "VkFlags64":
		base = "uint64"
	case f.ctype == "size_t":
		base = "uintptr"
	case f.ctype == "float":
		base = "float32"
	case f.ctype == "char":
		base = "byte"
	case f.ctype == "uint8_t":
		base = "uint8"
	case kinds[f.ctype] == "handle":
		base = "uintptr"
	case kinds[f.ctype] == "enum":
		base = "int32"
	case kinds[f.ctype] == "flags":
		base = "uint32"
	case kinds[f.ctype] == "flags64":
		base = "uint64"
	case kinds[f.ctype] == "struct":
		base = goStruct(f.ctype)
	default:
		log.Fatalf("field %s: unknown type %s", f.name, f.ctype)
	}
	if f.array == "" {
		return base
	}
	n := f.array
	if v, ok := defines[n]; ok {
		n = v
	}
	if _, err := strconv.Atoi(n); err != nil {
		log.Fatalf("field %s: array size %s", f.name, f.array)
	}
	return "[" + n + "]" + base
}
