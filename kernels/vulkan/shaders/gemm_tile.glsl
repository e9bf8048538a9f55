// The tiled main loop shared by gemm.comp, conv.comp and conv3d.comp
// (included with GL_GOOGLE_include_directive). The including shader defines
// M(), N(), K(), setBatch(z), aKFast(), bKFast(), loadA(m, k), loadB(k, n)
// and store(m, n, v): how an element of op(A) (M×K) and op(B) (K×N) is read
// and where an element of C goes. A shader that splits K over the grid's z
// (split-K: each z sums one slice of K, see conv.comp) defines SPLIT_K and
// kLo(), kHi(), the slice setBatch chose.
//
// Each workgroup of 16×16 threads computes a TM×TN tile of C. The K loop
// stages a TK×TM slice of op(A) and a TK×TN slice of op(B) in shared memory;
// the loaders pick the thread-to-element mapping that walks memory
// contiguously (aKFast/bKFast).
//
// Tile shapes: 64×64 with 4×4 per thread and K steps of 16 by default, each
// thread's block at rows ty + 16i and columns tx + 16j. With -DBIG, for
// large products on GPUs: 128×128 with 8×8 per thread and K steps of 16,
// each thread's block at rows 4ty + i and 64 + 4ty + i (columns alike), so
// that it reads four rows (columns) as one vec4 from shared memory: four
// 16-byte reads feed 64 multiply-adds. The next K slice is fetched into
// registers while the current one is multiplied, hiding the loads' latency;
// the shared rows are padded by one vec4 against bank conflicts when a
// K-fast operand is stored.

#extension GL_EXT_control_flow_attributes : require

#ifndef SPLIT_K
uint kLo() { return 0u; }
uint kHi() { return K(); }
#endif

#ifdef BIG
#define TM 128
#define TN 128
#define TK 16
#define PAD 1
#else
#define TM 64
#define TN 64
#define TK 16
#define MT 4
#endif
#define LOADS (TM * TK / 256)

// slot is element l of thread tid's share of a K slice: row m and k ka of
// op(A), column n and k kb of op(B), walking memory contiguously.
void slot(uint tid, uint l, bool akf, bool bkf, out uint m, out uint ka, out uint n, out uint kb) {
    uint idx = tid + l * 256u;
    if (akf) { m = idx / TK; ka = idx % TK; } else { m = idx % TM; ka = idx / TM; }
    if (bkf) { n = idx / TK; kb = idx % TK; } else { n = idx % TN; kb = idx / TN; }
}

#ifdef BIG
shared vec4 As[TK][TM / 4 + PAD];
shared vec4 Bs[TK][TN / 4 + PAD];

void main() {
    uint tx = gl_LocalInvocationID.x, ty = gl_LocalInvocationID.y;
    uint tid = ty * 16u + tx;
    uint row0 = gl_WorkGroupID.y * TM, col0 = gl_WorkGroupID.x * TN;
    setBatch(gl_WorkGroupID.z);
    uint M_ = M(), N_ = N(), lo = kLo(), hi = kHi();
    bool akf = aKFast(), bkf = bKFast();
    float acc[8][8];
    [[unroll]] for (int i = 0; i < 8; i++) [[unroll]] for (int j = 0; j < 8; j++) acc[i][j] = 0.0;

    // Element l of this thread's share of a slice: (m or n, kk).
    float pa[LOADS], pb[LOADS];
    [[unroll]] for (uint l = 0u; l < LOADS; l++) {
        uint m, ka, n, kb;
        slot(tid, l, akf, bkf, m, ka, n, kb);
        pa[l] = (row0 + m < M_ && lo + ka < hi) ? loadA(row0 + m, lo + ka) : 0.0;
        pb[l] = (col0 + n < N_ && lo + kb < hi) ? loadB(lo + kb, col0 + n) : 0.0;
    }
    for (uint k0 = lo; k0 < hi; k0 += TK) {
        [[unroll]] for (uint l = 0u; l < LOADS; l++) {
            uint m, ka, n, kb;
            slot(tid, l, akf, bkf, m, ka, n, kb);
            As[ka][m >> 2][m & 3u] = pa[l];
            Bs[kb][n >> 2][n & 3u] = pb[l];
        }
        barrier();
        uint k1 = k0 + TK;
        if (k1 < hi) {
            [[unroll]] for (uint l = 0u; l < LOADS; l++) {
                uint m, ka, n, kb;
                slot(tid, l, akf, bkf, m, ka, n, kb);
                pa[l] = (row0 + m < M_ && k1 + ka < hi) ? loadA(row0 + m, k1 + ka) : 0.0;
                pb[l] = (col0 + n < N_ && k1 + kb < hi) ? loadB(k1 + kb, col0 + n) : 0.0;
            }
        }
        [[unroll]] for (uint kk = 0u; kk < TK; kk++) {
            vec4 a0 = As[kk][ty], a1 = As[kk][16u + ty];
            vec4 b0 = Bs[kk][tx], b1 = Bs[kk][16u + tx];
            float ar[8] = float[8](a0.x, a0.y, a0.z, a0.w, a1.x, a1.y, a1.z, a1.w);
            float br[8] = float[8](b0.x, b0.y, b0.z, b0.w, b1.x, b1.y, b1.z, b1.w);
            [[unroll]] for (int i = 0; i < 8; i++)
                [[unroll]] for (int j = 0; j < 8; j++) acc[i][j] = fma(ar[i], br[j], acc[i][j]);
        }
        barrier();
    }
    [[unroll]] for (uint i = 0u; i < 8u; i++) {
        uint r = row0 + (i < 4u ? 4u * ty + i : 64u + 4u * ty + i - 4u);
        if (r >= M_) continue;
        [[unroll]] for (uint j = 0u; j < 8u; j++) {
            uint col = col0 + (j < 4u ? 4u * tx + j : 64u + 4u * tx + j - 4u);
            if (col < N_) store(r, col, acc[i][j]);
        }
    }
}

#else
shared float As[TK][TM];
shared float Bs[TK][TN];

void main() {
    uint tx = gl_LocalInvocationID.x, ty = gl_LocalInvocationID.y;
    uint tid = ty * 16u + tx;
    uint row0 = gl_WorkGroupID.y * TM, col0 = gl_WorkGroupID.x * TN;
    setBatch(gl_WorkGroupID.z);
    uint M_ = M(), N_ = N(), lo = kLo(), hi = kHi();
    bool akf = aKFast(), bkf = bKFast();
    float acc[MT][MT];
    [[unroll]] for (int i = 0; i < MT; i++) [[unroll]] for (int j = 0; j < MT; j++) acc[i][j] = 0.0;

    for (uint k0 = lo; k0 < hi; k0 += TK) {
        [[unroll]] for (uint l = 0u; l < LOADS; l++) {
            uint m, ka, n, kb;
            slot(tid, l, akf, bkf, m, ka, n, kb);
            As[ka][m] = (row0 + m < M_ && k0 + ka < hi) ? loadA(row0 + m, k0 + ka) : 0.0;
            Bs[kb][n] = (col0 + n < N_ && k0 + kb < hi) ? loadB(k0 + kb, col0 + n) : 0.0;
        }
        barrier();
        [[unroll]] for (uint kk = 0u; kk < TK; kk++) {
            float ar[MT], br[MT];
            [[unroll]] for (uint i = 0u; i < MT; i++) ar[i] = As[kk][ty + 16u * i];
            [[unroll]] for (uint j = 0u; j < MT; j++) br[j] = Bs[kk][tx + 16u * j];
            [[unroll]] for (uint i = 0u; i < MT; i++)
                [[unroll]] for (uint j = 0u; j < MT; j++) acc[i][j] = fma(ar[i], br[j], acc[i][j]);
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
#endif
