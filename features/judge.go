package features

import (
	_ "embed"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"

	"github.com/godiffuse/godiffuse/kernels"
	"github.com/godiffuse/godiffuse/safetensors"
	"github.com/godiffuse/godiffuse/tensor"
)

// JudgeName names the judge's penultimate features in statistics files.
const JudgeName = "fmnist-judge-v1/fc1"

// JudgeFeatureDim is the width of the judge's penultimate layer.
const JudgeFeatureDim = 128

// judgeWeights were trained by `go run ./cmd/trainjudge` (see its doc for
// the command, the data and the measured accuracy).
//
//go:embed weights/fmnist-judge-v1.safetensors
var judgeWeights []byte

// Judge is a small CNN classifier for 28×28 grey Fashion-MNIST images:
//
//	conv 1→32 3×3 → GN → ReLU            28×28
//	conv 32→32 3×3 stride 2 → GN → ReLU  14×14
//	conv 32→64 3×3 → GN → ReLU           14×14
//	conv 64→64 3×3 stride 2 → GN → ReLU   7×7
//	flatten 3136 → fc1 128 → ReLU        (the features)
//	fc2 128 → 10                         (the logits)
//
// GroupNorm (8 groups) normalizes each image on its own, so an image's
// features never depend on the rest of its batch.
type Judge struct {
	ConvW, ConvB [4]*tensor.Tensor // conv1…conv4 weight (out, in, 3, 3) and bias
	NormW, NormB [4]*tensor.Tensor // norm1…norm4 (8 groups)
	FC1W, FC1B   *tensor.Tensor    // fc1 (128, 3136)
	FC2W, FC2B   *tensor.Tensor    // fc2 (10, 128)
	dev          tensor.Device
}

// NewJudge initialises an untrained judge on dev (nil: the CPU) as PyTorch
// initialises Conv2d, GroupNorm and Linear layers, all parameters needing
// gradients.
func NewJudge(dev tensor.Device, seed uint64) *Judge {
	if dev == nil {
		dev = kernels.CPU()
	}
	r := rand.New(rand.NewPCG(seed, 0x6a75646765))
	j := &Judge{dev: dev}
	chans := [5]int{1, 32, 32, 64, 64}
	for i := range 4 {
		bound := 1 / math.Sqrt(float64(chans[i]*9))
		j.ConvW[i] = tensor.Uniform(dev, r, bound, chans[i+1], chans[i], 3, 3)
		j.ConvB[i] = tensor.Uniform(dev, r, bound, chans[i+1])
		j.NormW[i], j.NormB[i] = tensor.Full(dev, 1, chans[i+1]), tensor.Zeros(dev, chans[i+1])
	}
	j.FC1W = tensor.Uniform(dev, r, 1/math.Sqrt(64*7*7), JudgeFeatureDim, 64*7*7)
	j.FC1B = tensor.Uniform(dev, r, 1/math.Sqrt(64*7*7), JudgeFeatureDim)
	j.FC2W = tensor.Uniform(dev, r, 1/math.Sqrt(JudgeFeatureDim), 10, JudgeFeatureDim)
	j.FC2B = tensor.Uniform(dev, r, 1/math.Sqrt(JudgeFeatureDim), 10)
	names, ts := j.Tensors()
	for i := range names {
		ts[i].SetRequiresGrad(true)
	}
	return j
}

// Tensors lists the parameters and their state-dict names, in the order
// of the file (and of a training optimizer's state).
func (j *Judge) Tensors() (names []string, ts []*tensor.Tensor) {
	add := func(name string, t *tensor.Tensor) {
		names, ts = append(names, name), append(ts, t)
	}
	for i := range 4 {
		add(fmt.Sprintf("conv%d.weight", i+1), j.ConvW[i])
		add(fmt.Sprintf("conv%d.bias", i+1), j.ConvB[i])
		add(fmt.Sprintf("norm%d.weight", i+1), j.NormW[i])
		add(fmt.Sprintf("norm%d.bias", i+1), j.NormB[i])
	}
	add("fc1.weight", j.FC1W)
	add("fc1.bias", j.FC1B)
	add("fc2.weight", j.FC2W)
	add("fc2.bias", j.FC2B)
	return names, ts
}

// Forward maps x (N, 1, 28, 28) in [-1, 1] to the features (N, 128) and the
// logits (N, 10). dropout (training only) applies to the features before fc2.
func (j *Judge) Forward(x *tensor.Tensor, dropout float32, seed uint64) (feats, logits *tensor.Tensor) {
	h := x
	for i := range 4 {
		conv := tensor.Conv2D(h, j.ConvW[i], j.ConvB[i], 1+i%2, tensor.PadAll(1))
		h = tensor.ReLU(tensor.GroupNorm(conv, 8, j.NormW[i], j.NormB[i], 1e-5))
	}
	feats = tensor.ReLU(tensor.Linear(h.Reshape(h.Dim(0), -1), j.FC1W, j.FC1B))
	return feats, tensor.Linear(tensor.Dropout(feats, dropout, seed), j.FC2W, j.FC2B)
}

// LoadJudge returns the trained judge with its embedded weights.
func LoadJudge(dev tensor.Device) (*Judge, error) {
	st, err := safetensors.Parse("embedded "+JudgeName, judgeWeights)
	if err != nil {
		return nil, err
	}
	j := NewJudge(dev, 0)
	if err := j.Load(st); err != nil {
		return nil, err
	}
	return j, nil
}

// Load copies weights from a safetensors file (F32 or F16), strictly: every
// parameter present with its shape, nothing else.
func (j *Judge) Load(st *safetensors.File) error {
	names, ts := j.Tensors()
	if len(st.Tensors) != len(names) {
		return fmt.Errorf("%s: %d tensors, the judge has %d parameters", st.Path, len(st.Tensors), len(names))
	}
	for i, name := range names {
		v, shape, err := st.Float32(name)
		if err != nil {
			return err
		}
		if !slices.Equal(shape, ts[i].Shape()) {
			return fmt.Errorf("%s: tensor %q has shape %v, want %v", st.Path, name, shape, ts[i].Shape())
		}
		ts[i].CopyFrom(tensor.FromFloat32(j.dev, v, shape...))
		ts[i].SetRequiresGrad(false)
	}
	return nil
}

// Save writes the weights as F16 (they were checked to lose no accuracy;
// see cmd/trainjudge).
func (j *Judge) Save(path string, metadata map[string]string) error {
	var out []safetensors.Tensor
	names, ts := j.Tensors()
	for i, name := range names {
		v, err := ts[i].Float32s()
		if err != nil {
			return err
		}
		out = append(out, safetensors.Tensor{Name: name, DType: safetensors.F16, Shape: ts[i].Shape(), F: v})
	}
	return safetensors.Write(path, out, metadata)
}

// Name implements Extractor.
func (j *Judge) Name() string { return JudgeName }

// FeatureDim implements Extractor.
func (j *Judge) FeatureDim() int { return JudgeFeatureDim }

// NumClasses implements Extractor.
func (j *Judge) NumClasses() int { return 10 }

// Accepts implements Extractor: 1×28×28 only.
func (j *Judge) Accepts(c, h, w int) error {
	if c != 1 || h != 28 || w != 28 {
		return fmt.Errorf("the Fashion-MNIST judge takes 1×28×28 images, not %d×%d×%d", c, h, w)
	}
	return nil
}

// Extract implements Extractor, 256 images at a time.
func (j *Judge) Extract(images []float32, n, c, h, w int) (feats, probs []float32, err error) {
	if err := checkImages(images, n, c, h, w); err != nil {
		return nil, nil, err
	}
	if err := j.Accepts(c, h, w); err != nil {
		return nil, nil, err
	}
	err = tensor.Catch(func() {
		const chunk = 256
		per := c * h * w
		for s := 0; s < n; s += chunk {
			m := min(chunk, n-s)
			x := tensor.FromFloat32(j.dev, images[s*per:(s+m)*per], m, c, h, w)
			f, logits := j.Forward(x, 0, 0)
			feats = append(feats, f.MustFloat32s()...)
			probs = append(probs, tensor.Softmax(logits).MustFloat32s()...)
		}
	})
	return feats, probs, err
}
