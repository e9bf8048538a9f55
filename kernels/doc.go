// Package kernels is the CPU device: plain-Go reference kernels that are the
// specification of every op in tensor.Device, parallel across cores with
// goroutines where that is simple.
//
// Each kernel's doc comment states its math; the loop below it is the
// reference that the SIMD kernels (kernels/asm) and the Vulkan shaders
// (kernels/vulkan) are tested against.
//
// Files, one per op family:
//
//	cpu.go          the Device and Buffer types, memory, strided copy, parallelFor, and
//	                forSlots (reductions grouped by shape, so results do not depend on the thread count)
//	dispatch.go     the vector level (cpuid, GODIFFUSE_CPU) and the GEMM entry points per level
//	tuning.go       Tuning: the thresholds between paths, owned by each Device (NewCPUTuned)
//	plan.go         which path runs for a shape: PlanConv2D, PlanConv3D, PlanGemm (GODIFFUSE_TRACE_PLANS=1)
//	elementwise.go  unary, binary (broadcasting), reductions, dropout, Adam step
//	fastmath.go     fast float32 exp, GELU (erfc fit) and softmax rows above the generic level
//	gemm.go         MatMul and the reference blocked sgemm
//	gemm_packed.go  the packed GEMM (GotoBLAS structure) around the SIMD micro-kernels
//	conv.go         Conv2D forward and both backward passes (im2col, shifted rows, 1×1)
//	winograd.go     Winograd F(2×2, 3×3) for the stride-1 3×3 convolutions, all three passes
//	direct.go       a direct 3×3 kernel for images of at most 7×7 at AVX-512 (16 output channels per vector)
//	weightcache.go  transformed weights kept across calls while their contents do not change
//	repeat.go       Repeat: a sampler's forward passes timed on all threads and on one, the faster kept
//	norm.go         group/layer normalization and its backward
//	attention.go    softmax and multi-head attention, forward and backward; inference by
//	                blocks of query rows with Kᵀ and V packed once per head
//	half.go         half-precision (F16) weights: widening to float32 per use
//	conv3d.go       Conv3D: vol2col and shifted rows (strided ones over the volume's phases);
//	                conv3d_winograd.go: 3×3×3 by plane Winograd
//	upsample3d.go   nearest and trilinear ×2 upsampling of volumes
//	misc.go         nearest upsampling, embedding gather/scatter
package kernels
