// Command textprobe asks a trained shapes pipeline's text encoder what it
// tells apart in position captions: the mean cosine similarity of the pooled
// state, and of all token states, between "A rel B" and the caption of the
// same picture ("B inverse-rel A"), of the mirrored picture ("B rel A", "A
// inverse-rel B"), of the other axis, and of other objects; and of the first
// object's own tokens ("a red circle" in both captions: the same text, whose
// states a causal encoder computes before it reaches the relation):
//
//	go run ./bench/internal/textprobe -model out/checkpoint
package main

import (
	"flag"
	"fmt"
	"log"
	"math"

	"github.com/godiffuse/godiffuse/data"
	"github.com/godiffuse/godiffuse/device"
	"github.com/godiffuse/godiffuse/pipeline"
)

func main() {
	model := flag.String("model", "out/checkpoint", "pipeline folder")
	flag.Parse()
	dev, _, err := device.Select("cpu")
	if err != nil {
		log.Fatal(err)
	}
	p, err := pipeline.Load(dev, *model)
	if err != nil {
		log.Fatal(err)
	}
	enc := func(caption string) (pooled, all []float32) {
		ids, _ := p.Tokenizer.Tokenize(caption)
		out, err := p.TextEncoder.Forward(ids, 1)
		if err != nil {
			log.Fatal(err)
		}
		pooled, err = out.Pooled.Float32s()
		if err != nil {
			log.Fatal(err)
		}
		all, err = out.LastHidden.Float32s()
		if err != nil {
			log.Fatal(err)
		}
		return pooled, all
	}
	cos := func(a, b []float32) float64 {
		var ab, aa, bb float64
		for i := range a {
			ab += float64(a[i]) * float64(b[i])
			aa += float64(a[i]) * float64(a[i])
			bb += float64(b[i]) * float64(b[i])
		}
		return ab / math.Sqrt(aa*bb)
	}
	// lead is the number of leading token states of "A rel B" that encode
	// "a <colour> <shape>" with the start token.
	lead := func(a data.ShapeSpec) int {
		ids, _ := p.Tokenizer.Tokenize(data.ShapeQuery{Kind: "single", Objects: []data.ShapeSpec{a}}.Caption())
		n := 0
		for n < len(ids) && ids[n] != int64(p.TextEncoder.Config.EosTokenID) {
			n++
		}
		return n
	}
	width := p.TextEncoder.Config.HiddenSize
	var sums [5][3]float64
	crossAxis := map[string]string{"to the left of": "above", "to the right of": "below", "above": "to the left of", "below": "to the right of"}
	n := 0
	objs := []data.ShapeSpec{}
	for _, s := range data.ShapeNames {
		for _, c := range data.ShapeColours {
			if !data.IsHeldOutShape(data.ShapeSpec{Shape: s, Colour: c}) {
				objs = append(objs, data.ShapeSpec{Shape: s, Colour: c})
			}
		}
	}
	for i, a := range objs {
		b := objs[(i*7+3)%len(objs)]
		if a == b {
			continue
		}
		for _, rel := range data.ShapeRelations {
			cap := func(x data.ShapeSpec, r string, y data.ShapeSpec) string {
				return data.ShapeQuery{Kind: "position", Relation: r, Objects: []data.ShapeSpec{x, y}}.Caption()
			}
			base, baseAll := enc(cap(a, rel, b))
			same, sameAll := enc(cap(b, data.OppositeRelation(rel), a))      // the same picture
			swap, swapAll := enc(cap(b, rel, a))                             // the mirrored picture
			other, otherAll := enc(cap(a, data.OppositeRelation(rel), b))    // the mirrored picture, objects in place
			cross, crossAll := enc(cap(a, crossAxis[rel], b))                // the other axis
			objects, objectsAll := enc(cap(b, rel, objs[(i*5+1)%len(objs)])) // other objects, same relation
			first := lead(a) * width
			for k, v := range [][2][]float32{{same, sameAll}, {swap, swapAll}, {other, otherAll}, {cross, crossAll}, {objects, objectsAll}} {
				sums[k][0] += cos(base, v[0])
				sums[k][1] += cos(baseAll, v[1])
				sums[k][2] += cos(baseAll[:first], v[1][:first])
			}
			n++
		}
	}
	for k, name := range []string{"same picture (B inverse-relation A)", "mirrored (B relation A)", "mirrored (A inverse-relation B)",
		"other axis (A crossed-relation B)", "other objects, same relation"} {
		fmt.Printf("%-40s pooled cos %.3f   all tokens cos %.3f   first object's tokens cos %.3f\n", name,
			sums[k][0]/float64(n), sums[k][1]/float64(n), sums[k][2]/float64(n))
	}
}
