#version 450
// Nearest 2× upsampling, ×2 volume upsampling and embedding lookups, the GPU twin of
// kernels/misc.go and kernels/upsample3d.go. Compiled with -DUPSAMPLE, -DUPSAMPLE_BACKWARD, -DUPSAMPLE3D,
// -DUPSAMPLE3D_BACKWARD, -DGATHER or
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

#elif defined(UPSAMPLE3D) || defined(UPSAMPLE3D_BACKWARD)
// ×2 upsampling of NCDHW volumes (tensor.Upsample3DParams): mode 0 nearest,
// 1 trilinear (align_corners=False). Along an axis of length L, output j
// reads inputs i0 and i1 with weights w0 and w1 (kernels/upsample3d.go).
layout(std430, binding = 0) writeonly buffer O_ { float o[]; };
layout(std430, binding = 1) readonly buffer I_ { float v[]; };
layout(push_constant) uniform P { uint N; uint C; uint D; uint H; uint W; uint mode; } p;
void taps(uint j, uint L, out uint i0, out float w0, out uint i1, out float w1) {
    uint i = j / 2u;
    if (p.mode == 0u) { i0 = i; w0 = 1.0; i1 = i; w1 = 0.0; return; }
    i0 = i; w0 = 0.75; w1 = 0.25;
    i1 = (j % 2u == 0u) ? (i > 0u ? i - 1u : 0u) : min(i + 1u, L - 1u);
}
// The weight with which output j (of 2L) reads input i.
float weight(uint j, uint i, uint L) {
    uint i0, i1; float w0, w1;
    taps(j, L, i0, w0, i1, w1);
    return (i0 == i ? w0 : 0.0) + (i1 == i ? w1 : 0.0);
}
#if defined(UPSAMPLE3D)
void main() {  // one thread per output voxel: a sum over 2×2×2 taps
    uint i = flatIndex();
    uint D2 = 2u * p.D, H2 = 2u * p.H, W2 = 2u * p.W;
    if (i >= p.N * p.C * D2 * H2 * W2) return;
    uint ox = i % W2, oy = (i / W2) % H2, oz = (i / (W2 * H2)) % D2, nc = i / (W2 * H2 * D2);
    uint z[2], y[2], x[2]; float wz[2], wy[2], wx[2];
    taps(oz, p.D, z[0], wz[0], z[1], wz[1]);
    taps(oy, p.H, y[0], wy[0], y[1], wy[1]);
    taps(ox, p.W, x[0], wx[0], x[1], wx[1]);
    float s = 0.0;
    for (int a = 0; a < 2; a++) for (int b = 0; b < 2; b++) for (int c = 0; c < 2; c++)
        s += wz[a] * wy[b] * wx[c] * v[((nc * p.D + z[a]) * p.H + y[b]) * p.W + x[c]];
    o[i] = s;
}
#else
void main() {  // one thread per input voxel: the outputs within one of it on each axis
    uint i = flatIndex();
    if (i >= p.N * p.C * p.D * p.H * p.W) return;
    uint ix = i % p.W, iy = (i / p.W) % p.H, iz = (i / (p.W * p.H)) % p.D, nc = i / (p.W * p.H * p.D);
    uint D2 = 2u * p.D, H2 = 2u * p.H, W2 = 2u * p.W;
    float s = 0.0;
    for (int a = -1; a <= 2; a++) {
        int jz = 2 * int(iz) + a;
        if (jz < 0 || jz >= int(D2)) continue;
        float wz = weight(uint(jz), iz, p.D);
        if (wz == 0.0) continue;
        for (int b = -1; b <= 2; b++) {
            int jy = 2 * int(iy) + b;
            if (jy < 0 || jy >= int(H2)) continue;
            float wy = weight(uint(jy), iy, p.H);
            if (wy == 0.0) continue;
            for (int c = -1; c <= 2; c++) {
                int jx = 2 * int(ix) + c;
                if (jx < 0 || jx >= int(W2)) continue;
                float wx = weight(uint(jx), ix, p.W);
                if (wx != 0.0) s += wz * wy * wx * v[((nc * D2 + uint(jz)) * H2 + uint(jy)) * W2 + uint(jx)];
            }
        }
    }
    o[i] = s;
}
#endif

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
