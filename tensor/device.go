package tensor

// ---------------------------------------------------------------------------
// The device seam.
//
// A Device owns memory (Buffers) and runs op families on it. The CPU device
// lives in package kernels, the Vulkan device in kernels/vulkan; both satisfy
// this interface and nothing above this file knows which one it talks to.
//
// Rules every implementation follows:
//   - Ops never read data back to the host implicitly. DownloadF32/I64 and
//     Synchronize are the only sync points.
//   - Ops do not return errors: a device may record them into a command
//     buffer and run them later. The first failure is kept and returned by the
//     next sync point. Shapes are validated by package tensor before an op is
//     issued, so a device may trust its parameter structs.
//   - All buffers passed to one op belong to that device.
//   - Unless said otherwise an op overwrites its outputs; "accumulate" ops add.
//   - Buffers are dense; a Strided names a buffer plus an element offset and
//     element strides, for the few ops (Copy, Binary) that take views. Their
//     shapes have at most MaxViewRank axes, merged where contiguous
//     (views.go).
// ---------------------------------------------------------------------------

// Buffer is a block of device memory holding Len elements of one DType.
type Buffer interface {
	Device() Device
	DType() DType
	Len() int
}

// Strided is a view into a buffer: element (i0, i1, ...) lives at
// Off + Σ i_k·Strides[k]. A stride of 0 broadcasts along that axis.
type Strided struct {
	Buf     Buffer
	Off     int
	Strides []int
}

// Device is the interface every compute backend implements.
type Device interface {
	// Name is a short human-readable name, e.g. "cpu" or "vulkan:0 (NVIDIA H100)".
	Name() string

	// Alloc returns a zero-filled buffer of n elements.
	Alloc(dt DType, n int) (Buffer, error)
	// UploadF32 copies src into dst[off:off+len(src)].
	UploadF32(dst Buffer, off int, src []float32) error
	// UploadI64 copies src into dst[off:off+len(src)].
	UploadI64(dst Buffer, off int, src []int64) error
	// DownloadF32 copies src[off:off+len(dst)] into dst, waiting for pending work.
	DownloadF32(dst []float32, src Buffer, off int) error
	// DownloadI64 copies src[off:off+len(dst)] into dst, waiting for pending work.
	DownloadI64(dst []int64, src Buffer, off int) error
	// Synchronize waits for all issued work and returns the first error since
	// the last sync point.
	Synchronize() error

	// Fill sets dst[0:n] to v.
	Fill(dst Buffer, n int, v float32)
	// Copy copies the strided view src into the strided view dst, both of the
	// given shape (float32 only).
	Copy(dst, src Strided, shape []int)
	// Unary computes dst[i] = op(x[i]) for i < n.
	Unary(op UnaryOp, dst, x Buffer, n int, p UnaryParams)
	// UnaryBackward computes dx[i] = dy[i]·op'(x[i]) for i < n (dx is overwritten).
	UnaryBackward(op UnaryOp, dx, x, dy Buffer, n int, p UnaryParams)
	// Binary computes dst[i] = a[i] op b[i] over shape; dst is dense, a and b
	// are strided (stride 0 broadcasts).
	Binary(op BinaryOp, dst Buffer, a, b Strided, shape []int)
	// Reduce reduces a dense (Outer, N, Inner) array along its middle axis into
	// a dense (Outer, Inner) array.
	Reduce(op ReduceOp, dst, x Buffer, p ReduceParams)
	// MatMul computes C = α·op(A)·op(B) + β·C, batched (see MatMulParams).
	MatMul(c, a, b Buffer, p MatMulParams)

	// Conv2D computes y = conv(x, w) + b (b may be nil). NCHW / OIHW layouts.
	Conv2D(y, x, w, b Buffer, p ConvParams)
	// Conv2DBackwardInput computes dx from dy and w (dx is overwritten).
	Conv2DBackwardInput(dx, dy, w Buffer, p ConvParams)
	// Conv2DBackwardWeight computes dw (and db when not nil) from x and dy;
	// both are overwritten.
	Conv2DBackwardWeight(dw, db, x, dy Buffer, p ConvParams)

	// Conv3D computes y = conv(x, w) + b (b may be nil). NCDHW / OIDHW layouts.
	Conv3D(y, x, w, b Buffer, p Conv3DParams)
	// Conv3DBackwardInput computes dx from dy and w (dx is overwritten).
	Conv3DBackwardInput(dx, dy, w Buffer, p Conv3DParams)
	// Conv3DBackwardWeight computes dw (and db when not nil) from x and dy;
	// both are overwritten.
	Conv3DBackwardWeight(dw, db, x, dy Buffer, p Conv3DParams)

	// Norm normalizes groups (see NormParams) and stores the per-group mean
	// and reciprocal standard deviation for the backward pass; with mean and
	// rstd nil (nothing is recorded for a backward) it keeps neither. y may
	// be x itself (GroupNormActInPlace).
	Norm(y, mean, rstd, x, gamma, beta Buffer, p NormParams)
	// NormBackward computes dx, dgamma and dbeta (all overwritten; dgamma and
	// dbeta may be nil).
	NormBackward(dx, dgamma, dbeta, dy, x, mean, rstd, gamma Buffer, p NormParams)

	// Softmax over the last axis of a dense (Rows, Cols) array.
	Softmax(y, x Buffer, p SoftmaxParams)
	// SoftmaxBackward computes dx from the softmax output y and dy.
	SoftmaxBackward(dx, y, dy Buffer, p SoftmaxParams)

	// Attention is multi-head scaled-dot-product attention on token-major
	// inputs (see AttentionParams). probs receives softmax(q·kᵀ·scale) for the
	// backward pass; it is nil when no gradient will be taken, and then the
	// device need not hold all B·Heads·Lq·Lk probabilities at once.
	Attention(o, probs, q, k, v Buffer, p AttentionParams)
	// AttentionBackward computes dq, dk, dv (overwritten) from do and the
	// stored probabilities.
	AttentionBackward(dq, dk, dv, do, q, k, v, probs Buffer, p AttentionParams)

	// Upsample2x is nearest-neighbour upsampling by 2 of NCHW data.
	Upsample2x(y, x Buffer, p UpsampleParams)
	// Upsample2xBackward sums each 2×2 block of dy into dx.
	Upsample2xBackward(dx, dy Buffer, p UpsampleParams)

	// Upsample3D doubles every spatial axis of NCDHW data (see Upsample3DParams).
	Upsample3D(y, x Buffer, p Upsample3DParams)
	// Upsample3DBackward computes dx (overwritten) from dy: the transpose of Upsample3D.
	Upsample3DBackward(dx, dy Buffer, p Upsample3DParams)

	// Gather copies rows table[idx[i]] into dst[i] (idx is I64).
	Gather(dst, table, idx Buffer, p GatherParams)
	// ScatterAdd adds rows src[i] into dtable[idx[i]] (accumulate).
	ScatterAdd(dtable, idx, src Buffer, p GatherParams)

	// Dropout computes dst[i] = keep(i)·x[i]/(1-P), where keep is a pure
	// function of (Seed, i), so the backward pass replays the same mask.
	Dropout(dst, x Buffer, n int, p DropoutParams)

	// AdamStep updates param, m and v in place from grad (see AdamParams).
	AdamStep(param, grad, m, v Buffer, n int, p AdamParams)
}

// Recycler is a Device that takes back the buffer of a released tensor
// (Release) for a later Alloc of the same length, which must still return
// it zero-filled. A device without it lets the collector free the buffer.
type Recycler interface {
	Recycle(b Buffer)
}

// ForgetRecycled tells d, where it keeps released buffers for later Allocs
// (Recycler), to let go of all it keeps: a caller whose next work asks for
// other lengths (a pipeline's next stage, a VAE's next level) would have
// them held beside its own until the device finds them idle.
func ForgetRecycled(d Device) {
	if f, ok := d.(interface{ ForgetRecycled() }); ok {
		f.ForgetRecycled()
	}
}

// Repeater is a Device that can choose how many of its threads run a piece
// of work that is called again and again the same way (a model's
// inference forward pass at one input shape, once per sampling step): see
// Repeat.
type Repeater interface {
	Repeat(key any, fn func())
}

// Repeat runs fn, which does work on d that is repeated with the same
// shapes under the comparable key. A device that implements Repeater
// times such calls and runs later ones on as many of its threads as ran
// them fastest; fn's results must not depend on it (the CPU kernels'
// results do not depend on their thread count). Other devices run fn as
// it is.
func Repeat(d Device, key any, fn func()) {
	if r, ok := d.(Repeater); ok {
		r.Repeat(key, fn)
		return
	}
	fn()
}

// FreezableBuffer is a Buffer whose device can be told that its contents
// will not change for a while (Freeze), so that forms it prepares from them
// — packed or transformed weights — are used again without checking the
// contents first. Writing a frozen buffer fails.
type FreezableBuffer interface {
	Buffer
	Freeze()
	Thaw()
}

// DirtyAllocator is a Device that can hand out a float32 buffer without
// clearing it (a recycled one), for an op that writes every element.
type DirtyAllocator interface {
	AllocDirty(n int) Buffer
}

// UnaryOp names an elementwise function.
type UnaryOp int

// Unary ops. Those marked (α, β) read UnaryParams.
const (
	OpNeg     UnaryOp = iota // -x
	OpExp                    // eˣ
	OpLog                    // ln x
	OpSqrt                   // √x
	OpSquare                 // x²
	OpSiLU                   // x·σ(x)
	OpGELU                   // x·Φ(x), the exact (erf) form
	OpReLU                   // max(x, 0)
	OpSigmoid                // 1/(1+e⁻ˣ)
	OpTanh                   // tanh x
	OpAffine                 // α·x + β
	OpClamp                  // min(max(x, α), β)
)

var unaryNames = [...]string{"neg", "exp", "log", "sqrt", "square", "silu", "gelu", "relu", "sigmoid", "tanh", "affine", "clamp"}

func (op UnaryOp) String() string { return unaryNames[op] }

// UnaryParams carries the scalars of parameterized unary ops.
type UnaryParams struct{ Alpha, Beta float32 }

// BinaryOp names an elementwise function of two arguments.
type BinaryOp int

// Binary ops.
const (
	OpAdd BinaryOp = iota
	OpSub
	OpMul
	OpDiv
)

var binaryNames = [...]string{"add", "sub", "mul", "div"}

func (op BinaryOp) String() string { return binaryNames[op] }

// ReduceOp names a reduction.
type ReduceOp int

// Reductions.
const (
	ReduceSum ReduceOp = iota
	ReduceMean
	ReduceSumSquares // Σ x², used for gradient norms
)

// ReduceParams describes a dense (Outer, N, Inner) input reduced along N.
type ReduceParams struct{ Outer, N, Inner int }

// MatMulParams describes a batched GEMM
//
//	C[b] = Alpha·op(A[b])·op(B[b]) + Beta·C[b],   b < Batch
//
// with op(A) of shape (M, K) and op(B) of shape (K, N), all row-major and
// dense. A is stored (M, K), or (K, M) when TransA; B is stored (K, N), or
// (N, K) when TransB. Batch b's matrices start at b·StrideA, b·StrideB and
// b·StrideC elements; a stride of 0 reuses one matrix for every batch.
type MatMulParams struct {
	Batch, M, N, K            int
	TransA, TransB            bool
	Alpha, Beta               float32
	StrideA, StrideB, StrideC int
}

// ConvParams describes a 2-D convolution (cross-correlation, as PyTorch):
// x is (N, C, H, W), w is (F, C, KH, KW), y is (N, F, OH, OW) with
//
//	OH = (H + PadTop + PadBottom - KH)/StrideH + 1, and likewise OW.
//
// Padding is zero padding and may be asymmetric.
type ConvParams struct {
	N, C, H, W                           int
	F, KH, KW                            int
	StrideH, StrideW                     int
	PadTop, PadBottom, PadLeft, PadRight int
	OH, OW                               int
}

// Conv3DParams describes a 3-D convolution (cross-correlation, as PyTorch's
// conv3d): x is (N, C, D, H, W), w is (F, C, KD, KH, KW), y is
// (N, F, OD, OH, OW) with
//
//	OD = (D + 2·PadD - KD)/StrideD + 1, and likewise OH and OW.
//
// Padding is zero padding, the same on both sides of an axis.
type Conv3DParams struct {
	N, C, D, H, W             int
	F, KD, KH, KW             int
	StrideD, StrideH, StrideW int
	PadD, PadH, PadW          int
	OD, OH, OW                int
}

// Interpolation names how Upsample3D fills the new voxels.
type Interpolation int

// Interpolations.
const (
	Nearest   Interpolation = iota // y[z, y, x] = x[z/2, y/2, x/2]
	Trilinear                      // PyTorch's trilinear with align_corners=False (see Upsample3DParams)
)

func (m Interpolation) String() string { return [...]string{"nearest", "trilinear"}[m] }

// Upsample3DParams describes NCDHW input (N, C, D, H, W); the output is
// (N, C, 2D, 2H, 2W). Trilinear is separable: along each axis of length L,
// output j reads input position s = (j + 0.5)/2 - 0.5 clamped to [0, L-1],
// i.e. output 2i is 0.75·x[i] + 0.25·x[max(i-1, 0)] and output 2i+1 is
// 0.75·x[i] + 0.25·x[min(i+1, L-1)] (F.interpolate, scale 2, align_corners=False).
type Upsample3DParams struct {
	N, C, D, H, W int
	Mode          Interpolation
}

// NormParams describes a normalization over groups: x is viewed as
// (N, G, CG, S); statistics are taken per (n, g) over CG·S values with the
// biased variance, and the affine transform is per channel (G·CG channels):
//
//	y = (x - mean)·rstd·gamma[c] + beta[c],   rstd = 1/√(var + Eps)
//
// GroupNorm on NCHW is (N, groups, C/groups, H·W); LayerNorm over the last
// axis D of R rows is (R, 1, D, 1). gamma and beta may be nil. With
// Activate, y is then Act(y), in the same pass (inference: a norm and its
// activation read and write the tensor once; no backward is defined).
type NormParams struct {
	N, G, CG, S int
	Eps         float32
	Activate    bool
	Act         UnaryOp
}

// SoftmaxParams describes a dense (Rows, Cols) array, softmax over Cols.
type SoftmaxParams struct{ Rows, Cols int }

// AttentionParams describes multi-head attention on token-major tensors:
// q is (B, Lq, Heads·D), k and v are (B, Lk, Heads·D), o is (B, Lq, Heads·D)
// and probs is (B, Heads, Lq, Lk). Head h owns channels [h·D, (h+1)·D).
// With ChannelMajor, q, k, v and o are laid out channel-major instead,
// (B, Heads·D, L), as the NCHW images of a U-Net's attention block are;
// probs keeps its layout.
//
//	probs = softmax(q_h·k_hᵀ·Scale) over keys,   o_h = probs·v_h
type AttentionParams struct {
	B, Heads, Lq, Lk, D int
	Scale               float32
	ChannelMajor        bool
}

// UpsampleParams describes NCHW input (N, C, H, W); the output is (N, C, 2H, 2W).
type UpsampleParams struct{ N, C, H, W int }

// GatherParams describes Rows lookups of Dim-wide rows in a table of Num rows.
type GatherParams struct{ Rows, Num, Dim int }

// DropoutParams: each element is dropped with probability P, decided by a
// hash of (Seed, index).
type DropoutParams struct {
	P    float32
	Seed uint64
}

// AdamParams holds one Adam/AdamW step with PyTorch's semantics (see nn.Adam):
//
//	g  = grad + L2·param                      (Adam's coupled weight decay)
//	param *= 1 - LR·DecoupledWD               (AdamW)
//	m  = β1·m + (1-β1)·g
//	v  = β2·v + (1-β2)·g²          (1-β1 and 1-β2 are rounded from float64, as PyTorch does)
//	param -= StepSize · m / (√v / Bias2Sqrt + Eps)
//
// where StepSize = LR/(1-β1ᵗ) and Bias2Sqrt = √(1-β2ᵗ) are computed by the caller
// in float64. GradScale multiplies grad first (gradient clipping).
type AdamParams struct {
	Beta1, Beta2, Eps            float32
	OneMinusBeta1, OneMinusBeta2 float32
	StepSize, Bias2Sqrt          float32
	LR, L2, DecoupledWD          float32
	GradScale                    float32
}
