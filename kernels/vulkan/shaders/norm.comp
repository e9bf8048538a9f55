#version 450
// Group and layer normalization, the GPU twin of kernels/norm.go: x is
// viewed as (N, G, CG, S); statistics per (n, g) over CG·S values (biased
// variance, two passes), channel c = g·CG + cg. Compiled with -DNORM (one
// workgroup per group), -DNORM_STATS and -DNORM_APPLY (the same split over
// `parts` workgroups per group, for few large groups: a VAE's 32 groups of
// a million values), -DNORM_BACKWARD (dx, one workgroup per group) or
// -DNORM_BACKWARD_PARAMS (dγ and dβ, one workgroup per channel).
// gamma/beta absent: flags are 0 and a dummy buffer is bound.

layout(local_size_x = 256) in;

shared float red[256];
shared float red2[256];

// Sums red[] and red2[] together; every thread gets both totals.
vec2 reduce2() {
    uint t = gl_LocalInvocationID.x;
    for (uint s = 128u; s > 0u; s >>= 1) {
        barrier();
        if (t < s) { red[t] += red[t + s]; red2[t] += red2[t + s]; }
    }
    barrier();
    vec2 r = vec2(red[0], red2[0]);
    barrier();
    return r;
}

uint groupIndex() { return gl_WorkGroupID.y * gl_NumWorkGroups.x + gl_WorkGroupID.x; }

#if defined(NORM)
layout(std430, binding = 0) writeonly buffer Y { float y[]; };
layout(std430, binding = 1) writeonly buffer MEAN { float mean[]; };
layout(std430, binding = 2) writeonly buffer RSTD { float rstd[]; };
layout(std430, binding = 3) readonly buffer X { float x[]; };
layout(std430, binding = 4) readonly buffer GAMMA { float gamma[]; };
layout(std430, binding = 5) readonly buffer BETA { float beta[]; };
layout(push_constant) uniform P { uint N; uint G; uint CG; uint S; float eps; uint hasGamma; uint hasBeta; } p;
void main() {
    uint ng = groupIndex();
    if (ng >= p.N * p.G) return;
    uint t = gl_LocalInvocationID.x, size = p.CG * p.S, base = ng * size;
    float s = 0.0;
    for (uint i = t; i < size; i += 256u) s += x[base + i];
    red[t] = s; red2[t] = 0.0;
    float mu = reduce2().x / float(size);
    float ss = 0.0;
    for (uint i = t; i < size; i += 256u) { float d = x[base + i] - mu; ss += d * d; }
    red[t] = ss; red2[t] = 0.0;
    float r = 1.0 / sqrt(reduce2().x / float(size) + p.eps);
    if (t == 0u) { mean[ng] = mu; rstd[ng] = r; }
    uint g = ng % p.G;
    for (uint i = t; i < size; i += 256u) {
        uint c = g * p.CG + i / p.S;
        float scale = r, shift = -mu * r;
        if (p.hasGamma != 0u) { scale *= gamma[c]; shift *= gamma[c]; }
        if (p.hasBeta != 0u) shift += beta[c];
        y[base + i] = x[base + i] * scale + shift;
    }
}

#elif defined(NORM_STATS)
// Workgroup (part, ng): the count-weighted pieces of chunk `part` of group
// ng, its mean and Σ(x − mean)² (two passes over the chunk), for NORM_APPLY
// to combine (Chan et al.'s pairwise update).
layout(std430, binding = 0) writeonly buffer PART { float part[]; };
layout(std430, binding = 1) readonly buffer X { float x[]; };
layout(push_constant) uniform P { uint N; uint G; uint CG; uint S; uint parts; uint chunk; } p;
void main() {
    uint pt = gl_WorkGroupID.x, ng = gl_WorkGroupID.y;
    uint t = gl_LocalInvocationID.x, size = p.CG * p.S, base = ng * size;
    uint lo = pt * p.chunk, hi = min(size, lo + p.chunk);
    float s = 0.0;
    for (uint i = lo + t; i < hi; i += 256u) s += x[base + i];
    red[t] = s; red2[t] = 0.0;
    float mu = reduce2().x / float(hi - lo);
    float ss = 0.0;
    for (uint i = lo + t; i < hi; i += 256u) { float d = x[base + i] - mu; ss += d * d; }
    red[t] = ss; red2[t] = 0.0;
    float m2 = reduce2().x;
    if (t == 0u) { part[2u * (ng * p.parts + pt)] = mu; part[2u * (ng * p.parts + pt) + 1u] = m2; }
}

#elif defined(NORM_APPLY)
// Workgroup (part, ng): combines the group's NORM_STATS pieces into its
// mean and 1/σ (part 0 stores them) and normalizes chunk `part`.
layout(std430, binding = 0) writeonly buffer Y { float y[]; };
layout(std430, binding = 1) writeonly buffer MEAN { float mean[]; };
layout(std430, binding = 2) writeonly buffer RSTD { float rstd[]; };
layout(std430, binding = 3) readonly buffer X { float x[]; };
layout(std430, binding = 4) readonly buffer GAMMA { float gamma[]; };
layout(std430, binding = 5) readonly buffer BETA { float beta[]; };
layout(std430, binding = 6) readonly buffer PART { float part[]; };
layout(push_constant) uniform P { uint N; uint G; uint CG; uint S; float eps; uint hasGamma; uint hasBeta; uint parts; uint chunk; } p;
void main() {
    uint pt = gl_WorkGroupID.x, ng = gl_WorkGroupID.y;
    uint t = gl_LocalInvocationID.x, size = p.CG * p.S, base = ng * size;
    float mu = 0.0;
    for (uint j = 0u; j < p.parts; j++) {
        float n = float(min(size, (j + 1u) * p.chunk) - j * p.chunk);
        mu += n * part[2u * (ng * p.parts + j)];
    }
    mu /= float(size);
    float m2 = 0.0;
    for (uint j = 0u; j < p.parts; j++) {
        float n = float(min(size, (j + 1u) * p.chunk) - j * p.chunk);
        float d = part[2u * (ng * p.parts + j)] - mu;
        m2 += part[2u * (ng * p.parts + j) + 1u] + n * d * d;
    }
    float r = 1.0 / sqrt(m2 / float(size) + p.eps);
    if (pt == 0u && t == 0u) { mean[ng] = mu; rstd[ng] = r; }
    uint g = ng % p.G;
    uint lo = pt * p.chunk, hi = min(size, lo + p.chunk);
    for (uint i = lo + t; i < hi; i += 256u) {
        uint c = g * p.CG + i / p.S;
        float scale = r, shift = -mu * r;
        if (p.hasGamma != 0u) { scale *= gamma[c]; shift *= gamma[c]; }
        if (p.hasBeta != 0u) shift += beta[c];
        y[base + i] = x[base + i] * scale + shift;
    }
}

#elif defined(NORM_BACKWARD)
layout(std430, binding = 0) writeonly buffer DX { float dx[]; };
layout(std430, binding = 1) readonly buffer DY { float dy[]; };
layout(std430, binding = 2) readonly buffer X { float x[]; };
layout(std430, binding = 3) readonly buffer MEAN { float mean[]; };
layout(std430, binding = 4) readonly buffer RSTD { float rstd[]; };
layout(std430, binding = 5) readonly buffer GAMMA { float gamma[]; };
layout(push_constant) uniform P { uint N; uint G; uint CG; uint S; uint hasGamma; } p;
void main() {
    uint ng = groupIndex();
    if (ng >= p.N * p.G) return;
    uint t = gl_LocalInvocationID.x, size = p.CG * p.S, base = ng * size, g = ng % p.G;
    float mu = mean[ng], r = rstd[ng];
    float sg = 0.0, sgx = 0.0;  // Σ ĝ and Σ ĝ·x̂ with ĝ = dy·γ
    for (uint i = t; i < size; i += 256u) {
        float gam = p.hasGamma != 0u ? gamma[g * p.CG + i / p.S] : 1.0;
        float gh = dy[base + i] * gam;
        sg += gh;
        sgx += gh * (x[base + i] - mu) * r;
    }
    red[t] = sg; red2[t] = sgx;
    vec2 tot = reduce2() / float(size);
    for (uint i = t; i < size; i += 256u) {
        float gam = p.hasGamma != 0u ? gamma[g * p.CG + i / p.S] : 1.0;
        float xh = (x[base + i] - mu) * r;
        dx[base + i] = r * (dy[base + i] * gam - tot.x - xh * tot.y);
    }
}

#elif defined(NORM_BACKWARD_PARAMS)
layout(std430, binding = 0) writeonly buffer DG { float dgamma[]; };
layout(std430, binding = 1) writeonly buffer DB { float dbeta[]; };
layout(std430, binding = 2) readonly buffer DY { float dy[]; };
layout(std430, binding = 3) readonly buffer X { float x[]; };
layout(std430, binding = 4) readonly buffer MEAN { float mean[]; };
layout(std430, binding = 5) readonly buffer RSTD { float rstd[]; };
layout(push_constant) uniform P { uint N; uint G; uint CG; uint S; uint hasDgamma; uint hasDbeta; } p;
void main() {
    uint c = groupIndex();
    if (c >= p.G * p.CG) return;
    uint t = gl_LocalInvocationID.x, g = c / p.CG, cg = c % p.CG;
    float sdg = 0.0, sdb = 0.0;
    for (uint i = t; i < p.N * p.S; i += 256u) {
        uint n = i / p.S, s = i % p.S;
        uint ng = n * p.G + g;
        uint o = ng * p.CG * p.S + cg * p.S + s;
        float d = dy[o];
        sdb += d;
        sdg += d * (x[o] - mean[ng]) * rstd[ng];
    }
    red[t] = sdg; red2[t] = sdb;
    vec2 tot = reduce2();
    if (t == 0u) {
        if (p.hasDgamma != 0u) dgamma[c] = tot.x;
        if (p.hasDbeta != 0u) dbeta[c] = tot.y;
    }
}
#endif
