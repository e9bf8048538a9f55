// The tiled main loop shared by gemm.comp and conv.comp (included with
// GL_GOOGLE_include_directive). The including shader defines M(), N(), K(),
// setBatch(z), aKFast(), bKFast(), loadA(m, k), loadB(k, n) and
// store(m, n, v): how an element of op(A) (M×K) and op(B) (K×N) is read and
// where an element of C goes.
//
// Each workgroup of 16×16 threads computes a TM×TN tile of C; each thread an
// MT×MT block of it at rows ty + 16i and columns tx + 16j, so neighbouring
// threads touch neighbouring addresses. The K loop stages a TM×TK slice of A
// and a TK×TN slice of B in shared memory; the loaders pick the thread-to-
// element mapping that walks memory contiguously (aKFast/bKFast).

// Tile shapes: 64×64 with 4×4 per thread and K steps of 16 by default;
// with -DBIG, 128×128 with 8×8 per thread and K steps of 8 — twice the FMAs
// per shared-memory read, for large matrices on GPUs.
#ifdef BIG
#define TM 128
#define TN 128
#define TK 8
#define MT 8
#else
#define TM 64
#define TN 64
#define TK 16
#define MT 4
#endif
#define LOADS (TM * TK / 256)

shared float As[TK][TM];
shared float Bs[TK][TN];

void main() {
    uint tx = gl_LocalInvocationID.x, ty = gl_LocalInvocationID.y;
    uint tid = ty * 16u + tx;
    uint row0 = gl_WorkGroupID.y * TM, col0 = gl_WorkGroupID.x * TN;
    setBatch(gl_WorkGroupID.z);
    uint M_ = M(), N_ = N(), K_ = K();
    bool akf = aKFast(), bkf = bKFast();
    float acc[MT][MT];
    for (int i = 0; i < MT; i++) for (int j = 0; j < MT; j++) acc[i][j] = 0.0;

    for (uint k0 = 0u; k0 < K_; k0 += TK) {
        for (uint l = 0u; l < LOADS; l++) {
            uint idx = tid + l * 256u;  // 0 … TM·TK-1 (= TK·TN-1)
            uint m, kk;
            if (akf) { m = idx / TK; kk = idx % TK; } else { m = idx % TM; kk = idx / TM; }
            As[kk][m] = (row0 + m < M_ && k0 + kk < K_) ? loadA(row0 + m, k0 + kk) : 0.0;
            uint n;
            if (bkf) { n = idx / TK; kk = idx % TK; } else { n = idx % TN; kk = idx / TN; }
            Bs[kk][n] = (col0 + n < N_ && k0 + kk < K_) ? loadB(k0 + kk, col0 + n) : 0.0;
        }
        barrier();
        for (uint kk = 0u; kk < TK; kk++) {
            float ar[MT], br[MT];
            for (uint i = 0u; i < MT; i++) ar[i] = As[kk][ty + 16u * i];
            for (uint j = 0u; j < MT; j++) br[j] = Bs[kk][tx + 16u * j];
            for (uint i = 0u; i < MT; i++)
                for (uint j = 0u; j < MT; j++) acc[i][j] = fma(ar[i], br[j], acc[i][j]);
        }
        barrier();
    }
    for (uint i = 0u; i < MT; i++) {
        uint r = row0 + ty + 16u * i;
        if (r >= M_) continue;
        for (uint j = 0u; j < MT; j++) {
            uint col = col0 + tx + 16u * j;
            if (col < N_) store(r, col, acc[i][j]);
        }
    }
}
