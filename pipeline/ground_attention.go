package pipeline

import (
	"fmt"
	"strings"

	"github.com/godiffuse/godiffuse/data"
	"github.com/godiffuse/godiffuse/tensor"
)

// ---------------------------------------------------------------------------
// Grounding the cross-attention (ddpm.TrainConfig.GroundAttention): an
// auxiliary loss on the shapes data after TokenCompose (Wang et al., 2024),
// whose scenes give each object's mask for free. For every word that
// describes an object ("small", "red", "circle" of "a small red circle to
// the left of …", and "to the left of" too, which says where that object
// is), the share of its cross-attention that falls inside that object's
// mask, f, should be 1: the loss is (1 − f)², averaged over those words,
// the batch and every transformer block's cross-attention (heads averaged
// first), at each block's resolution. Each object's words then read where
// that object is drawn, and, since the queries know their place
// (_godiffuse_attention_coordinates) while the keys come from the text, a
// relation's words, which under the causal mask have read the first object
// and nothing after it, pull that object to their side. With the causal
// encoder it drew pairs, unseen combinations and relations far better than
// anything before (bench/RESULTS.md, 2026-12-05 afternoon and evening);
// with a bidirectional one, whose object words have read the whole
// caption, it broke unseen combinations (2026-12-05 day, late morning).
// ---------------------------------------------------------------------------

// observedMap is one cross-attention's probabilities (B, heads, H·W, L) in
// a training forward, with its image size.
type observedMap struct {
	probs *tensor.Tensor
	h, w  int
}

// captionWordOwners says, for each word of a caption of the shapes
// templates, which of its scene's objects it describes, as a bit set over
// sc.Objects (0: a word of no object: articles, numbers, "and"). A
// position caption's relation belongs to its first object: "to the left
// of" says where that object is. nil when the caption and the scene do not
// fit together.
func captionWordOwners(caption string, sc data.ShapeScene) []uint8 {
	words := strings.Fields(caption)
	owners := make([]uint8, len(words))
	n := len(sc.Objects)
	if n == 0 || n > 8 || len(words) < 2 {
		return nil
	}
	mark := func(from, to int, set uint8) {
		for w := from; w < to && w < len(words); w++ {
			owners[w] = set
		}
	}
	switch sc.Kind {
	case "single": // "a [size] colour shape"
		mark(1, len(words), 1)
	case "counting": // "two colour shapes": every object
		mark(1, len(words), uint8(1<<n-1))
	case "two", "position": // "a … and a …", "a … RELATION a …"
		if n != 2 {
			return nil
		}
		sep := " and "
		if sc.Kind == "position" {
			q, err := data.ParseShapeCaption(caption)
			if err != nil || q.Relation == "" {
				return nil
			}
			sep = " " + q.Relation + " "
		}
		before, _, ok := strings.Cut(caption, sep)
		if !ok {
			return nil
		}
		first, sepWords := len(strings.Fields(before)), len(strings.Fields(sep))
		end := first // the first object's words, and in a position caption its relation
		if sc.Kind == "position" {
			end += sepWords
		}
		mark(1, end, 1)
		mark(first+sepWords+1, len(words), 2) // past the separator and the second "a"
	default:
		return nil
	}
	return owners
}

// tokenOwners is captionWordOwners for the L tokens of the caption as the
// text encoder sees it (the start token at 0): a word's owners go to every
// token of it.
func (tr *Trainer) tokenOwners(caption string, sc data.ShapeScene, L int) []uint8 {
	words := strings.Fields(caption)
	owners := captionWordOwners(caption, sc)
	if owners == nil {
		return nil
	}
	out := make([]uint8, L)
	start := 1
	for w := range words {
		end := 1 + len(tr.Tokenizer.Encode(strings.Join(words[:w+1], " ")))
		for t := start; t < end && t < L; t++ {
			out[t] = owners[w]
		}
		start = end
	}
	return out
}

// attentionGroundLoss is the loss of a batch's observed cross-attentions
// (nil when no caption of the batch describes an object: all dropped).
func (tr *Trainer) attentionGroundLoss(maps []observedMap, captions []string, picked []int) (*tensor.Tensor, error) {
	if len(maps) == 0 {
		return nil, nil
	}
	B, L := maps[0].probs.Dim(0), maps[0].probs.Dim(3)
	owners := make([][]uint8, B)
	scenes := make([]data.ShapeScene, B)
	words := 0
	for b, i := range picked {
		if captions[b] == "" {
			continue
		}
		scenes[b] = tr.Data.(sceneSource).Scene(i)
		owners[b] = tr.tokenOwners(captions[b], scenes[b], L)
		for _, o := range owners[b] {
			if o != 0 {
				words++
			}
		}
	}
	if words == 0 {
		return nil, nil
	}
	var loss *tensor.Tensor
	err := tensor.Catch(func() {
		dev := maps[0].probs.Device()
		selected := make([]float32, B*L) // 1 on the tokens of an object's words
		for b, own := range owners {
			for t, o := range own {
				if o != 0 {
					selected[b*L+t] = 1
				}
			}
		}
		sel := tensor.FromFloat32(dev, selected, B, L)
		masks := map[[2]int][]float32{} // by image size: the down and up blocks share theirs
		for _, m := range maps {
			size := [2]int{m.h, m.w}
			if masks[size] == nil {
				masks[size] = attentionMasks(owners, scenes, m.h, m.w, L)
			}
			inside := tensor.FromFloat32(dev, masks[size], B, m.h*m.w, L)
			a := tensor.MeanAxis(m.probs, 1, false) // (B, H·W, L): the heads averaged
			share := tensor.Div(tensor.SumAxis(tensor.Mul(a, inside), 1, false), tensor.SumAxis(a, 1, false))
			miss := tensor.Sum(tensor.Mul(sel, tensor.Square(tensor.Affine(share, -1, 1))))
			if loss == nil {
				loss = miss
			} else {
				loss = tensor.Add(loss, miss)
			}
		}
		loss = tensor.Scale(loss, float32(tr.Config.GroundAttention/float64(words*len(maps))))
	})
	if err != nil {
		return nil, fmt.Errorf("attention grounding loss: %w", err)
	}
	return loss, nil
}

// attentionMasks is (B, H·W, L): 1 where token t of caption b belongs to
// an object's words and pixel p of the H×W image touches one of those
// objects. A map that is not square is left all zero (the shapes data are
// square, and so are its U-Nets' maps).
func attentionMasks(owners [][]uint8, scenes []data.ShapeScene, h, w, L int) []float32 {
	out := make([]float32, len(owners)*h*w*L)
	if h != w {
		return out
	}
	for b, own := range owners {
		if own == nil {
			continue
		}
		cover := make([][]float32, len(scenes[b].Objects))
		for k, o := range scenes[b].Objects {
			cover[k] = o.Coverage(h)
		}
		for t, set := range own {
			if set == 0 {
				continue
			}
			for p := range h * w {
				for k := range cover {
					if set&(1<<k) != 0 && cover[k][p] > 0 {
						out[(b*h*w+p)*L+t] = 1
						break
					}
				}
			}
		}
	}
	return out
}
