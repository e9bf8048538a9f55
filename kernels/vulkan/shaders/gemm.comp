#version 450
// Batched SGEMM, the GPU twin of kernels/gemm.go:
//
//   C[b] = alpha·op(A[b])·op(B[b]) + beta·C[b]
//
// A is stored (M, K) or, with transA, (K, M); B is (K, N) or, with transB,
// (N, K); row-major. Each workgroup of 16×16 threads computes a 64×64 tile of
// C; each thread a 4×4 block of it, at rows ty + 16i and columns tx + 16j
// (interleaved, so neighbouring threads touch neighbouring addresses). The
// K loop stages a 64×16 slice of op(A) and a 16×64 slice of op(B) in shared
// memory. The batch index is the z workgroup.

layout(local_size_x = 16, local_size_y = 16) in;

layout(std430, binding = 0) buffer C { float c[]; };
layout(std430, binding = 1) readonly buffer A { float a[]; };
layout(std430, binding = 2) readonly buffer B { float b[]; };
layout(push_constant) uniform P {
    uint M; uint N; uint K; uint transA; uint transB; float alpha; float beta;
    uint strideA; uint strideB; uint strideC;
} p;

#define TM 64
#define TN 64
#define TK 16

shared float As[TK][TM];
shared float Bs[TK][TN];

void main() {
    uint tx = gl_LocalInvocationID.x, ty = gl_LocalInvocationID.y;
    uint tid = ty * 16u + tx;
    uint row0 = gl_WorkGroupID.y * TM, col0 = gl_WorkGroupID.x * TN;
    uint baseA = gl_WorkGroupID.z * p.strideA, baseB = gl_WorkGroupID.z * p.strideB, baseC = gl_WorkGroupID.z * p.strideC;
    float acc[4][4];
    for (int i = 0; i < 4; i++) for (int j = 0; j < 4; j++) acc[i][j] = 0.0;

    for (uint k0 = 0u; k0 < p.K; k0 += TK) {
        for (uint l = 0u; l < 4u; l++) {
            uint idx = tid + l * 256u;  // 0 … 1023 = TM·TK
            uint m, kk;
            float v = 0.0;
            if (p.transA == 0u) {  // A (M, K): consecutive threads walk k
                m = idx / TK; kk = idx % TK;
                if (row0 + m < p.M && k0 + kk < p.K) v = a[baseA + (row0 + m) * p.K + k0 + kk];
            } else {               // A (K, M): consecutive threads walk m
                m = idx % TM; kk = idx / TM;
                if (row0 + m < p.M && k0 + kk < p.K) v = a[baseA + (k0 + kk) * p.M + row0 + m];
            }
            As[kk][m] = v;
            uint n;
            v = 0.0;
            if (p.transB == 0u) {  // B (K, N): walk n
                n = idx % TN; kk = idx / TN;
                if (col0 + n < p.N && k0 + kk < p.K) v = b[baseB + (k0 + kk) * p.N + col0 + n];
            } else {               // B (N, K): walk k
                n = idx / TK; kk = idx % TK;
                if (col0 + n < p.N && k0 + kk < p.K) v = b[baseB + (col0 + n) * p.K + k0 + kk];
            }
            Bs[kk][n] = v;
        }
        barrier();
        for (uint kk = 0u; kk < TK; kk++) {
            float ar[4], br[4];
            for (uint i = 0u; i < 4u; i++) ar[i] = As[kk][ty + 16u * i];
            for (uint j = 0u; j < 4u; j++) br[j] = Bs[kk][tx + 16u * j];
            for (uint i = 0u; i < 4u; i++)
                for (uint j = 0u; j < 4u; j++) acc[i][j] = fma(ar[i], br[j], acc[i][j]);
        }
        barrier();
    }
    for (uint i = 0u; i < 4u; i++) {
        uint r = row0 + ty + 16u * i;
        if (r >= p.M) continue;
        for (uint j = 0u; j < 4u; j++) {
            uint col = col0 + tx + 16u * j;
            if (col >= p.N) continue;
            uint o = baseC + r * p.N + col;
            float v = p.alpha * acc[i][j];
            if (p.beta != 0.0) v += p.beta * c[o];
            c[o] = v;
        }
    }
}
