#version 450
// SGEMM and the convolutions as implicit GEMMs: the GPU twin of
// kernels/gemm.go and kernels/conv.go. Compiled with -DGEMM, -DCONV,
// -DCONV_BACKWARD_INPUT or -DCONV_BACKWARD_WEIGHT; the four share the tiling
// and differ only in how an element of op(A) (M×K) and op(B) (K×N) is read
// and where C goes:
//
//   GEMM                  C = alpha·op(A)·op(B) + beta·C, strided and batched
//   CONV                  y[n] (F × OH·OW) = w (F × C·KH·KW) · col(x[n]) + bias
//   CONV_BACKWARD_INPUT   dx[n] (C × H·W) = wᵀ (C × F·KH·KW) · gathered dy[n]
//   CONV_BACKWARD_WEIGHT  dw (F × C·KH·KW) = Σ_n dy[n] (F × OH·OW) · col(x[n])ᵀ
//
// col(x) is never stored: the B loader computes the input pixel of each
// (c, kh, kw, oh, ow) on the fly, zero in the padding.
//
// Each workgroup of 16×16 threads computes a 64×64 tile of C; each thread a
// 4×4 block of it at rows ty + 16i and columns tx + 16j, so neighbouring
// threads touch neighbouring addresses. The K loop stages a 64×16 slice of A
// and a 16×64 slice of B in shared memory; the loaders pick the thread-to-
// element mapping that walks memory contiguously.

layout(local_size_x = 16, local_size_y = 16) in;

layout(std430, binding = 0) buffer C_ { float c[]; };
layout(std430, binding = 1) readonly buffer A_ { float a[]; };
layout(std430, binding = 2) readonly buffer B_ { float b[]; };
layout(std430, binding = 3) readonly buffer Bias_ { float bias[]; };

#if defined(GEMM)
layout(push_constant) uniform P {
    uint M; uint N; uint K; uint transA; uint transB; float alpha; float beta;
    uint lda; uint ldb; uint ldc; uint inner;
    uint sA0; uint sB0; uint sC0; uint sA1; uint sB1; uint sC1; uint offA; uint offB; uint offC;
} p;
uint M() { return p.M; } uint N() { return p.N; } uint K() { return p.K; }
uint baseA, baseB, baseC;
void setBatch(uint z) {
    uint o = z / p.inner, i = z % p.inner;
    baseA = p.offA + o * p.sA0 + i * p.sA1;
    baseB = p.offB + o * p.sB0 + i * p.sB1;
    baseC = p.offC + o * p.sC0 + i * p.sC1;
}
bool aKFast() { return p.transA == 0u; }
bool bKFast() { return p.transB != 0u; }
float loadA(uint m, uint k) { return p.transA == 0u ? a[baseA + m * p.lda + k] : a[baseA + k * p.lda + m]; }
float loadB(uint k, uint n) { return p.transB == 0u ? b[baseB + k * p.ldb + n] : b[baseB + n * p.ldb + k]; }
void store(uint m, uint n, float v) {
    uint o = baseC + m * p.ldc + n;
    v *= p.alpha;
    if (p.beta != 0.0) v += p.beta * c[o];
    c[o] = v;
}

#else
// Convolution geometry (tensor.ConvParams).
layout(push_constant) uniform P {
    uint N; uint C; uint H; uint W; uint F; uint KH; uint KW; uint SH; uint SW; uint PT; uint PL; uint OH; uint OW;
    uint hasBias;
} p;
uint img;
void setBatch(uint z) { img = z; }
// The input pixel of (c, kh, kw) for output pixel (oh, ow) of image n, or 0.
float xAt(uint n, uint ckk, uint ohw) {
    uint c = ckk / (p.KH * p.KW), r = ckk % (p.KH * p.KW);
    uint kh = r / p.KW, kw = r % p.KW;
    uint oh = ohw / p.OW, ow = ohw % p.OW;
    int ih = int(oh * p.SH + kh) - int(p.PT), iw = int(ow * p.SW + kw) - int(p.PL);
    if (ih < 0 || iw < 0 || ih >= int(p.H) || iw >= int(p.W)) return 0.0;
    return b[((n * p.C + c) * p.H + uint(ih)) * p.W + uint(iw)];
}

#if defined(CONV)
// a = w (F, C·KH·KW), b = x, bias.
uint M() { return p.F; } uint N() { return p.OH * p.OW; } uint K() { return p.C * p.KH * p.KW; }
bool aKFast() { return true; }
bool bKFast() { return false; }
float loadA(uint m, uint k) { return a[m * K() + k]; }
float loadB(uint k, uint n) { return xAt(img, k, n); }
void store(uint m, uint n, float v) {
    if (p.hasBias != 0u) v += bias[m];
    c[(img * p.F + m) * N() + n] = v;
}

#elif defined(CONV_BACKWARD_INPUT)
// a = w (F, C, KH, KW), b = dy (N, F, OH, OW); C = dx (N, C, H, W).
uint M() { return p.C; } uint N() { return p.H * p.W; } uint K() { return p.F * p.KH * p.KW; }
bool aKFast() { return false; }
bool bKFast() { return false; }
float loadA(uint m, uint k) {  // wᵀ: row c, column (f, kh, kw)
    uint f = k / (p.KH * p.KW), r = k % (p.KH * p.KW);
    return a[(f * p.C + m) * p.KH * p.KW + r];
}
float loadB(uint k, uint n) {  // dy at the output pixel that input pixel n meets through tap (kh, kw)
    uint f = k / (p.KH * p.KW), r = k % (p.KH * p.KW);
    uint kh = r / p.KW, kw = r % p.KW;
    int y = int(n / p.W) + int(p.PT) - int(kh), x = int(n % p.W) + int(p.PL) - int(kw);
    if (y < 0 || x < 0 || y % int(p.SH) != 0 || x % int(p.SW) != 0) return 0.0;
    uint oh = uint(y) / p.SH, ow = uint(x) / p.SW;
    if (oh >= p.OH || ow >= p.OW) return 0.0;
    return b[((img * p.F + f) * p.OH + oh) * p.OW + ow];
}
void store(uint m, uint n, float v) { c[(img * p.C + m) * N() + n] = v; }

#elif defined(CONV_BACKWARD_WEIGHT)
// a = dy (N, F, OH, OW), b = x; C = dw (F, C·KH·KW). K runs over (n, oh, ow).
uint M() { return p.F; } uint N() { return p.C * p.KH * p.KW; } uint K() { return p.N * p.OH * p.OW; }
bool aKFast() { return true; }
bool bKFast() { return true; }
float loadA(uint m, uint k) {
    uint n = k / (p.OH * p.OW), s = k % (p.OH * p.OW);
    return a[(n * p.F + m) * p.OH * p.OW + s];
}
float loadB(uint k, uint col) {
    uint n = k / (p.OH * p.OW), s = k % (p.OH * p.OW);
    return xAt(n, col, s);
}
void store(uint m, uint n, float v) { c[m * N() + n] = v; }
#endif
#endif

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
