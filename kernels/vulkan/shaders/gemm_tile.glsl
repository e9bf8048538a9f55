// The tiled main loop shared by gemm.comp and conv.comp (included with
// GL_GOOGLE_include_directive). The including shader defines M(), N(), K(),
// setBatch(z), aKFast(), bKFast(), loadA(m, k), loadB(k, n) and
// store(m, n, v): how an element of op(A) (M×K) and op(B) (K×N) is read and
// where an element of C goes.
//
// Each workgroup of 16×16 threads computes a 64×64 tile of C; each thread a
// 4×4 block of it at rows ty + 16i and columns tx + 16j, so neighbouring
// threads touch neighbouring addresses. The K loop stages a 64×16 slice of A
// and a 16×64 slice of B in shared memory; the loaders pick the thread-to-
// element mapping that walks memory contiguously (aKFast/bKFast).

#define TM 64
#define TN 64
#define TK 16

shared float As[TK][TM];
shared float Bs[TK][TN];

void main() {
    uint tx = gl_LocalInvocationID.x, ty = gl_LocalInvocationID.y;
    uint tid = ty * 16u + tx;
    uint row0 = gl_WorkGroupID.y * TM, col0 = gl_WorkGroupID.x * TN;
    setBatch(gl_WorkGroupID.z);
    uint M_ = M(), N_ = N(), K_ = K();
    bool akf = aKFast(), bkf = bKFast();
    float acc[4][4];
    for (int i = 0; i < 4; i++) for (int j = 0; j < 4; j++) acc[i][j] = 0.0;

    for (uint k0 = 0u; k0 < K_; k0 += TK) {
        for (uint l = 0u; l < 4u; l++) {
            uint idx = tid + l * 256u;  // 0 … 1023 = TM·TK = TK·TN
            uint m, kk;
            if (akf) { m = idx / TK; kk = idx % TK; } else { m = idx % TM; kk = idx / TM; }
            As[kk][m] = (row0 + m < M_ && k0 + kk < K_) ? loadA(row0 + m, k0 + kk) : 0.0;
            uint n;
            if (bkf) { n = idx / TK; kk = idx % TK; } else { n = idx % TN; kk = idx / TN; }
            Bs[kk][n] = (col0 + n < N_ && k0 + kk < K_) ? loadB(k0 + kk, col0 + n) : 0.0;
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
        if (r >= M_) continue;
        for (uint j = 0u; j < 4u; j++) {
            uint col = col0 + tx + 16u * j;
            if (col < N_) store(r, col, acc[i][j]);
        }
    }
}
