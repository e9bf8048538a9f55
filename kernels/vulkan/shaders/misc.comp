#version 450
// Nearest 2× upsampling and embedding lookups, the GPU twin of
// kernels/misc.go. Compiled with -DUPSAMPLE, -DUPSAMPLE_BACKWARD, -DGATHER or
// -DSCATTER_ADD. Indices are int64 on the host; they are read as their low
// 32 bits (tables are far smaller than 2³¹ rows) and negative or too large
// ones give a zero row, as on the CPU.

layout(local_size_x = 256) in;

uint flatIndex() { return (gl_WorkGroupID.y * gl_NumWorkGroups.x + gl_WorkGroupID.x) * 256u + gl_LocalInvocationID.x; }

#if defined(UPSAMPLE)
layout(std430, binding = 0) writeonly buffer Y { float y[]; };
layout(std430, binding = 1) readonly buffer X { float x[]; };
layout(push_constant) uniform P { uint N; uint C; uint H; uint W; } p;
void main() {
    uint i = flatIndex();
    uint W2 = 2u * p.W, H2 = 2u * p.H;
    if (i >= p.N * p.C * H2 * W2) return;
    uint ox = i % W2, oy = (i / W2) % H2, nc = i / (W2 * H2);
    y[i] = x[(nc * p.H + oy / 2u) * p.W + ox / 2u];
}

#elif defined(UPSAMPLE_BACKWARD)
layout(std430, binding = 0) writeonly buffer DX { float dx[]; };
layout(std430, binding = 1) readonly buffer DY { float dy[]; };
layout(push_constant) uniform P { uint N; uint C; uint H; uint W; } p;
void main() {
    uint i = flatIndex();
    if (i >= p.N * p.C * p.H * p.W) return;
    uint ix = i % p.W, iy = (i / p.W) % p.H, nc = i / (p.W * p.H);
    uint W2 = 2u * p.W;
    uint r0 = (nc * 2u * p.H + 2u * iy) * W2 + 2u * ix, r1 = r0 + W2;
    dx[i] = (dy[r0] + dy[r0 + 1u]) + (dy[r1] + dy[r1 + 1u]);
}

#elif defined(GATHER)
layout(std430, binding = 0) writeonly buffer D { float dst[]; };
layout(std430, binding = 1) readonly buffer T { float table[]; };
layout(std430, binding = 2) readonly buffer I { int idx[]; };  // int64 as (lo, hi) pairs
layout(push_constant) uniform P { uint rows; uint num; uint dim; } p;
void main() {
    uint i = flatIndex();
    if (i >= p.rows * p.dim) return;
    uint r = i / p.dim, k = i % p.dim;
    int lo = idx[2u * r], hi = idx[2u * r + 1u];
    bool ok = hi == 0 && lo >= 0 && uint(lo) < p.num;
    dst[i] = ok ? table[uint(lo) * p.dim + k] : 0.0;
}

#elif defined(SCATTER_ADD)
// dtable[t, k] += Σ_{r: idx[r] = t} src[r, k]: one thread per table element,
// scanning the (few) rows in order, so the sum is deterministic.
layout(std430, binding = 0) buffer D { float dtable[]; };
layout(std430, binding = 1) readonly buffer I { int idx[]; };
layout(std430, binding = 2) readonly buffer S { float src[]; };
layout(push_constant) uniform P { uint rows; uint num; uint dim; } p;
void main() {
    uint i = flatIndex();
    if (i >= p.num * p.dim) return;
    uint t = i / p.dim, k = i % p.dim;
    float s = dtable[i];
    for (uint r = 0u; r < p.rows; r++) {
        if (idx[2u * r + 1u] == 0 && idx[2u * r] == int(t)) s += src[r * p.dim + k];
    }
    dtable[i] = s;
}
#endif
