#version 450
// SGEMM on tensor cores through VK_NV_cooperative_matrix, for drivers that
// have the NV form but not VK_KHR_cooperative_matrix (gemm_coop_khr.comp is
// preferred where both are). Same contract and push constants as gemm.comp:
// C = alpha·op(A)·op(B) + beta·C, strided and batched, fp32 in memory. The
// inputs are rounded to fp16 on their way into shared memory and the
// products accumulate in fp32 — about 1e-3 relative error. The device
// takes this path where it is supported and a start-up self-check against
// the fp32 shader passes (GODIFFUSE_VULKAN_MATMUL=fp32 turns it off).
//
// A workgroup is 4 subgroups of 32 (2×2) and computes a 64×64 tile of C;
// each subgroup a 32×32 block as 2×2 fragments of 16×16. K advances 32 at a
// time through fp16 tiles in shared memory; the result goes through a shared
// fp32 tile so that edges and beta need no special fragments.

#extension GL_NV_cooperative_matrix : require
#extension GL_KHR_memory_scope_semantics : require
#extension GL_EXT_shader_explicit_arithmetic_types_float16 : require

layout(local_size_x = 128) in;

layout(std430, binding = 0) buffer C_ { float c[]; };
layout(std430, binding = 1) readonly buffer A_ { float a[]; };
layout(std430, binding = 2) readonly buffer B_ { float b[]; };
layout(std430, binding = 3) readonly buffer Bias_ { float bias[]; };
layout(push_constant) uniform P {
    uint M; uint N; uint K; uint transA; uint transB; float alpha; float beta;
    uint lda; uint ldb; uint ldc; uint inner;
    uint sA0; uint sB0; uint sC0; uint sA1; uint sB1; uint sC1; uint offA; uint offB; uint offC;
} p;

#define TM 64
#define TN 64
#define TK 32
#define LDA_S (TK + 8)   // padded rows against bank conflicts
#define LDB_S (TN + 8)

shared float16_t As[TM * LDA_S];
shared float16_t Bs[TK * LDB_S];
shared float Cs[TM * TN];

void main() {
    uint tid = gl_LocalInvocationID.x;
    uint sg = tid / 32u;             // subgroup 0…3
    uint sgRow = sg / 2u, sgCol = sg % 2u;
    uint row0 = gl_WorkGroupID.y * TM, col0 = gl_WorkGroupID.x * TN;
    uint z = gl_WorkGroupID.z, o = z / p.inner, i = z % p.inner;
    uint baseA = p.offA + o * p.sA0 + i * p.sA1;
    uint baseB = p.offB + o * p.sB0 + i * p.sB1;
    uint baseC = p.offC + o * p.sC0 + i * p.sC1;

    fcoopmatNV<32, gl_ScopeSubgroup, 16, 16> acc[2][2];
    for (int r = 0; r < 2; r++) for (int s = 0; s < 2; s++) acc[r][s] = fcoopmatNV<32, gl_ScopeSubgroup, 16, 16>(0.0);

    for (uint k0 = 0u; k0 < p.K; k0 += TK) {
        for (uint l = 0u; l < 16u; l++) {        // 64×32 of op(A) and 32×64 of op(B): 2048 each, 16 per thread
            uint idx = tid + l * 128u;
            uint m, kk;
            if (p.transA == 0u) { m = idx / TK; kk = idx % TK; } else { m = idx % TM; kk = idx / TM; }
            float v = 0.0;
            if (row0 + m < p.M && k0 + kk < p.K)
                v = p.transA == 0u ? a[baseA + (row0 + m) * p.lda + k0 + kk] : a[baseA + (k0 + kk) * p.lda + row0 + m];
            As[m * LDA_S + kk] = float16_t(v);
            uint n;
            if (p.transB == 0u) { n = idx % TN; kk = idx / TN; } else { n = idx / TK; kk = idx % TK; }
            v = 0.0;
            if (col0 + n < p.N && k0 + kk < p.K)
                v = p.transB == 0u ? b[baseB + (k0 + kk) * p.ldb + col0 + n] : b[baseB + (col0 + n) * p.ldb + k0 + kk];
            Bs[kk * LDB_S + n] = float16_t(v);
        }
        barrier();
        for (uint kk = 0u; kk < TK; kk += 16u) {
            fcoopmatNV<16, gl_ScopeSubgroup, 16, 16> fa[2], fb[2];
            for (uint r = 0u; r < 2u; r++)
                coopMatLoadNV(fa[r], As, (sgRow * 32u + r * 16u) * LDA_S + kk, LDA_S, false);
            for (uint s = 0u; s < 2u; s++)
                coopMatLoadNV(fb[s], Bs, kk * LDB_S + sgCol * 32u + s * 16u, LDB_S, false);
            for (uint r = 0u; r < 2u; r++)
                for (uint s = 0u; s < 2u; s++) acc[r][s] = coopMatMulAddNV(fa[r], fb[s], acc[r][s]);
        }
        barrier();
    }
    for (uint r = 0u; r < 2u; r++)
        for (uint s = 0u; s < 2u; s++)
            coopMatStoreNV(acc[r][s], Cs, (sgRow * 32u + r * 16u) * TN + sgCol * 32u + s * 16u, TN, false);
    barrier();
    for (uint l = 0u; l < 32u; l++) {
        uint idx = tid + l * 128u;
        uint m = idx / TN, n = idx % TN;
        if (row0 + m >= p.M || col0 + n >= p.N) continue;
        uint off = baseC + (row0 + m) * p.ldc + col0 + n;
        float v = p.alpha * Cs[idx];
        if (p.beta != 0.0) v += p.beta * c[off];
        c[off] = v;
    }
}
