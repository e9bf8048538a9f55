#version 450
#extension GL_GOOGLE_include_directive : require
// Convolution as implicit GEMMs, the GPU twin of kernels/conv.go. Compiled
// with -DCONV, -DCONV_BACKWARD_INPUT or -DCONV_BACKWARD_WEIGHT:
//
//   CONV                  y[n] (F × OH·OW) = w (F × C·KH·KW) · col(x[n]) + bias
//   CONV_BACKWARD_INPUT   dx[n] (C × H·W) = wᵀ (C × F·KH·KW) · gathered dy[n]
//   CONV_BACKWARD_WEIGHT  dw (F × C·KH·KW) = Σ_n dy[n] (F × OH·OW) · col(x[n])ᵀ
//
// col(x) is never stored: the B loader computes the input pixel of each
// (c, kh, kw, oh, ow) on the fly, zero in the padding. The tiling is
// gemm_tile.glsl, shared with the GEMM.

layout(local_size_x = 16, local_size_y = 16) in;

layout(std430, binding = 0) buffer C_ { float c[]; };
layout(std430, binding = 1) readonly buffer A_ { float a[]; };
layout(std430, binding = 2) readonly buffer B_ { float b[]; };
layout(std430, binding = 3) readonly buffer Bias_ { float bias[]; };

// Convolution geometry (tensor.ConvParams).
layout(push_constant) uniform P {
    uint N; uint C; uint H; uint W; uint F; uint KH; uint KW; uint SH; uint SW; uint PT; uint PL; uint OH; uint OW;
    uint hasBias; uint kChunk;
} p;
// Split-K (kChunk ≠ 0): slice s of K, kChunk values long, is summed by the
// workgroups of grid z = image · slices + s into a partial result at slice s
// of C (C then holds slices × the output; the caller sums them; the bias
// goes into slice 0 only). CONV_BACKWARD_WEIGHT runs over all images at
// once: its grid z is the slice alone.
#define SPLIT_K
uint img, slice;
uint K();
uint slices() { return p.kChunk == 0u ? 1u : (K() + p.kChunk - 1u) / p.kChunk; }
uint kLo() { return slice * p.kChunk; }
uint kHi() { return p.kChunk == 0u ? K() : min(K(), kLo() + p.kChunk); }
// The input pixel of (c, kh, kw) for output pixel (oh, ow) of image n, or 0.
float xAt(uint n, uint ckk, uint ohw) {
    uint c = ckk / (p.KH * p.KW), r = ckk % (p.KH * p.KW);
    uint kh = r / p.KW, kw = r % p.KW;
    uint oh = ohw / p.OW, ow = ohw % p.OW;
    int ih = int(oh * p.SH + kh) - int(p.PT), iw = int(ow * p.SW + kw) - int(p.PL);
    if (ih < 0 || iw < 0 || ih >= int(p.H) || iw >= int(p.W)) return 0.0;
    return b[((n * p.C + c) * p.H + uint(ih)) * p.W + uint(iw)];
}

#if defined(CONV)
// a = w (F, C·KH·KW), b = x, bias.
uint M() { return p.F; } uint N() { return p.OH * p.OW; } uint K() { return p.C * p.KH * p.KW; }
void setBatch(uint z) { img = z / slices(); slice = z % slices(); }
bool aKFast() { return true; }
bool bKFast() { return false; }
float loadA(uint m, uint k) { return a[m * K() + k]; }
float loadB(uint k, uint n) { return xAt(img, k, n); }
void store(uint m, uint n, float v) {
    if (p.hasBias != 0u && slice == 0u) v += bias[m];
    c[((slice * p.N + img) * p.F + m) * N() + n] = v;
}

#elif defined(CONV_BACKWARD_INPUT)
// a = w (F, C, KH, KW), b = dy (N, F, OH, OW); C = dx (N, C, H, W).
uint M() { return p.C; } uint N() { return p.H * p.W; } uint K() { return p.F * p.KH * p.KW; }
void setBatch(uint z) { img = z / slices(); slice = z % slices(); }
bool aKFast() { return false; }
bool bKFast() { return false; }
float loadA(uint m, uint k) {  // wᵀ: row c, column (f, kh, kw)
    uint f = k / (p.KH * p.KW), r = k % (p.KH * p.KW);
    return a[(f * p.C + m) * p.KH * p.KW + r];
}
float loadB(uint k, uint n) {  // dy at the output pixel that input pixel n meets through tap (kh, kw)
    uint f = k / (p.KH * p.KW), r = k % (p.KH * p.KW);
    uint kh = r / p.KW, kw = r % p.KW;
    int y = int(n / p.W) + int(p.PT) - int(kh), x = int(n % p.W) + int(p.PL) - int(kw);
    if (y < 0 || x < 0 || y % int(p.SH) != 0 || x % int(p.SW) != 0) return 0.0;
    uint oh = uint(y) / p.SH, ow = uint(x) / p.SW;
    if (oh >= p.OH || ow >= p.OW) return 0.0;
    return b[((img * p.F + f) * p.OH + oh) * p.OW + ow];
}
void store(uint m, uint n, float v) { c[((slice * p.N + img) * p.C + m) * N() + n] = v; }

#elif defined(CONV_BACKWARD_WEIGHT)
// a = dy (N, F, OH, OW), b = x; C = dw (F, C·KH·KW). K runs over (n, oh, ow),
// so long (batch × pixels) against a small dw that one grid would leave
// most of a GPU idle: split-K, grid z = slice z of kChunk values of K, each
// writing its partial dw at slice z of C (the caller sums the slices).
uint M() { return p.F; } uint N() { return p.C * p.KH * p.KW; } uint K() { return p.N * p.OH * p.OW; }
void setBatch(uint z) { img = 0u; slice = z; }
bool aKFast() { return true; }
bool bKFast() { return true; }
float loadA(uint m, uint k) {
    uint n = k / (p.OH * p.OW), s = k % (p.OH * p.OW);
    return a[(n * p.F + m) * p.OH * p.OW + s];
}
float loadB(uint k, uint col) {
    uint n = k / (p.OH * p.OW), s = k % (p.OH * p.OW);
    return xAt(n, col, s);
}
void store(uint m, uint n, float v) { c[(slice * p.F + m) * N() + n] = v; }
#endif

#include "gemm_tile.glsl"
