#version 450
#extension GL_GOOGLE_include_directive : require
// SGEMM, the GPU twin of kernels/gemm.go:
//
//   C = alpha·op(A)·op(B) + beta·C
//
// A is stored (M, K) or, with transA, (K, M); B is (K, N) or, with transB,
// (N, K); row-major with leading dimensions lda, ldb, ldc, so that the head
// slices of attention need no copies. Batches form a two-level grid
// (z = outer·inner + i), each operand starting at off + outer·s0 + i·s1.
// The tiling is gemm_tile.glsl, shared with the convolutions (conv.comp).
//
// Split-K (kChunk ≠ 0, one matrix only): grid z = slice z of kChunk values
// of K, each writing alpha times its partial product at C + z·M·ldc (the
// caller sums the slices).

layout(local_size_x = 16, local_size_y = 16) in;

layout(std430, binding = 0) buffer C_ { float c[]; };
layout(std430, binding = 1) readonly buffer A_ { float a[]; };
layout(std430, binding = 2) readonly buffer B_ { float b[]; };
layout(std430, binding = 3) readonly buffer Bias_ { float bias[]; };

layout(push_constant) uniform P {
    uint M; uint N; uint K; uint transA; uint transB; float alpha; float beta;
    uint lda; uint ldb; uint ldc; uint inner;
    uint sA0; uint sB0; uint sC0; uint sA1; uint sB1; uint sC1; uint offA; uint offB; uint offC;
    uint kChunk;
} p;
uint M() { return p.M; } uint N() { return p.N; } uint K() { return p.K; }
uint baseA, baseB, baseC, slice;
#define SPLIT_K
uint kLo() { return slice * p.kChunk; }
uint kHi() { return p.kChunk == 0u ? p.K : min(p.K, kLo() + p.kChunk); }
void setBatch(uint z) {
    slice = 0u;
    if (p.kChunk != 0u) { slice = z; z = 0u; }
    uint o = z / p.inner, i = z % p.inner;
    baseA = p.offA + o * p.sA0 + i * p.sA1;
    baseB = p.offB + o * p.sB0 + i * p.sB1;
    baseC = p.offC + o * p.sC0 + i * p.sC1 + slice * p.M * p.ldc;
}
bool aKFast() { return p.transA == 0u; }
bool bKFast() { return p.transB != 0u; }
float loadA(uint m, uint k) { return p.transA == 0u ? a[baseA + m * p.lda + k] : a[baseA + k * p.lda + m]; }
float loadB(uint k, uint n) { return p.transB == 0u ? b[baseB + k * p.ldb + n] : b[baseB + n * p.ldb + k]; }
void store(uint m, uint n, float v) {
    uint o = baseC + m * p.ldc + n;
    v *= p.alpha;
    if (p.beta != 0.0) v += p.beta * c[o];
    c[o] = v;
}


#include "gemm_tile.glsl"
