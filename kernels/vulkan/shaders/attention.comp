#version 450
// Row softmax and its backward, the GPU twin of the softmax in
// kernels/attention.go (attention itself is GEMMs around these; see
// device_nn.go). One workgroup of 256 threads per row, tree reductions in
// shared memory. Compiled with -DSOFTMAX or -DSOFTMAX_BACKWARD.
//
//   SOFTMAX            y_j = e^(x_j − max x) / Σ_k e^(x_k − max x)
//   SOFTMAX_BACKWARD   dx_j = scale · y_j · (dy_j − Σ_k y_k dy_k)   (dx may alias dy)

layout(local_size_x = 256) in;

shared float red[256];

// Reduces red[] (sum, or max when isMax) and returns the result to every thread.
float reduce256(bool isMax) {
    uint t = gl_LocalInvocationID.x;
    for (uint s = 128u; s > 0u; s >>= 1) {
        barrier();
        if (t < s) red[t] = isMax ? max(red[t], red[t + s]) : red[t] + red[t + s];
    }
    barrier();
    float r = red[0];
    barrier();
    return r;
}

uint rowIndex() { return gl_WorkGroupID.y * gl_NumWorkGroups.x + gl_WorkGroupID.x; }

#if defined(SOFTMAX)
layout(std430, binding = 0) buffer Y { float y[]; };
layout(std430, binding = 1) readonly buffer X { float x[]; };
layout(push_constant) uniform P { uint rows; uint cols; } p;
void main() {
    uint row = rowIndex();
    if (row >= p.rows) return;
    uint t = gl_LocalInvocationID.x, base = row * p.cols;
    float m = -1.0 / 0.0;
    for (uint j = t; j < p.cols; j += 256u) m = max(m, x[base + j]);
    red[t] = m;
    m = reduce256(true);
    float s = 0.0;
    for (uint j = t; j < p.cols; j += 256u) {
        float e = exp(x[base + j] - m);
        y[base + j] = e;
        s += e;
    }
    red[t] = s;
    s = reduce256(false);
    float inv = 1.0 / s;
    for (uint j = t; j < p.cols; j += 256u) y[base + j] *= inv;
}

#elif defined(SOFTMAX_BACKWARD)
layout(std430, binding = 0) buffer DX { float dx[]; };
layout(std430, binding = 1) readonly buffer Y { float y[]; };
layout(std430, binding = 2) buffer DY { float dy[]; };
layout(push_constant) uniform P { uint rows; uint cols; float scale; } p;
void main() {
    uint row = rowIndex();
    if (row >= p.rows) return;
    uint t = gl_LocalInvocationID.x, base = row * p.cols;
    float s = 0.0;
    for (uint j = t; j < p.cols; j += 256u) s += y[base + j] * dy[base + j];
    red[t] = s;
    s = reduce256(false);
    for (uint j = t; j < p.cols; j += 256u) dx[base + j] = p.scale * y[base + j] * (dy[base + j] - s);
}
#endif
