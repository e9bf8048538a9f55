package vulkan

// PhysicalDevice describes one Vulkan device the loader reports.
type PhysicalDevice struct {
	Index        int
	Name         string
	Type         string // discrete, integrated, virtual, cpu, other
	APIVersion   string
	SubgroupSize int
	// CooperativeMatrix lists the shapes of VK_KHR_cooperative_matrix
	// (empty without the extension).
	CooperativeMatrix []string
	// CooperativeMatrixNV reports VK_NV_cooperative_matrix with the
	// 16×16×16 fp16·fp16+fp32 subgroup shape the fp16 GEMM shader uses.
	CooperativeMatrixNV bool
	handle              uintptr
	typ                 int32
	khrFrag             int // 16 or 8: the fp16·fp16+fp32 subgroup fragment of gemm_coop_khr (0: none)
}
