#version 450
#extension GL_GOOGLE_include_directive : require
// 3-D convolution as implicit GEMMs, the GPU twin of kernels/conv3d.go and
// the volumetric sibling of conv.comp. Compiled with -DCONV3D,
// -DCONV3D_BACKWARD_INPUT or -DCONV3D_BACKWARD_WEIGHT:
//
//   CONV3D                  y[n] (F × OD·OH·OW) = w (F × C·KD·KH·KW) · col(x[n]) + bias
//   CONV3D_BACKWARD_INPUT   dx[n] (C × D·H·W) = wᵀ (C × F·KD·KH·KW) · gathered dy[n]
//   CONV3D_BACKWARD_WEIGHT  dw (F × C·KD·KH·KW) = Σ_n dy[n] (F × OD·OH·OW) · col(x[n])ᵀ
//
// col(x) is never stored: the B loader computes the input voxel of each
// (c, kd, kh, kw, od, oh, ow) on the fly, zero in the padding. The tiling is
// gemm_tile.glsl, shared with the GEMM.

layout(local_size_x = 16, local_size_y = 16) in;

layout(std430, binding = 0) buffer C_ { float c[]; };
layout(std430, binding = 1) readonly buffer A_ { float a[]; };
layout(std430, binding = 2) readonly buffer B_ { float b[]; };
layout(std430, binding = 3) readonly buffer Bias_ { float bias[]; };

// Convolution geometry (tensor.Conv3DParams).
layout(push_constant) uniform P {
    uint N; uint C; uint D; uint H; uint W; uint F; uint KD; uint KH; uint KW;
    uint SD; uint SH; uint SW; uint PD; uint PH; uint PW; uint OD; uint OH; uint OW;
    uint hasBias;
} p;
uint img;
void setBatch(uint z) { img = z; }
uint taps() { return p.KD * p.KH * p.KW; }
uint outVoxels() { return p.OD * p.OH * p.OW; }
uint inVoxels() { return p.D * p.H * p.W; }

// The input voxel of (c, kd, kh, kw) for output voxel o of volume n, or 0.
float xAt(uint n, uint ck, uint o) {
    uint c = ck / taps(), r = ck % taps();
    uint kd = r / (p.KH * p.KW), kh = (r / p.KW) % p.KH, kw = r % p.KW;
    uint od = o / (p.OH * p.OW), oh = (o / p.OW) % p.OH, ow = o % p.OW;
    int id = int(od * p.SD + kd) - int(p.PD);
    int ih = int(oh * p.SH + kh) - int(p.PH);
    int iw = int(ow * p.SW + kw) - int(p.PW);
    if (id < 0 || ih < 0 || iw < 0 || id >= int(p.D) || ih >= int(p.H) || iw >= int(p.W)) return 0.0;
    return b[(((n * p.C + c) * p.D + uint(id)) * p.H + uint(ih)) * p.W + uint(iw)];
}

#if defined(CONV3D)
// a = w (F, C·KD·KH·KW), b = x, bias.
uint M() { return p.F; } uint N() { return outVoxels(); } uint K() { return p.C * taps(); }
bool aKFast() { return true; }
bool bKFast() { return false; }
float loadA(uint m, uint k) { return a[m * K() + k]; }
float loadB(uint k, uint n) { return xAt(img, k, n); }
void store(uint m, uint n, float v) {
    if (p.hasBias != 0u) v += bias[m];
    c[(img * p.F + m) * N() + n] = v;
}

#elif defined(CONV3D_BACKWARD_INPUT)
// a = w (F, C, KD, KH, KW), b = dy (N, F, OD, OH, OW); C = dx (N, C, D, H, W).
uint M() { return p.C; } uint N() { return inVoxels(); } uint K() { return p.F * taps(); }
bool aKFast() { return false; }
bool bKFast() { return false; }
float loadA(uint m, uint k) {  // wᵀ: row c, column (f, kd, kh, kw)
    uint f = k / taps(), r = k % taps();
    return a[(f * p.C + m) * taps() + r];
}
// dy at the output voxel that input voxel n meets through tap (kd, kh, kw).
float loadB(uint k, uint n) {
    uint f = k / taps(), r = k % taps();
    uint kd = r / (p.KH * p.KW), kh = (r / p.KW) % p.KH, kw = r % p.KW;
    int z = int(n / (p.H * p.W)) + int(p.PD) - int(kd);
    int y = int((n / p.W) % p.H) + int(p.PH) - int(kh);
    int x = int(n % p.W) + int(p.PW) - int(kw);
    if (z < 0 || y < 0 || x < 0 || z % int(p.SD) != 0 || y % int(p.SH) != 0 || x % int(p.SW) != 0) return 0.0;
    uint od = uint(z) / p.SD, oh = uint(y) / p.SH, ow = uint(x) / p.SW;
    if (od >= p.OD || oh >= p.OH || ow >= p.OW) return 0.0;
    return b[(((img * p.F + f) * p.OD + od) * p.OH + oh) * p.OW + ow];
}
void store(uint m, uint n, float v) { c[(img * p.C + m) * N() + n] = v; }

#elif defined(CONV3D_BACKWARD_WEIGHT)
// a = dy (N, F, OD, OH, OW), b = x; C = dw (F, C·KD·KH·KW). K runs over (n, od, oh, ow).
uint M() { return p.F; } uint N() { return p.C * taps(); } uint K() { return p.N * outVoxels(); }
bool aKFast() { return true; }
bool bKFast() { return true; }
float loadA(uint m, uint k) {
    uint n = k / outVoxels(), s = k % outVoxels();
    return a[(n * p.F + m) * outVoxels() + s];
}
float loadB(uint k, uint col) {
    uint n = k / outVoxels(), s = k % outVoxels();
    return xAt(n, col, s);
}
void store(uint m, uint n, float v) { c[m * N() + n] = v; }
#endif

#include "gemm_tile.glsl"
