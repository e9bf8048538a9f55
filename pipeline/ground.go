package pipeline

import (
	"fmt"
	"math/rand/v2"
	"strings"

	"github.com/godiffuse/godiffuse/data"
	"github.com/godiffuse/godiffuse/nn"
	"github.com/godiffuse/godiffuse/tensor"
)

// ---------------------------------------------------------------------------
// Grounding the text encoder's words (ddpm.TrainConfig.GroundText): an
// auxiliary loss on the shapes data. A linear head reads, from the final
// state of each word of an object's phrase in a position caption ("a red
// circle" and "a blue square" in "a red circle to the left of a blue
// square"), where that object lies in the picture (its centre, x and y in
// [−1, 1]). The place of one object is random, but its mean over the scenes
// of a caption follows from the caption (left of, above, …), so what the
// head can learn is a function of the text; it asks the encoder to keep
// each object's side in its own words' states, where the U-Net's
// cross-attention reads them. Trained through the U-Net alone, the
// encoder had read "to the left of" and "to the right of" as one
// (bench/RESULTS.md, 2026-12-04). A causal encoder cannot tell the first
// object's words a relation that comes after them: pair it with a
// bidirectional one (_godiffuse_bidirectional). The head trains with the
// models and is saved in the training state, not in the pipeline folder.
// ---------------------------------------------------------------------------

// newGroundHead is the head for a text encoder of width D.
func newGroundHead(dev tensor.Device, D int, seed uint64) *nn.Linear {
	return nn.NewLinear(dev, rand.New(rand.NewPCG(seed, 0x960d)), D, 2, true)
}

// groundTargets gives, for a batch of B captions of L tokens, each token's
// target place (B·L·2 values) and a 0/1 mask over the same values: 1 on
// the words of both objects' phrases of the position captions (scenes[b]
// is caption b's scene; a dropped caption is ""), 0 elsewhere. n counts
// the masked tokens.
func (tr *Trainer) groundTargets(captions []string, scenes []data.ShapeScene, L int) (target, mask []float32, n int) {
	target, mask = make([]float32, len(captions)*L*2), make([]float32, len(captions)*L*2)
	for b, caption := range captions {
		sc := scenes[b]
		if caption == "" || sc.Kind != "position" || len(sc.Objects) != 2 {
			continue
		}
		spans, ok := tr.objectSpans(caption)
		if !ok {
			continue
		}
		for k, span := range spans {
			o := sc.Objects[k]
			x, y := float32(o.X/(data.ShapesSize/2)-1), float32(o.Y/(data.ShapesSize/2)-1)
			for t := span[0]; t < span[1] && t < L; t++ {
				i := (b*L + t) * 2
				target[i], target[i+1] = x, y
				mask[i], mask[i+1] = 1, 1
				n++
			}
		}
	}
	return target, mask, n
}

// objectSpans finds the tokens of the two objects' phrases of a position
// caption: [start, end) for the object before the relation and the one
// after it, counting the start token at 0. false if no relation is found.
func (tr *Trainer) objectSpans(caption string) ([2][2]int, bool) {
	for _, rel := range data.ShapeRelations {
		before, after, ok := strings.Cut(caption, " "+rel+" ")
		if !ok {
			continue
		}
		first := len(tr.Tokenizer.Encode(before))
		relEnd := len(tr.Tokenizer.Encode(before + " " + rel))
		second := len(tr.Tokenizer.Encode(after))
		return [2][2]int{{1, 1 + first}, {1 + relEnd, 1 + relEnd + second}}, true
	}
	return [2][2]int{}, false
}

// groundLoss is the auxiliary loss of a batch of the data's scenes picked
// (nil when no caption of it is a position one): the head's squared error
// on the masked tokens, averaged over them and weighed by GroundText.
func (tr *Trainer) groundLoss(hidden *tensor.Tensor, captions []string, picked []int) (*tensor.Tensor, error) {
	B, L := hidden.Dim(0), hidden.Dim(1)
	scenes := make([]data.ShapeScene, B)
	for b, i := range picked {
		scenes[b] = tr.Data.(sceneSource).Scene(i)
	}
	target, mask, n := tr.groundTargets(captions, scenes, L)
	if n == 0 {
		return nil, nil
	}
	var loss *tensor.Tensor
	err := tensor.Catch(func() {
		dev := hidden.Device()
		t := tensor.FromFloat32(dev, target, B, L, 2)
		m := tensor.FromFloat32(dev, mask, B, L, 2)
		diff := tensor.Mul(m, tensor.Sub(tr.Ground.Forward(hidden), t))
		loss = tensor.Scale(tensor.Sum(tensor.Square(diff)), float32(tr.Config.GroundText/float64(n)))
	})
	if err != nil {
		return nil, fmt.Errorf("grounding loss: %w", err)
	}
	return loss, nil
}
