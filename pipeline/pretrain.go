package pipeline

import (
	"fmt"
	"math"
	"math/rand/v2"
	"time"

	"github.com/godiffuse/godiffuse/data"
	"github.com/godiffuse/godiffuse/ddpm"
	"github.com/godiffuse/godiffuse/nn"
	"github.com/godiffuse/godiffuse/tensor"
)

// ---------------------------------------------------------------------------
// Contrastive pre-training of the text encoder (CLIP's objective, Radford
// et al. 2021) on the shapes scenes, before the U-Net trains against it
// frozen. Trained jointly through the U-Net's cross-attention alone, the
// encoder gave "A to the left of B" and "A to the right of B" pooled
// embeddings with cosine 0.999: nothing in the denoising loss separates
// the two words early enough (bench/RESULTS.md, 2026-12-04). Here every
// scene in a batch comes with a hard negative — the caption changed in what
// its kind is about (the opposite relation, the colours of two objects
// swapped, the other count; data.ShapeQuery.Contrast) and a scene drawn for
// it — so the encoder must tell those captions apart to pick the right
// picture.
//
// The image side is a small CNN that keeps the layout (four 3×3
// convolutions down to 4×4, flattened, no pooling), projected to the same
// width as the text encoder's pooled output; both are normalized and the
// logits are their cosines times a fixed scale.
// ---------------------------------------------------------------------------

// PretrainInfo is one pre-training step's figures.
type PretrainInfo struct {
	Step     int
	Loss     float32 // the symmetric cross-entropy
	Accuracy float32 // captions whose own picture scores highest in the batch
	HardWins float32 // captions that score their picture above their hard negative's
	// HardWinsByKind is HardWins per caption kind of the pair's scene
	// (single, two, counting, position), for the kinds in this batch; the
	// position pairs also under PositionMirrored or PositionOtherAxis, by
	// their negative's relation.
	HardWinsByKind map[string]float32
	Duration       time.Duration
}

// The keys of HardWinsByKind that split the position pairs by their
// negative: the opposite relation, or one of the other axis.
const (
	PositionMirrored  = "position, mirrored"
	PositionOtherAxis = "position, other axis"
)

// pretrainScale is the logits' scale (CLIP learns it from 1/0.07).
const pretrainScale = 1 / 0.07

// sceneSource is data that can hand out its scenes (data.Shapes).
type sceneSource interface {
	Scene(i int) data.ShapeScene
}

// imageEncoder is the image side of the contrastive pre-training.
type imageEncoder struct {
	convs []*nn.Conv2d
	proj  *nn.Linear
}

func newImageEncoder(dev tensor.Device, r *rand.Rand, size, embed int) *imageEncoder {
	e := &imageEncoder{}
	chans := []int{3, 32, 64, 128, 128}
	for i := range 4 {
		stride := 2
		if i == 0 {
			stride = 1
		}
		e.convs = append(e.convs, nn.NewConv2d(dev, r, chans[i], chans[i+1], 3, stride, tensor.PadAll(1)))
	}
	side := size / 8
	e.proj = nn.NewLinear(dev, r, 128*side*side, embed, true)
	return e
}

func (e *imageEncoder) forward(x *tensor.Tensor) *tensor.Tensor {
	for _, c := range e.convs {
		x = tensor.SiLU(c.Forward(x))
	}
	return e.proj.Forward(x.Reshape(x.Dim(0), -1))
}

func (e *imageEncoder) params() []nn.Param {
	var ps nn.ParamList
	for i, c := range e.convs {
		c.Collect(fmt.Sprintf("conv%d", i), &ps)
	}
	e.proj.Collect("proj", &ps)
	return ps
}

// normalizeRows divides each row of x (B, D) by its length.
func normalizeRows(x *tensor.Tensor) *tensor.Tensor {
	return tensor.Div(x, tensor.Sqrt(tensor.AddScalar(tensor.SumAxis(tensor.Square(x), 1, true), 1e-12)))
}

// PretrainText trains the text encoder contrastively for steps steps of
// pairs scenes and their hard negatives (2·pairs captions a batch), then
// copies it into the EMA encoder that the checkpoint saves. It needs shapes
// data; the encoder then stays frozen for the U-Net (TrainConfig.FreezeText)
// or trains on with it. Its draws come from their own generator, so the
// U-Net's training draws are those of a run without it. progress, if not
// nil, sees every step.
func (tr *Trainer) PretrainText(steps, pairs int, lr float64, progress func(PretrainInfo)) error {
	src, ok := tr.Data.(sceneSource)
	if !ok {
		return fmt.Errorf("text pre-training needs the shapes data (its scenes make the hard negatives)")
	}
	if steps < 1 || pairs < 2 {
		return fmt.Errorf("text pre-training: %d steps of %d pairs; want at least 1 and 2", steps, pairs)
	}
	dev := tr.UNet.Device
	c, h, w := tr.Data.Shape()
	n := c * h * w
	rng := rand.New(rand.NewPCG(tr.Config.Seed, 0xc11b))
	img := newImageEncoder(dev, rng, h, tr.Text.Config.HiddenSize)
	if tr.Config.FreezeText {
		// The frozen encoder's gradients are paused (NewTrainer): resume
		// them for this, pause them again after.
		for _, p := range tr.Text.Params() {
			p.T.ResumeGrad()
		}
		defer func() {
			for _, p := range tr.Text.Params() {
				p.T.PauseGrad()
			}
		}()
	}
	params := append(append([]nn.Param{}, tr.Text.Params()...), img.params()...)
	opt := nn.NewAdamW(params, nn.AdamConfig{LR: lr, WeightDecay: 0.01})
	B := 2 * pairs
	eye := make([]float32, B*B)
	for i := range B {
		eye[i*B+i] = 1
	}
	for step := range steps {
		start := time.Now()
		x := make([]float32, B*n)
		captions := make([]string, B)
		kinds, negKinds := make([]string, pairs), make([]string, pairs)
		for p := range pairs {
			sc := src.Scene(rng.IntN(tr.Data.Len()))
			kinds[p] = sc.Kind
			neg := sc
			if q, err := data.ParseShapeCaption(sc.Caption); err == nil {
				for range 8 {
					if cq, ok := q.Contrast(rng); ok {
						neg = data.SceneFor(cq, rng)
						negKinds[p] = positionNegative(q, cq)
						break
					}
				}
			}
			if neg.Caption == sc.Caption { // no negative to be had: another scene
				neg = src.Scene(rng.IntN(tr.Data.Len()))
			}
			for k, s := range []data.ShapeScene{sc, neg} {
				i := 2*p + k
				captions[i] = s.Caption
				for j, b := range s.Render() {
					x[i*n+j] = float32(b)/127.5 - 1
				}
			}
		}
		var ids []int64
		for _, cap := range captions {
			t, _ := tr.Tokenizer.Tokenize(cap)
			ids = append(ids, t...)
		}
		// Warm-up over the first 10 % of the steps, then constant.
		opt.SetLR(lr * min(1, float64(step+1)/math.Max(1, 0.1*float64(steps))))
		text, err := tr.Text.Forward(ids, B)
		if err != nil {
			return err
		}
		info := PretrainInfo{Step: step + 1}
		var logits []float32
		if err := tensor.Catch(func() {
			t := normalizeRows(text.Pooled)
			v := normalizeRows(img.forward(tensor.FromFloat32(dev, x, B, c, h, w)))
			l := tensor.Scale(tensor.MatMul(t, v.Transpose(0, 1)), pretrainScale) // (captions, pictures)
			mask := tensor.FromFloat32(dev, eye, B, B)
			ce := func(l *tensor.Tensor) *tensor.Tensor {
				return tensor.Scale(tensor.Mean(tensor.SumAxis(tensor.Mul(tensor.Log(tensor.Softmax(l)), mask), 1, false)), -1)
			}
			loss := tensor.Scale(tensor.Add(ce(l), ce(l.Transpose(0, 1))), 0.5)
			if info.Loss, err = loss.Item(); err != nil {
				return
			}
			if logits, err = l.Float32s(); err != nil {
				return
			}
			opt.ZeroGrad()
			loss.BackwardRelease()
		}); err != nil {
			return err
		}
		if err != nil {
			return err
		}
		if math.IsNaN(float64(info.Loss)) || math.IsInf(float64(info.Loss), 0) {
			return fmt.Errorf("text pre-training step %d: %w (%g)", step+1, ddpm.ErrNonFinite, info.Loss)
		}
		if err := opt.Step(); err != nil {
			return err
		}
		opt.ZeroGrad()
		var right, wins int
		kindWins, kindAll := map[string]int{}, map[string]int{}
		for i := range B {
			row := logits[i*B : (i+1)*B]
			best := 0
			for j, v := range row {
				if v > row[best] {
					best = j
				}
			}
			if best == i {
				right++
			}
			won := row[i] > row[i^1] // over the pair's other member
			if won {
				wins++
			}
			for _, k := range []string{kinds[i/2], negKinds[i/2]} {
				if k != "" {
					kindAll[k]++
					if won {
						kindWins[k]++
					}
				}
			}
		}
		info.Accuracy, info.HardWins = float32(right)/float32(B), float32(wins)/float32(B)
		info.HardWinsByKind = map[string]float32{}
		for k, n := range kindAll {
			info.HardWinsByKind[k] = float32(kindWins[k]) / float32(n)
		}
		info.Duration = time.Since(start)
		if progress != nil {
			progress(info)
		}
	}
	// The checkpoint saves the EMA encoder, and the U-Net trains against the
	// live one: both are now the pre-trained weights.
	return tensor.Catch(func() { ddpm.UpdateEMA(tr.TextEMA.Params(), tr.Text.Params(), 0) })
}

// positionNegative is PositionMirrored or PositionOtherAxis for a position
// caption q and its negative, else "".
func positionNegative(q, negative data.ShapeQuery) string {
	switch {
	case q.Kind != "position" || negative.Kind != "position":
		return ""
	case data.SameAxis(q.Relation, negative.Relation):
		return PositionMirrored
	}
	return PositionOtherAxis
}
