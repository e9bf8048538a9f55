package nn

import (
	"math"
	"math/rand/v2"
	"sync/atomic"

	"github.com/godiffuse/godiffuse/tensor"
)

// ---------------------------------------------------------------------------
// Basic layers. Each holds its parameters as tensors and lists them under
// PyTorch's names (weight, bias) through Collect.
// ---------------------------------------------------------------------------

// Param is a named parameter; names are diffusers' (or transformers')
// state-dict keys.
type Param struct {
	Name string
	T    *tensor.Tensor
	// Matrix marks a Linear or Conv2d weight: for inference it may be stored
	// in half precision (LoadOptions.Half).
	Matrix bool
}

// ParamList collects named parameters in state-dict order: every layer and
// block has a Collect(prefix, *ParamList) method that adds its own under
// prefix, so a model's list is the walk of its module tree.
type ParamList []Param

// Add appends t as prefix+name (nothing when t is nil: an absent bias).
func (ps *ParamList) Add(prefix, name string, t *tensor.Tensor) {
	if t != nil {
		*ps = append(*ps, Param{Name: prefix + name, T: t})
	}
}

// AddMatrix is Add for a Linear or Conv2d weight (Param.Matrix).
func (ps *ParamList) AddMatrix(prefix, name string, t *tensor.Tensor) {
	if t != nil {
		*ps = append(*ps, Param{Name: prefix + name, T: t, Matrix: true})
	}
}

// uniform makes a new parameter filled with U(-bound, bound), PyTorch's
// default initialisation for Linear and Conv2d (kaiming_uniform with a = √5
// for the weight gives bound = 1/√fan_in, and the bias uses the same bound).
// With r nil it draws nothing: the parameter is zero, a shape waiting for
// weights from a file (loading is not training).
func uniform(dev tensor.Device, r *rand.Rand, bound float64, shape ...int) *tensor.Tensor {
	if r == nil {
		return tensor.Zeros(dev, shape...).SetRequiresGrad(true)
	}
	return tensor.Uniform(dev, r, bound, shape...).SetRequiresGrad(true)
}

func constant(dev tensor.Device, c float32, shape ...int) *tensor.Tensor {
	return tensor.Full(dev, c, shape...).SetRequiresGrad(true)
}

// Linear is y = x·Wᵀ + b with W (out, in).
type Linear struct {
	Weight, Bias *tensor.Tensor
	// as1x1 is Weight viewed as a 1×1 convolution's (out, in, 1, 1), for
	// the Weight it was made of: see conv1x1Weight. Atomic: concurrent
	// forwards of one model share it.
	as1x1 atomic.Pointer[weightView]
}

// weightView is a view of a weight tensor, and the tensor.
type weightView struct{ view, of *tensor.Tensor }

// conv1x1Weight is l.Weight as the (out, in, 1, 1) weight of a 1×1
// convolution: one view kept across calls while nothing records gradients
// (an attention's four projections made one per call), a fresh one, which
// records its backward, otherwise.
func (l *Linear) conv1x1Weight() *tensor.Tensor {
	w := l.Weight
	if w.RequiresGrad() {
		return w.Reshape(w.Dim(0), w.Dim(1), 1, 1)
	}
	if v := l.as1x1.Load(); v != nil && v.of == w {
		return v.view
	}
	v := &weightView{view: w.Reshape(w.Dim(0), w.Dim(1), 1, 1), of: w}
	l.as1x1.Store(v)
	return v.view
}

// NewLinear initialises as torch.nn.Linear.
func NewLinear(dev tensor.Device, r *rand.Rand, in, out int, bias bool) *Linear {
	bound := 1 / math.Sqrt(float64(in))
	l := &Linear{Weight: uniform(dev, r, bound, out, in)}
	if bias {
		l.Bias = uniform(dev, r, bound, out)
	}
	return l
}

// Forward applies the layer to x (..., in).
func (l *Linear) Forward(x *tensor.Tensor) *tensor.Tensor { return tensor.Linear(x, l.Weight, l.Bias) }

func (l *Linear) Collect(prefix string, ps *ParamList) {
	ps.AddMatrix(prefix, "weight", l.Weight)
	ps.Add(prefix, "bias", l.Bias)
}

// Conv2d is a 2-D convolution with weight (F, C, KH, KW).
type Conv2d struct {
	Weight, Bias *tensor.Tensor
	Stride       int
	Pad          tensor.Pad4
}

// NewConv2d initialises as torch.nn.Conv2d.
func NewConv2d(dev tensor.Device, r *rand.Rand, in, out, k, stride int, pad tensor.Pad4) *Conv2d {
	bound := 1 / math.Sqrt(float64(in*k*k))
	return &Conv2d{Weight: uniform(dev, r, bound, out, in, k, k), Bias: uniform(dev, r, bound, out), Stride: stride, Pad: pad}
}

// Forward applies the convolution to x (N, C, H, W).
func (c *Conv2d) Forward(x *tensor.Tensor) *tensor.Tensor {
	return tensor.Conv2D(x, c.Weight, c.Bias, c.Stride, c.Pad)
}

func (c *Conv2d) Collect(prefix string, ps *ParamList) {
	ps.AddMatrix(prefix, "weight", c.Weight)
	ps.Add(prefix, "bias", c.Bias)
}

// GroupNorm is torch.nn.GroupNorm with affine weight and bias.
type GroupNorm struct {
	Weight, Bias *tensor.Tensor
	Groups       int
	Eps          float32
}

// NewGroupNorm initialises weight 1 and bias 0.
func NewGroupNorm(dev tensor.Device, groups, channels int, eps float32) *GroupNorm {
	return &GroupNorm{Weight: constant(dev, 1, channels), Bias: constant(dev, 0, channels), Groups: groups, Eps: eps}
}

// Forward normalizes x (N, C, ...).
func (g *GroupNorm) Forward(x *tensor.Tensor) *tensor.Tensor {
	return tensor.GroupNorm(x, g.Groups, g.Weight, g.Bias, g.Eps)
}

// ForwardAct is the activation act (silu, gelu, …) of Forward(x), in one
// pass over the tensor in inference (tensor.GroupNormAct).
func (g *GroupNorm) ForwardAct(x *tensor.Tensor, act string) *tensor.Tensor {
	return tensor.GroupNormAct(x, g.Groups, g.Weight, g.Bias, g.Eps, act)
}

// ForwardActInPlace is ForwardAct for an x the caller holds alone and does
// not read again: in inference x's storage takes the result
// (tensor.GroupNormActInPlace), and the result may be x itself.
func (g *GroupNorm) ForwardActInPlace(x *tensor.Tensor, act string) *tensor.Tensor {
	return tensor.GroupNormActInPlace(x, g.Groups, g.Weight, g.Bias, g.Eps, act)
}

func (g *GroupNorm) Collect(prefix string, ps *ParamList) {
	ps.Add(prefix, "weight", g.Weight)
	ps.Add(prefix, "bias", g.Bias)
}

// LayerNorm is torch.nn.LayerNorm over the last axis.
type LayerNorm struct {
	Weight, Bias *tensor.Tensor
	Eps          float32
}

// NewLayerNorm initialises weight 1 and bias 0.
func NewLayerNorm(dev tensor.Device, dim int, eps float32) *LayerNorm {
	return &LayerNorm{Weight: constant(dev, 1, dim), Bias: constant(dev, 0, dim), Eps: eps}
}

// Forward normalizes over the last axis.
func (l *LayerNorm) Forward(x *tensor.Tensor) *tensor.Tensor {
	return tensor.LayerNorm(x, l.Weight, l.Bias, l.Eps)
}

func (l *LayerNorm) Collect(prefix string, ps *ParamList) {
	ps.Add(prefix, "weight", l.Weight)
	ps.Add(prefix, "bias", l.Bias)
}

// Embedding is a lookup table (Num, Dim), initialised N(0, 1) as torch.nn.Embedding.
type Embedding struct {
	Weight *tensor.Tensor
}

// NewEmbedding initialises the table from N(0, 1) (zeros when r is nil).
func NewEmbedding(dev tensor.Device, r *rand.Rand, num, dim int) *Embedding {
	if r == nil {
		return &Embedding{Weight: tensor.Zeros(dev, num, dim).SetRequiresGrad(true)}
	}
	v := make([]float32, num*dim)
	for i := range v {
		v[i] = float32(r.NormFloat64())
	}
	return &Embedding{Weight: tensor.FromFloat32(dev, v, num, dim).SetRequiresGrad(true)}
}

// Forward looks up idx (int64).
func (e *Embedding) Forward(idx *tensor.Tensor) *tensor.Tensor {
	return tensor.Embedding(idx, e.Weight)
}

func (e *Embedding) Collect(prefix string, ps *ParamList) { ps.Add(prefix, "weight", e.Weight) }

// Conv3d is a 3-D convolution with weight (F, C, K, K, K), the same stride
// and padding on every axis.
type Conv3d struct {
	Weight, Bias *tensor.Tensor
	Stride, Pad  int
}

// NewConv3d initialises as torch.nn.Conv3d (with r nil: zeros awaiting weights).
func NewConv3d(dev tensor.Device, r *rand.Rand, in, out, k, stride, pad int) *Conv3d {
	bound := 1 / math.Sqrt(float64(in*k*k*k))
	return &Conv3d{Weight: uniform(dev, r, bound, out, in, k, k, k), Bias: uniform(dev, r, bound, out), Stride: stride, Pad: pad}
}

// Forward applies the convolution to x (N, C, D, H, W).
func (c *Conv3d) Forward(x *tensor.Tensor) *tensor.Tensor {
	return tensor.Conv3D(x, c.Weight, c.Bias, c.Stride, c.Pad)
}

func (c *Conv3d) Collect(prefix string, ps *ParamList) {
	ps.AddMatrix(prefix, "weight", c.Weight)
	ps.Add(prefix, "bias", c.Bias)
}
