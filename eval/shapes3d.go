package eval

import (
	_ "embed"
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/godiffuse/godiffuse/data"
	"github.com/godiffuse/godiffuse/mesh"
	"github.com/godiffuse/godiffuse/nn"
	"github.com/godiffuse/godiffuse/safetensors"
	"github.com/godiffuse/godiffuse/tensor"
)

// ---------------------------------------------------------------------------
// Judging generated 3-D shapes: Shape3DJudge, a small 3-D CNN trained here
// on data.Shapes3D (cmd/trainjudge -shapes3d; weights embedded), reads a
// 32³ TSDF and names its solid; JudgeVolumes scores samples by class
// accuracy and by how many mesh into one watertight connected piece.
//
//	conv 3×3×3 stride 2 (1→32) → GroupNorm → ReLU       16³
//	conv 3×3×3 stride 2 (32→64) → GroupNorm → ReLU      8³
//	conv 3×3×3 stride 2 (64→128) → GroupNorm → ReLU     4³
//	conv 3×3×3 stride 1 (128→128) → GroupNorm → ReLU    4³
//	mean over the voxels → linear 128→7
// ---------------------------------------------------------------------------

//go:embed weights/shapes3d-judge-v1.safetensors
var shape3DJudgeWeights []byte

// Shape3DJudge classifies 32³ volumes into data.Shape3DClasses.
type Shape3DJudge struct {
	Convs [4]*nn.Conv3d
	Norms [4]*nn.GroupNorm
	FC    *nn.Linear
	dev   tensor.Device
}

// NewShape3DJudge initialises an untrained judge on dev.
func NewShape3DJudge(dev tensor.Device, seed uint64) *Shape3DJudge {
	r := rand.New(rand.NewPCG(seed, 0x3d1d9e))
	j := &Shape3DJudge{dev: dev}
	chans := [5]int{1, 32, 64, 128, 128}
	for i := range 4 {
		stride := 2
		if i == 3 {
			stride = 1
		}
		j.Convs[i] = nn.NewConv3d(dev, r, chans[i], chans[i+1], 3, stride, 1)
		j.Norms[i] = nn.NewGroupNorm(dev, 8, chans[i+1], 1e-5)
	}
	j.FC = nn.NewLinear(dev, r, chans[4], len(data.Shape3DClasses), true)
	return j
}

// Params lists the parameters under their state-dict names.
func (j *Shape3DJudge) Params() []nn.Param {
	var ps []nn.Param
	for i := range 4 {
		ps = append(ps, nn.ParamsOf(
			fmt.Sprintf("conv%d.weight", i+1), j.Convs[i].Weight, fmt.Sprintf("conv%d.bias", i+1), j.Convs[i].Bias,
			fmt.Sprintf("norm%d.weight", i+1), j.Norms[i].Weight, fmt.Sprintf("norm%d.bias", i+1), j.Norms[i].Bias)...)
	}
	return append(ps, nn.ParamsOf("fc.weight", j.FC.Weight, "fc.bias", j.FC.Bias)...)
}

// Forward maps volumes x (N, 1, 32, 32, 32) to logits (N, 7).
func (j *Shape3DJudge) Forward(x *tensor.Tensor) *tensor.Tensor {
	h := x
	for i := range 4 {
		h = tensor.ReLU(j.Norms[i].Forward(j.Convs[i].Forward(h)))
	}
	h = tensor.MeanAxis(h.Reshape(h.Dim(0), h.Dim(1), -1), 2, false)
	return j.FC.Forward(h)
}

// LoadShape3DJudge returns the trained judge with its embedded weights.
func LoadShape3DJudge(dev tensor.Device) (*Shape3DJudge, error) {
	st, err := safetensors.Parse("embedded shapes3d judge", shape3DJudgeWeights)
	if err != nil {
		return nil, err
	}
	j := NewShape3DJudge(dev, 0)
	if err := nn.LoadParams(j.Params(), st, nn.LoadOptions{}); err != nil {
		return nil, err
	}
	nn.NoGrad(j.Params())
	return j, nil
}

// Save writes the weights (float32) with metadata.
func (j *Shape3DJudge) Save(path string, metadata map[string]string) error {
	sd, err := nn.StateDict(j.Params())
	if err != nil {
		return err
	}
	return safetensors.Write(path, sd, metadata)
}

// Classify returns each volume's most likely class and its probability;
// vols are 32³ TSDFs (z slowest).
func (j *Shape3DJudge) Classify(vols [][]float32) (classes []int, probs []float64, err error) {
	const side = data.Shape3DSize
	const chunk = 32
	for start := 0; start < len(vols); start += chunk {
		n := min(chunk, len(vols)-start)
		flat := make([]float32, 0, n*side*side*side)
		for _, v := range vols[start : start+n] {
			if len(v) != side*side*side {
				return nil, nil, fmt.Errorf("eval: a volume of %d values, want %d³", len(v), side)
			}
			flat = append(flat, v...)
		}
		var p []float32
		err = tensor.Catch(func() {
			p = tensor.Softmax(j.Forward(tensor.FromFloat32(j.dev, flat, n, 1, side, side, side))).MustFloat32s()
		})
		if err != nil {
			return nil, nil, err
		}
		k := len(data.Shape3DClasses)
		for i := range n {
			row := p[i*k : (i+1)*k]
			best := 0
			for c := range row {
				if row[c] > row[best] {
					best = c
				}
			}
			classes = append(classes, best)
			probs = append(probs, float64(row[best]))
		}
	}
	return classes, probs, nil
}

// TrainShape3DJudge trains a judge on fresh data.Shapes3D volumes (a new
// draw every step, so it never sees a volume twice; half of each batch with
// Gaussian noise of σ 0.1 added) with AdamW and a cosine decay after a short
// warm-up, logging through report (may be nil).
func TrainShape3DJudge(dev tensor.Device, steps, batch int, lr float64, seed uint64, report func(step int, loss float64)) (*Shape3DJudge, error) {
	j := NewShape3DJudge(dev, seed)
	ds, err := data.Shapes3D(steps*batch, seed+100, "train")
	if err != nil {
		return nil, err
	}
	opt := nn.NewAdamW(j.Params(), nn.AdamConfig{LR: lr, WeightDecay: 1e-4})
	const side = data.Shape3DSize
	k := len(data.Shape3DClasses)
	x := make([]float32, batch*side*side*side)
	noise := rand.New(rand.NewPCG(seed, 0x401e))
	for step := range steps {
		onehot := make([]float32, batch*k)
		for b := range batch {
			v := x[b*side*side*side : (b+1)*side*side*side]
			l := ds.Image(step*batch+b, v)
			onehot[b*k+l] = 1
			if b%2 == 1 { // half the batch with mild noise, as samples carry
				for i := range v {
					v[i] += float32(0.1 * noise.NormFloat64())
				}
			}
		}
		warm := 50
		rate := lr * 0.5 * (1 + math.Cos(math.Pi*float64(step)/float64(steps)))
		if step < warm {
			rate = lr * float64(step+1) / float64(warm)
		}
		opt.SetLR(rate)
		var loss float32
		err := tensor.Catch(func() {
			logits := j.Forward(tensor.FromFloat32(dev, x, batch, 1, side, side, side))
			logp := tensor.Log(tensor.Clamp(tensor.Softmax(logits), 1e-30, 1))
			l := tensor.Scale(tensor.Sum(tensor.Mul(logp, tensor.FromFloat32(dev, onehot, batch, k))), -1/float32(batch))
			loss = l.MustFloat32s()[0]
			opt.ZeroGrad()
			l.Backward()
		})
		if err != nil {
			return nil, err
		}
		if err := opt.Step(); err != nil {
			return nil, err
		}
		if report != nil {
			report(step+1, float64(loss))
		}
	}
	nn.NoGrad(j.Params())
	return j, nil
}

// VolumeScores are JudgeVolumes's results.
type VolumeScores struct {
	N          int
	Accuracy   float64   // the judge names the intended class
	PerClass   []float64 // accuracy per intended class (NaN without samples)
	OnePiece   float64   // fraction that mesh into one watertight connected component
	Confusion  [][]int   // [intended][judged]
	Components []int     // each volume's component count
}

// JudgeVolumes classifies vols (intended classes in want) and meshes each
// at level 0.
func JudgeVolumes(j *Shape3DJudge, vols [][]float32, want []int) (VolumeScores, error) {
	k := len(data.Shape3DClasses)
	s := VolumeScores{N: len(vols), Confusion: make([][]int, k), PerClass: make([]float64, k)}
	for i := range s.Confusion {
		s.Confusion[i] = make([]int, k)
	}
	got, _, err := j.Classify(vols)
	if err != nil {
		return s, err
	}
	const side = data.Shape3DSize
	right, one := 0, 0
	counts := make([]int, k)
	for i, v := range vols {
		s.Confusion[want[i]][got[i]]++
		counts[want[i]]++
		if got[i] == want[i] {
			right++
		}
		m, err := mesh.Extract(v, side, side, side, 0)
		if err != nil {
			return s, err
		}
		st := mesh.Measure(m)
		s.Components = append(s.Components, st.Components)
		if st.Watertight() && st.Components == 1 {
			one++
		}
	}
	for c := range k {
		s.PerClass[c] = math.NaN()
		if counts[c] > 0 {
			s.PerClass[c] = float64(s.Confusion[c][c]) / float64(counts[c])
		}
	}
	if n := len(vols); n > 0 {
		s.Accuracy, s.OnePiece = float64(right)/float64(n), float64(one)/float64(n)
	}
	return s, nil
}
