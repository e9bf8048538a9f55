#version 450
// SGEMM through VK_KHR_cooperative_matrix (the cross-vendor form of
// gemm_coop.comp): fp32 in memory, inputs rounded to fp16 on their way into
// shared memory, products accumulated in fp32. Same contract and push
// constants as gemm.comp: C = alpha·op(A)·op(B) + beta·C, strided, batched.
//
// FRAG (a -D define: 16 or 8) is the fragment edge, M = N = K = FRAG, chosen
// from the shapes the device lists (NVIDIA and AMD list 16×16×16, Mesa's
// lavapipe 8×8×8). A workgroup is 4 subgroups in a 2×2 grid and computes a
// 64×64 tile of C, each subgroup a 32×32 block of (32/FRAG)² fragments. The
// workgroup size is a specialization constant, 4 × the subgroup size, set
// when the pipeline is made. K advances 32 at a time through fp16 tiles in
// shared memory; the result goes through a shared fp32 tile, so edges and
// beta need no special fragments. Needs glslang ≥ 13 to compile (see spvgen).

#extension GL_KHR_cooperative_matrix : require
#extension GL_KHR_memory_scope_semantics : require
#extension GL_KHR_shader_subgroup_basic : require
#extension GL_EXT_shader_explicit_arithmetic_types_float16 : require

layout(local_size_x_id = 0) in;

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
#define NF (32 / FRAG)   // fragments per subgroup block edge
#define LDA_S (TK + 8)   // padded rows against bank conflicts
#define LDB_S (TN + 8)

shared float16_t As[TM * LDA_S];
shared float16_t Bs[TK * LDB_S];
shared float Cs[TM * TN];

void main() {
    uint tid = gl_LocalInvocationID.x, nthreads = gl_WorkGroupSize.x;
    uint sg = gl_SubgroupID;         // 0…3
    uint sgRow = sg / 2u, sgCol = sg % 2u;
    uint row0 = gl_WorkGroupID.y * TM, col0 = gl_WorkGroupID.x * TN;
    uint z = gl_WorkGroupID.z, o = z / p.inner, i = z % p.inner;
    uint baseA = p.offA + o * p.sA0 + i * p.sA1;
    uint baseB = p.offB + o * p.sB0 + i * p.sB1;
    uint baseC = p.offC + o * p.sC0 + i * p.sC1;
    if (gl_NumSubgroups != 4u) {
        // The 2×2 layout needs exactly four subgroups (a driver that runs
        // another subgroup size than it reports): NaN makes the start-up
        // self-check fail, and the device stays on the fp32 shader.
        for (uint idx = tid; idx < TM * TN; idx += nthreads) {
            uint m = idx / TN, n = idx % TN;
            if (row0 + m < p.M && col0 + n < p.N) c[baseC + (row0 + m) * p.ldc + col0 + n] = uintBitsToFloat(0x7fc00000u);
        }
        return;
    }

    coopmat<float, gl_ScopeSubgroup, FRAG, FRAG, gl_MatrixUseAccumulator> acc[NF][NF];
    for (int r = 0; r < NF; r++)
        for (int s = 0; s < NF; s++) acc[r][s] = coopmat<float, gl_ScopeSubgroup, FRAG, FRAG, gl_MatrixUseAccumulator>(0.0);

    for (uint k0 = 0u; k0 < p.K; k0 += TK) {
        for (uint idx = tid; idx < TM * TK; idx += nthreads) {   // 64×32 of op(A) and 32×64 of op(B)
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
        for (uint kk = 0u; kk < TK; kk += FRAG) {
            coopmat<float16_t, gl_ScopeSubgroup, FRAG, FRAG, gl_MatrixUseA> fa[NF];
            coopmat<float16_t, gl_ScopeSubgroup, FRAG, FRAG, gl_MatrixUseB> fb[NF];
            for (uint r = 0u; r < NF; r++)
                coopMatLoad(fa[r], As, (sgRow * 32u + r * FRAG) * LDA_S + kk, LDA_S, gl_CooperativeMatrixLayoutRowMajor);
            for (uint s = 0u; s < NF; s++)
                coopMatLoad(fb[s], Bs, kk * LDB_S + sgCol * 32u + s * FRAG, LDB_S, gl_CooperativeMatrixLayoutRowMajor);
            for (uint r = 0u; r < NF; r++)
                for (uint s = 0u; s < NF; s++) acc[r][s] = coopMatMulAdd(fa[r], fb[s], acc[r][s]);
        }
        barrier();
    }
    for (uint r = 0u; r < NF; r++)
        for (uint s = 0u; s < NF; s++)
            coopMatStore(acc[r][s], Cs, (sgRow * 32u + r * FRAG) * TN + sgCol * 32u + s * FRAG, TN, gl_CooperativeMatrixLayoutRowMajor);
    barrier();
    for (uint idx = tid; idx < TM * TN; idx += nthreads) {
        uint m = idx / TN, n = idx % TN;
        if (row0 + m >= p.M || col0 + n >= p.N) continue;
        uint off = baseC + (row0 + m) * p.ldc + col0 + n;
        float v = p.alpha * Cs[idx];
        if (p.beta != 0.0) v += p.beta * c[off];
        c[off] = v;
    }
}
