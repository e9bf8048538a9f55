package features

import (
	_ "embed"
	"fmt"
	"math/rand/v2"
	"slices"

	"github.com/godiffuse/godiffuse/kernels"
	"github.com/godiffuse/godiffuse/nn"
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
	Convs    [4]*nn.Conv2d
	Norms    [4]*nn.GroupNorm
	FC1, FC2 *nn.Linear
	dev      tensor.Device
}

// NewJudge initialises an untrained judge on dev (nil: the CPU).
func NewJudge(dev tensor.Device, seed uint64) *Judge {
	if dev == nil {
		dev = kernels.CPU()
	}
	r := rand.New(rand.NewPCG(seed, 0x6a75646765))
	j := &Judge{dev: dev}
	chans := [5]int{1, 32, 32, 64, 64}
	for i := range 4 {
		j.Convs[i] = nn.NewConv2d(dev, r, chans[i], chans[i+1], 3, 1+i%2, tensor.PadAll(1))
		j.Norms[i] = nn.NewGroupNorm(dev, 8, chans[i+1], 1e-5)
	}
	j.FC1 = nn.NewLinear(dev, r, 64*7*7, JudgeFeatureDim, true)
	j.FC2 = nn.NewLinear(dev, r, JudgeFeatureDim, 10, true)
	return j
}

// Params lists the parameters under their state-dict names.
func (j *Judge) Params() []nn.Param {
	var ps []nn.Param
	for i := range 4 {
		ps = append(ps, nn.ParamsOf(
			fmt.Sprintf("conv%d.weight", i+1), j.Convs[i].Weight, fmt.Sprintf("conv%d.bias", i+1), j.Convs[i].Bias,
			fmt.Sprintf("norm%d.weight", i+1), j.Norms[i].Weight, fmt.Sprintf("norm%d.bias", i+1), j.Norms[i].Bias)...)
	}
	return append(ps, nn.ParamsOf("fc1.weight", j.FC1.Weight, "fc1.bias", j.FC1.Bias,
		"fc2.weight", j.FC2.Weight, "fc2.bias", j.FC2.Bias)...)
}

// Forward maps x (N, 1, 28, 28) in [-1, 1] to the features (N, 128) and the
// logits (N, 10). dropout (training only) applies to the features before fc2.
func (j *Judge) Forward(x *tensor.Tensor, dropout float32, seed uint64) (feats, logits *tensor.Tensor) {
	h := x
	for i := range 4 {
		h = tensor.ReLU(j.Norms[i].Forward(j.Convs[i].Forward(h)))
	}
	feats = tensor.ReLU(j.FC1.Forward(h.Reshape(h.Dim(0), -1)))
	return feats, j.FC2.Forward(tensor.Dropout(feats, dropout, seed))
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
	ps := j.Params()
	if len(st.Tensors) != len(ps) {
		return fmt.Errorf("%s: %d tensors, the judge has %d parameters", st.Path, len(st.Tensors), len(ps))
	}
	for _, p := range ps {
		v, shape, err := st.Float32(p.Name)
		if err != nil {
			return err
		}
		if !slices.Equal(shape, p.T.Shape()) {
			return fmt.Errorf("%s: tensor %q has shape %v, want %v", st.Path, p.Name, shape, p.T.Shape())
		}
		p.T.CopyFrom(tensor.FromFloat32(j.dev, v, shape...))
		p.T.SetRequiresGrad(false)
	}
	return nil
}

// Save writes the weights as F16 (they were checked to lose no accuracy;
// see cmd/trainjudge).
func (j *Judge) Save(path string, metadata map[string]string) error {
	var ts []safetensors.Tensor
	for _, p := range j.Params() {
		v, err := p.T.Float32s()
		if err != nil {
			return err
		}
		ts = append(ts, safetensors.Tensor{Name: p.Name, DType: safetensors.F16, Shape: p.T.Shape(), F: v})
	}
	return safetensors.Write(path, ts, metadata)
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
