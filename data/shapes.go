package data

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
)

// Shapes with captions: seeded 32×32 RGB scenes of one to three flat
// objects (circle, square, triangle) in six well-separated colours and two
// sizes on a black background, each with a caption from one of four
// templates that the eval package's judge reads back:
//
//	single    "a small red circle", "a blue square"
//	two       "a red circle and a green square"
//	counting  "two yellow triangles", "three white circles"
//	position  "a blue square to the left of a red triangle" (right of, above, below)
//
// Objects never touch and relations are unambiguous (the offset along the
// relation's axis is at least twice the other). Every scene that holds a
// held-out combination (IsHeldOutShape: every green triangle) is left out
// of the training split, so composition can be tested on it.

// Shape vocabulary.
var (
	ShapeNames   = []string{"circle", "square", "triangle"}
	ShapeColours = []string{"red", "green", "blue", "yellow", "purple", "white"}
	ShapeSizes   = []string{"small", "large"}
	ShapeKinds   = []string{"single", "two", "counting", "position"}
	// ShapeRelations are the position captions' relations.
	ShapeRelations = []string{"to the left of", "to the right of", "above", "below"}
)

// ShapeRGB is each colour of ShapeColours as sRGB bytes.
var ShapeRGB = map[string][3]uint8{
	"red": {230, 40, 40}, "green": {40, 200, 70}, "blue": {50, 90, 240},
	"yellow": {240, 220, 40}, "purple": {170, 70, 220}, "white": {235, 235, 235},
}

// ShapeBackground is the background colour.
var ShapeBackground = [3]uint8{0, 0, 0}

// shapeSidePx is the side (or diameter) of the two sizes.
var shapeSidePx = map[string]float64{"small": 10, "large": 16}

// ShapesSize is the side of a scene in pixels.
const ShapesSize = 32

// ShapeObject is one object of a scene.
type ShapeObject struct {
	Shape, Colour, Size string
	X, Y                float64 // the centre of its bounding box, pixels
}

// ShapeScene is one captioned image's content.
type ShapeScene struct {
	Kind    string
	Objects []ShapeObject
	Caption string
}

// IsHeldOutShape says whether an object is a combination kept out of the
// training split.
func IsHeldOutShape(o ShapeSpec) bool { return o.Colour == "green" && o.Shape == "triangle" }

// ShapeSpec is what a caption says of one object ("" Size: either).
type ShapeSpec struct{ Shape, Colour, Size string }

// ShapeQuery is a parsed caption.
type ShapeQuery struct {
	Kind     string
	Objects  []ShapeSpec // 1 (single, counting) or 2 (two, position)
	Count    int         // counting: 2 or 3
	Relation string      // position: one of ShapeRelations
}

// Caption writes the query as text.
func (q ShapeQuery) Caption() string {
	obj := func(s ShapeSpec) string {
		words := []string{"a"}
		if s.Size != "" {
			words = append(words, s.Size)
		}
		return strings.Join(append(words, s.Colour, s.Shape), " ")
	}
	switch q.Kind {
	case "two":
		return obj(q.Objects[0]) + " and " + obj(q.Objects[1])
	case "counting":
		return fmt.Sprintf("%s %s %ss", numberWords[q.Count], q.Objects[0].Colour, q.Objects[0].Shape)
	case "position":
		return obj(q.Objects[0]) + " " + q.Relation + " " + obj(q.Objects[1])
	}
	return obj(q.Objects[0])
}

var numberWords = map[int]string{2: "two", 3: "three"}

// OppositeRelation is the relation that swaps the objects' sides ("to the
// left of" ↔ "to the right of", "above" ↔ "below"); "" for anything else.
func OppositeRelation(rel string) string {
	return map[string]string{"to the left of": "to the right of", "to the right of": "to the left of",
		"above": "below", "below": "above"}[rel]
}

// SameAxis says whether two of ShapeRelations place the objects along the
// same axis (both horizontal or both vertical).
func SameAxis(a, b string) bool {
	vertical := func(rel string) bool { return rel == "above" || rel == "below" }
	return vertical(a) == vertical(b)
}

// Contrast returns a caption that differs from q in what its kind is about
// (a hard negative for contrastive training): position, the opposite
// relation half of the time, else one of the other axis (an encoder
// trained against mirrored negatives alone told left from right but not
// left from above: bench/RESULTS.md, 2026-12-04/05); two objects, their
// colours swapped (the attribute binding), or one colour changed where they share it; counting, the other count;
// single, another colour or shape. false when the result would hold a
// held-out combination (IsHeldOutShape): draw again or skip.
func (q ShapeQuery) Contrast(rng *rand.Rand) (ShapeQuery, bool) {
	c := ShapeQuery{Kind: q.Kind, Count: q.Count, Relation: q.Relation, Objects: slices.Clone(q.Objects)}
	other := func(list []string, not string) string {
		for {
			if v := list[rng.IntN(len(list))]; v != not {
				return v
			}
		}
	}
	switch q.Kind {
	case "position":
		c.Relation = OppositeRelation(q.Relation)
		if rng.IntN(2) == 0 {
			c.Relation = other(ShapeRelations, q.Relation)
			for SameAxis(c.Relation, q.Relation) {
				c.Relation = other(ShapeRelations, q.Relation)
			}
		}
	case "two":
		if a, b := c.Objects[0], c.Objects[1]; a.Colour != b.Colour && a.Shape != b.Shape {
			c.Objects[0].Colour, c.Objects[1].Colour = b.Colour, a.Colour
		} else {
			c.Objects[1].Colour = other(ShapeColours, b.Colour)
		}
	case "counting":
		c.Count = 5 - q.Count
	default:
		if rng.IntN(2) == 0 {
			c.Objects[0].Colour = other(ShapeColours, q.Objects[0].Colour)
		} else {
			c.Objects[0].Shape = other(ShapeNames, q.Objects[0].Shape)
		}
	}
	for _, o := range c.Objects {
		if IsHeldOutShape(o) {
			return c, false
		}
	}
	if c.Kind == "two" && c.Objects[0].Shape == c.Objects[1].Shape && c.Objects[0].Colour == c.Objects[1].Colour {
		return c, false
	}
	return c, true
}

// ParseShapeCaption reads a caption of the four templates.
func ParseShapeCaption(caption string) (ShapeQuery, error) {
	c := strings.ToLower(strings.TrimSpace(caption))
	bad := func() (ShapeQuery, error) {
		return ShapeQuery{}, fmt.Errorf("caption %q: not one of the shapes templates (e.g. \"a small red circle\", \"two blue squares\")", caption)
	}
	object := func(s string) (ShapeSpec, bool) {
		w := strings.Fields(s)
		if len(w) < 3 || w[0] != "a" {
			return ShapeSpec{}, false
		}
		w = w[1:]
		var spec ShapeSpec
		if len(w) == 3 {
			if !slices.Contains(ShapeSizes, w[0]) {
				return spec, false
			}
			spec.Size, w = w[0], w[1:]
		}
		if len(w) != 2 || !slices.Contains(ShapeColours, w[0]) || !slices.Contains(ShapeNames, w[1]) {
			return spec, false
		}
		spec.Colour, spec.Shape = w[0], w[1]
		return spec, true
	}
	for n, word := range numberWords {
		if rest, ok := strings.CutPrefix(c, word+" "); ok {
			w := strings.Fields(rest)
			if len(w) != 2 || !slices.Contains(ShapeColours, w[0]) || !strings.HasSuffix(w[1], "s") ||
				!slices.Contains(ShapeNames, strings.TrimSuffix(w[1], "s")) {
				return bad()
			}
			return ShapeQuery{Kind: "counting", Count: n, Objects: []ShapeSpec{{Colour: w[0], Shape: strings.TrimSuffix(w[1], "s")}}}, nil
		}
	}
	for _, rel := range ShapeRelations {
		if a, b, ok := strings.Cut(c, " "+rel+" "); ok {
			oa, ok1 := object(a)
			ob, ok2 := object(b)
			if !ok1 || !ok2 {
				return bad()
			}
			return ShapeQuery{Kind: "position", Relation: rel, Objects: []ShapeSpec{oa, ob}}, nil
		}
	}
	if a, b, ok := strings.Cut(c, " and "); ok {
		oa, ok1 := object(a)
		ob, ok2 := object(b)
		if !ok1 || !ok2 {
			return bad()
		}
		return ShapeQuery{Kind: "two", Objects: []ShapeSpec{oa, ob}}, nil
	}
	if o, ok := object(c); ok {
		return ShapeQuery{Kind: "single", Objects: []ShapeSpec{o}}, nil
	}
	return bad()
}

// Shape dataset splits.
const (
	ShapesTrain   = "train"   // scenes without a held-out combination
	ShapesHeldOut = "heldout" // scenes with one
	ShapesAll     = "all"
)

// ShapeMix weighs the kinds of caption, in the order of ShapeKinds; nil
// draws them alike.
type ShapeMix []float64

// ParseShapeMix reads KIND=W pairs ("position=3"): each named kind weighs
// W, every other kind 1.
func ParseShapeMix(pairs []string) (ShapeMix, error) {
	mix := ShapeMix{1, 1, 1, 1}
	for _, p := range pairs {
		kind, w, _ := strings.Cut(p, "=")
		k := slices.Index(ShapeKinds, kind)
		v, err := strconv.ParseFloat(w, 64)
		if k < 0 || err != nil || !(v >= 0 && v <= 1000) {
			return nil, fmt.Errorf("shapes mix %q: want KIND=WEIGHT, KIND one of %s and WEIGHT 0 … 1000", p, strings.Join(ShapeKinds, ", "))
		}
		mix[k] = v
	}
	if slices.Max(mix) == 0 {
		return nil, fmt.Errorf("shapes mix %s: every weight is 0", strings.Join(pairs, ","))
	}
	return mix, nil
}

// String says the mix as "; kinds weighed single 1, two 1, …" ("" for nil).
func (m ShapeMix) String() string {
	if m == nil {
		return ""
	}
	var parts []string
	for k, w := range m {
		parts = append(parts, fmt.Sprintf("%s %g", ShapeKinds[k], w))
	}
	return "; kinds weighed " + strings.Join(parts, ", ")
}

// draw picks a kind of caption.
func (m ShapeMix) draw(rng *rand.Rand) string {
	if m == nil {
		return ShapeKinds[rng.IntN(len(ShapeKinds))]
	}
	var total float64
	for _, w := range m {
		total += w
	}
	u := rng.Float64() * total
	for k, w := range m {
		if u < w {
			return ShapeKinds[k]
		}
		u -= w
	}
	return ShapeKinds[slices.IndexFunc(m, func(w float64) bool { return w > 0 })] // u rounded up to total
}

// NewShapeScene draws scene i of a seeded stream; split picks which scenes
// are kept (the i-th scene of a split is the i-th kept draw of its stream).
func NewShapeScene(seed uint64, i int, split string) ShapeScene {
	return newShapeScene(seed, i, split, nil)
}

func newShapeScene(seed uint64, i int, split string, mix ShapeMix) ShapeScene {
	rng := rand.New(rand.NewPCG(seed, uint64(i)*0x9e3779b97f4a7c15+1))
	for {
		sc := drawScene(rng, mix)
		held := slices.ContainsFunc(sc.Objects, func(o ShapeObject) bool { return IsHeldOutShape(ShapeSpec{o.Shape, o.Colour, o.Size}) })
		if split == ShapesAll || (split == ShapesHeldOut) == held {
			return sc
		}
	}
}

// SceneFor draws a scene that fits a caption (for the held-out list and
// for tests), from rng.
func SceneFor(q ShapeQuery, rng *rand.Rand) ShapeScene {
	for {
		sc, ok := placeQuery(q, rng)
		if ok {
			return sc
		}
	}
}

func drawScene(rng *rand.Rand, mix ShapeMix) ShapeScene {
	pick := func(list []string) string { return list[rng.IntN(len(list))] }
	spec := func(withSize bool) ShapeSpec {
		s := ShapeSpec{Shape: pick(ShapeNames), Colour: pick(ShapeColours)}
		if withSize {
			s.Size = pick(ShapeSizes)
		}
		return s
	}
	var q ShapeQuery
	switch kind := mix.draw(rng); kind {
	case "single":
		q = ShapeQuery{Kind: kind, Objects: []ShapeSpec{spec(rng.IntN(2) == 0)}}
	case "two", "position":
		a, b := spec(false), spec(false)
		for b.Shape == a.Shape && b.Colour == a.Colour {
			b = spec(false)
		}
		q = ShapeQuery{Kind: kind, Objects: []ShapeSpec{a, b}}
		if kind == "position" {
			q.Relation = pick(ShapeRelations)
		}
	case "counting":
		q = ShapeQuery{Kind: kind, Objects: []ShapeSpec{spec(false)}, Count: 2 + rng.IntN(2)}
	}
	return SceneFor(q, rng)
}

// placeQuery places the objects of q at random; false when a try fails.
func placeQuery(q ShapeQuery, rng *rand.Rand) (ShapeScene, bool) {
	sizeOf := func(s ShapeSpec) string {
		if s.Size != "" {
			return s.Size
		}
		return ShapeSizes[rng.IntN(len(ShapeSizes))]
	}
	var specs []ShapeSpec
	switch q.Kind {
	case "counting":
		for range q.Count {
			specs = append(specs, ShapeSpec{q.Objects[0].Shape, q.Objects[0].Colour, ""})
		}
	default:
		specs = q.Objects
	}
	sc := ShapeScene{Kind: q.Kind, Caption: q.Caption()}
	for _, s := range specs {
		size := sizeOf(s)
		if q.Kind == "counting" && len(specs) == 3 {
			size = "small" // three large ones rarely fit
		}
		half := shapeSidePx[size] / 2
		o := ShapeObject{Shape: s.Shape, Colour: s.Colour, Size: size,
			X: half + 1 + rng.Float64()*(ShapesSize-2*half-2), Y: half + 1 + rng.Float64()*(ShapesSize-2*half-2)}
		sc.Objects = append(sc.Objects, o)
	}
	// No two objects within 3 px of each other (their boxes, grown).
	for i, a := range sc.Objects {
		for _, b := range sc.Objects[:i] {
			gap := (shapeSidePx[a.Size]+shapeSidePx[b.Size])/2 + 3
			if math.Abs(a.X-b.X) < gap && math.Abs(a.Y-b.Y) < gap {
				return sc, false
			}
		}
	}
	if q.Kind == "position" {
		a, b := sc.Objects[0], sc.Objects[1]
		dx, dy := b.X-a.X, b.Y-a.Y // a relative to b
		var along, across float64
		switch q.Relation {
		case "to the left of":
			along, across = dx, dy
		case "to the right of":
			along, across = -dx, dy
		case "above":
			along, across = dy, dx
		case "below":
			along, across = -dy, dx
		}
		if along <= 0 || along < 2*math.Abs(across) {
			return sc, false
		}
	}
	return sc, true
}

// Render draws the scene as (3, 32, 32) bytes, each pixel the average of
// 4×4 samples (anti-aliased edges).
func (sc ShapeScene) Render() []byte {
	const n, sub = ShapesSize, 4
	out := make([]byte, 3*n*n)
	for y := range n {
		for x := range n {
			var acc [3]float64
			for sy := range sub {
				for sx := range sub {
					px, py := float64(x)+(float64(sx)+0.5)/sub, float64(y)+(float64(sy)+0.5)/sub
					c := ShapeBackground
					for _, o := range sc.Objects {
						if o.covers(px, py) {
							c = ShapeRGB[o.Colour]
						}
					}
					for k := range 3 {
						acc[k] += float64(c[k])
					}
				}
			}
			for k := range 3 {
				out[(k*n+y)*n+x] = byte(acc[k]/(sub*sub) + 0.5)
			}
		}
	}
	return out
}

// Coverage is the share of each cell of a side×side grid laid over the
// picture that the object covers (row-major, side² values in [0, 1];
// at least 8×8 samples a cell, at most a quarter pixel apart): the
// object's mask at the resolution of a layer of a network that sees the
// picture at side×side.
func (o ShapeObject) Coverage(side int) []float32 {
	cell := float64(ShapesSize) / float64(side)
	sub := max(8, int(math.Ceil(4*cell)))
	out := make([]float32, side*side)
	for cy := range side {
		for cx := range side {
			in := 0
			for sy := range sub {
				for sx := range sub {
					if o.covers((float64(cx)+(float64(sx)+0.5)/float64(sub))*cell, (float64(cy)+(float64(sy)+0.5)/float64(sub))*cell) {
						in++
					}
				}
			}
			out[cy*side+cx] = float32(in) / float32(sub*sub)
		}
	}
	return out
}

// covers says whether the point (px, py) lies inside the object.
func (o ShapeObject) covers(px, py float64) bool {
	return ShapeCovers(o.Shape, shapeSidePx[o.Size], px-o.X, py-o.Y)
}

// ShapeCovers says whether a point (dx, dy) from the centre of a shape's
// box, whose side (or diameter) is s, lies inside the shape as the dataset
// draws it.
func ShapeCovers(shape string, s, dx, dy float64) bool {
	switch shape {
	case "circle":
		return dx*dx+dy*dy <= s*s/4
	case "square":
		return math.Abs(dx) <= s/2 && math.Abs(dy) <= s/2
	case "triangle": // apex up, base at the bottom of the box
		if dy < -s/2 || dy > s/2 {
			return false
		}
		half := (dy + s/2) / 2 // half-width grows from 0 at the apex to s/2 at the base
		return math.Abs(dx) <= half
	}
	return false
}

// Captioned is a dataset whose images have captions.
type Captioned interface {
	Dataset
	Caption(i int) string
}

// shapes is the generated dataset: scenes are drawn on demand.
type shapes struct {
	n     int
	seed  uint64
	split string
	mix   ShapeMix
}

// Shapes returns n captioned scenes of a split, drawn from seed.
func Shapes(n int, seed uint64, split string) (Captioned, error) {
	return ShapesMixed(n, seed, split, nil)
}

// ShapesMixed is Shapes with the kinds of caption weighed by mix.
func ShapesMixed(n int, seed uint64, split string, mix ShapeMix) (Captioned, error) {
	if n < 1 || n > 1<<30 {
		return nil, fmt.Errorf("shapes: n %d: want 1 … 2^30", n)
	}
	if split != ShapesTrain && split != ShapesHeldOut && split != ShapesAll {
		return nil, fmt.Errorf("shapes: split %q: want %s, %s or %s", split, ShapesTrain, ShapesHeldOut, ShapesAll)
	}
	if mix != nil && len(mix) != len(ShapeKinds) {
		return nil, fmt.Errorf("shapes: mix of %d weights: want one per kind (%s)", len(mix), strings.Join(ShapeKinds, ", "))
	}
	return &shapes{n: n, seed: seed, split: split, mix: mix}, nil
}

func (s *shapes) Len() int               { return s.n }
func (s *shapes) Shape() (int, int, int) { return 3, ShapesSize, ShapesSize }
func (s *shapes) Classes() []string      { return nil }
func (s *shapes) Scene(i int) ShapeScene { return newShapeScene(s.seed, i, s.split, s.mix) }
func (s *shapes) Caption(i int) string   { return s.Scene(i).Caption }
func (s *shapes) Image(i int, dst []float32) int {
	for k, b := range s.Scene(i).Render() {
		dst[k] = float32(b)/127.5 - 1
	}
	return -1
}
