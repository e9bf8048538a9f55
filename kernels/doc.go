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
//	cpu.go          the Device and Buffer types, memory, strided copy, parallelFor
//	elementwise.go  unary, binary (broadcasting), reductions, dropout, Adam step
//	gemm.go         MatMul and the blocked sgemm it runs on
//	conv.go         Conv2D forward and both backward passes (im2col + sgemm)
//	norm.go         group/layer normalization and its backward
//	attention.go    softmax and multi-head attention, forward and backward
//	misc.go         nearest upsampling, embedding gather/scatter
package kernels
