#version 450
// Elementwise ops, reductions, dropout and the Adam step: the GPU twin of
// kernels/elementwise.go. One file, compiled once per entry point with
// -DUNARY, -DUNARY_BACKWARD, -DBINARY, -DREDUCE, -DDROPOUT or -DADAM.
// Buffers are bound whole; element offsets come in push constants.

layout(local_size_x = 256) in;

// Unary op codes: tensor.UnaryOp's order.
#define OP_NEG 0
#define OP_EXP 1
#define OP_LOG 2
#define OP_SQRT 3
#define OP_SQUARE 4
#define OP_SILU 5
#define OP_GELU 6
#define OP_RELU 7
#define OP_SIGMOID 8
#define OP_TANH 9
#define OP_AFFINE 10
#define OP_CLAMP 11

// erf to ~1e-7 absolute (Abramowitz & Stegun 7.1.26 is 1.5e-7); GLSL has none.
float erf_(float x) {
    float s = sign(x);
    float a = abs(x);
    float t = 1.0 / (1.0 + 0.3275911 * a);
    float y = 1.0 - (((((1.061405429 * t - 1.453152027) * t) + 1.421413741) * t - 0.284496736) * t + 0.254829592) * t * exp(-a * a);
    return s * y;
}

float sigmoid_(float x) { return 1.0 / (1.0 + exp(-x)); }

float unaryF(uint op, float x, float alpha, float beta) {
    switch (op) {
    case OP_NEG: return -x;
    case OP_EXP: return exp(x);
    case OP_LOG: return log(x);
    case OP_SQRT: return sqrt(x);
    case OP_SQUARE: return x * x;
    case OP_SILU: return x * sigmoid_(x);
    case OP_GELU: return 0.5 * x * (1.0 + erf_(x * 0.70710678118654752));
    case OP_RELU: return max(x, 0.0);
    case OP_SIGMOID: return sigmoid_(x);
    case OP_TANH: return tanh(x);
    case OP_AFFINE: return alpha * x + beta;
    case OP_CLAMP: return min(max(x, alpha), beta);
    }
    return 0.0;
}

float unaryGrad(uint op, float x, float alpha, float beta) {
    switch (op) {
    case OP_NEG: return -1.0;
    case OP_EXP: return exp(x);
    case OP_LOG: return 1.0 / x;
    case OP_SQRT: return 0.5 / sqrt(x);
    case OP_SQUARE: return 2.0 * x;
    case OP_SILU: { float s = sigmoid_(x); return s * (1.0 + x * (1.0 - s)); }
    case OP_GELU: return 0.5 * (1.0 + erf_(x * 0.70710678118654752)) + x * exp(-0.5 * x * x) * 0.3989422804014327;
    case OP_RELU: return x > 0.0 ? 1.0 : 0.0;
    case OP_SIGMOID: { float s = sigmoid_(x); return s * (1.0 - s); }
    case OP_TANH: { float t = tanh(x); return 1.0 - t * t; }
    case OP_AFFINE: return alpha;
    case OP_CLAMP: return (x < alpha || x > beta) ? 0.0 : 1.0;
    }
    return 0.0;
}

// The grid is (gx, gy) workgroups of 256: element i = (gy·gx + gx)·256 + lx,
// so that more than 65535·256 elements fit.
uint flatIndex() { return (gl_WorkGroupID.y * gl_NumWorkGroups.x + gl_WorkGroupID.x) * 256u + gl_LocalInvocationID.x; }

#if defined(UNARY)
layout(std430, binding = 0) writeonly buffer Y { float y[]; };
layout(std430, binding = 1) readonly buffer X { float x[]; };
layout(push_constant) uniform P { uint n; uint op; float alpha; float beta; } p;
void main() {
    uint i = flatIndex();
    if (i < p.n) y[i] = unaryF(p.op, x[i], p.alpha, p.beta);
}

#elif defined(UNARY_BACKWARD)
layout(std430, binding = 0) writeonly buffer DX { float dx[]; };
layout(std430, binding = 1) readonly buffer X { float x[]; };
layout(std430, binding = 2) readonly buffer DY { float dy[]; };
layout(push_constant) uniform P { uint n; uint op; float alpha; float beta; } p;
void main() {
    uint i = flatIndex();
    if (i < p.n) dx[i] = dy[i] * unaryGrad(p.op, x[i], p.alpha, p.beta);
}

#elif defined(BINARY)
// dst (dense) = a op b over a shape of up to 6 axes; a and b are strided
// views (stride 0 broadcasts). Also the strided copy (op 4: dst = a).
layout(std430, binding = 0) buffer D { float d[]; };
layout(std430, binding = 1) readonly buffer A { float a[]; };
layout(std430, binding = 2) readonly buffer B { float b[]; };
layout(push_constant) uniform P {
    uint n; uint op; uint rank; uint offA; uint offB; uint offD;
    uint shape[6]; int strideA[6]; int strideB[6]; int strideD[6];
} p;
void main() {
    uint i = flatIndex();
    if (i >= p.n) return;
    uint rest = i;
    int ia = int(p.offA), ib = int(p.offB), id = int(p.offD);
    for (int k = int(p.rank) - 1; k >= 0; k--) {
        uint c = rest % p.shape[k];
        rest /= p.shape[k];
        ia += int(c) * p.strideA[k];
        ib += int(c) * p.strideB[k];
        id += int(c) * p.strideD[k];
    }
    float va = a[ia];
    float r;
    switch (p.op) {
    case 0: r = va + b[ib]; break;
    case 1: r = va - b[ib]; break;
    case 2: r = va * b[ib]; break;
    case 3: r = va / b[ib]; break;
    default: r = va; break;
    }
    d[id] = r;
}

#elif defined(REDUCE)
// dst[o, i] = Σ_n x[o, n, i] (op 0), its mean (op 1) or Σ x² (op 2); one
// thread per output, accumulated in two float32 halves (Kahan-compensated).
layout(std430, binding = 0) writeonly buffer Y { float y[]; };
layout(std430, binding = 1) readonly buffer X { float x[]; };
layout(push_constant) uniform P { uint outer; uint n; uint inner; uint op; } p;
void main() {
    uint oi = flatIndex();
    if (oi >= p.outer * p.inner) return;
    uint o = oi / p.inner, i = oi % p.inner;
    uint base = o * p.n * p.inner + i;
    float s = 0.0, c = 0.0;
    for (uint k = 0u; k < p.n; k++) {
        float v = x[base + k * p.inner];
        if (p.op == 2u) v *= v;
        float t = s + (v - c);
        c = (t - s) - (v - c);
        s = t;
    }
    if (p.op == 1u && p.n > 0u) s /= float(p.n);
    y[oi] = s;
}

#elif defined(DROPOUT)
// The same splitmix64 hash of (seed, i) as the CPU, in 32-bit halves.
layout(std430, binding = 0) writeonly buffer Y { float y[]; };
layout(std430, binding = 1) readonly buffer X { float x[]; };
layout(push_constant) uniform P { uint n; float prob; uint seedLo; uint seedHi; } p;

// 64-bit helpers on uvec2(lo, hi).
uvec2 add64(uvec2 a, uvec2 b) { uint c; uint lo = uaddCarry(a.x, b.x, c); return uvec2(lo, a.y + b.y + c); }
uvec2 mul64(uvec2 a, uvec2 b) {
    uint hi, lo;
    umulExtended(a.x, b.x, hi, lo);
    return uvec2(lo, hi + a.x * b.y + a.y * b.x);
}
uvec2 shr64(uvec2 a, uint s) { return s < 32u ? uvec2((a.x >> s) | (a.y << (32u - s)), a.y >> s) : uvec2(a.y >> (s - 32u), 0u); }
uvec2 xor64(uvec2 a, uvec2 b) { return uvec2(a.x ^ b.x, a.y ^ b.y); }

bool keep(uint i) {
    uvec2 z = add64(uvec2(p.seedLo, p.seedHi), mul64(uvec2(i + 1u, 0u), uvec2(0x7F4A7C15u, 0x9E3779B9u)));
    z = mul64(xor64(z, shr64(z, 30u)), uvec2(0x1CE4E5B9u, 0xBF58476Du));
    z = mul64(xor64(z, shr64(z, 27u)), uvec2(0x133111EBu, 0x94D049BBu));
    z = xor64(z, shr64(z, 31u));
    float u = float(z.y >> 8u) / 16777216.0;  // the top 24 bits
    return u >= p.prob;
}
void main() {
    uint i = flatIndex();
    if (i >= p.n) return;
    y[i] = keep(i) ? x[i] * (1.0 / (1.0 - p.prob)) : 0.0;
}

#elif defined(ADAM)
layout(std430, binding = 0) buffer PA { float param[]; };
layout(std430, binding = 1) readonly buffer G { float grad[]; };
layout(std430, binding = 2) buffer M { float m[]; };
layout(std430, binding = 3) buffer V { float v[]; };
layout(push_constant) uniform P {
    uint n; float beta1; float beta2; float eps; float omb1; float omb2;
    float stepSize; float bias2Sqrt; float lr; float l2; float decoupledWD; float gradScale;
} p;
void main() {
    uint i = flatIndex();
    if (i >= p.n) return;
    float g = grad[i] * p.gradScale;
    float w = param[i];
    if (p.l2 != 0.0) g += p.l2 * w;
    if (p.decoupledWD != 0.0) w *= 1.0 - p.lr * p.decoupledWD;
    float mi = m[i] * p.beta1 + g * p.omb1;
    float vi = v[i] * p.beta2 + p.omb2 * g * g;
    m[i] = mi;
    v[i] = vi;
    param[i] = w - p.stepSize * mi / (sqrt(vi) / p.bias2Sqrt + p.eps);
}
#endif
