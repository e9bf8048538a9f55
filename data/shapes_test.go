package data

import (
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

// TestShapesCaptionsAndSplits: every caption parses back to its scene's
// content, the training split never shows a held-out combination and the
// held-out split always does, and a scene depends only on seed and index.
func TestShapesCaptionsAndSplits(t *testing.T) {
	for _, split := range []string{ShapesTrain, ShapesHeldOut} {
		ds, err := Shapes(500, 7, split)
		if err != nil {
			t.Fatal(err)
		}
		kinds := map[string]int{}
		for i := range ds.Len() {
			sc := ds.(*shapes).Scene(i)
			q, err := ParseShapeCaption(sc.Caption)
			if err != nil {
				t.Fatal(err)
			}
			if q.Caption() != sc.Caption || q.Kind != sc.Kind {
				t.Errorf("%q parses back as %q (%s)", sc.Caption, q.Caption(), q.Kind)
			}
			kinds[q.Kind]++
			held := slices.ContainsFunc(sc.Objects, func(o ShapeObject) bool { return IsHeldOutShape(ShapeSpec{o.Shape, o.Colour, o.Size}) })
			if held != (split == ShapesHeldOut) {
				t.Errorf("%s split: %q", split, sc.Caption)
			}
			for _, o := range sc.Objects {
				if !slices.Contains(ShapeNames, o.Shape) || !slices.Contains(ShapeColours, o.Colour) || !slices.Contains(ShapeSizes, o.Size) {
					t.Errorf("object %+v", o)
				}
			}
		}
		if split == ShapesTrain && len(kinds) != len(ShapeKinds) {
			t.Errorf("kinds %v", kinds)
		}
	}
	a, b := NewShapeScene(3, 9, ShapesAll), NewShapeScene(3, 9, ShapesAll)
	if a.Caption != b.Caption || !slices.Equal(a.Render(), b.Render()) {
		t.Error("the same seed and index drew different scenes")
	}
	for _, bad := range []string{"", "a red", "a pink circle", "four red circles", "a red circle near a blue square", "two red circle"} {
		if _, err := ParseShapeCaption(bad); err == nil {
			t.Errorf("%q parsed", bad)
		}
	}
	if _, err := Shapes(0, 1, ShapesTrain); err == nil {
		t.Error("n 0 accepted")
	}
}

// FuzzParseShapeCaption: any text either fails to parse or parses into a
// query whose caption parses back to the same caption.
func FuzzParseShapeCaption(f *testing.F) {
	for _, s := range []string{"a small red circle", "two yellow triangles", "a blue square to the left of a green triangle",
		"a red circle and a red circle", "three  WHITE squares", "a a a", "", "a small large red circle", "twos red circles",
		"a red circle above a blue square to the left of a white triangle"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		q, err := ParseShapeCaption(s)
		if err != nil {
			return
		}
		again, err := ParseShapeCaption(q.Caption())
		if err != nil || again.Caption() != q.Caption() {
			t.Fatalf("%q → %q → %v %v", s, q.Caption(), again, err)
		}
	})
}

// TestShapeMix: a mix weighs the kinds of caption as asked, and bad mixes
// fail naming what was expected.
func TestShapeMix(t *testing.T) {
	mix, err := ParseShapeMix([]string{"position=3", "counting=0"})
	if err != nil {
		t.Fatal(err)
	}
	ds, err := ShapesMixed(4000, 5, ShapesTrain, mix)
	if err != nil {
		t.Fatal(err)
	}
	kinds := map[string]int{}
	for i := range ds.Len() {
		kinds[ds.(*shapes).Scene(i).Kind]++
	}
	// Expected shares: single 1/5, two 1/5, counting 0, position 3/5.
	if kinds["counting"] != 0 || kinds["position"] < 2200 || kinds["position"] > 2600 || kinds["single"] < 650 || kinds["single"] > 950 {
		t.Errorf("kinds %v, want about 800 single, 800 two, 0 counting, 2400 position", kinds)
	}
	for _, bad := range [][]string{{"position"}, {"where=2"}, {"position=-1"}, {"single=0", "two=0", "counting=0", "position=0"}} {
		if _, err := ParseShapeMix(bad); err == nil {
			t.Errorf("mix %q accepted", bad)
		}
	}
}

// FuzzParseShapeMix: any -data shapes:…,KIND=WEIGHT list either fails or
// gives one finite weight in [0, 1000] per kind, not all zero.
func FuzzParseShapeMix(f *testing.F) {
	for _, s := range []string{"position=3", "single=0,two=2", "position=NaN", "counting=1e9", "=", "position=3,position=0", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		mix, err := ParseShapeMix(strings.Split(s, ","))
		if err != nil {
			return
		}
		if len(mix) != len(ShapeKinds) || slices.Max(mix) <= 0 {
			t.Fatalf("%q: mix %v", s, mix)
		}
		for _, w := range mix {
			if !(w >= 0 && w <= 1000) {
				t.Fatalf("%q: weight %g", s, w)
			}
		}
	})
}

// TestShapeContrast checks the hard negatives: each differs from its
// caption, parses back, never holds a held-out object, and a scene drawn
// for it fits it.
func TestShapeContrast(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	mirrored, crossed := 0, 0
	defer func() {
		// Position's negative: the opposite relation half of the time, else the other axis.
		if mirrored < 20 || crossed < 20 {
			t.Errorf("position negatives: %d mirrored, %d on the other axis; want both", mirrored, crossed)
		}
	}()
	for i := range 400 {
		sc := NewShapeScene(7, i, ShapesTrain)
		q, err := ParseShapeCaption(sc.Caption)
		if err != nil {
			t.Fatal(err)
		}
		c, ok := q.Contrast(rng)
		if !ok {
			continue
		}
		if c.Caption() == q.Caption() {
			t.Fatalf("%q: the contrast is the same caption", sc.Caption)
		}
		if back, err := ParseShapeCaption(c.Caption()); err != nil || back.Caption() != c.Caption() {
			t.Fatalf("%q → %q: does not parse back (%v)", sc.Caption, c.Caption(), err)
		}
		for _, o := range c.Objects {
			if IsHeldOutShape(o) {
				t.Fatalf("%q → %q holds a held-out object", sc.Caption, c.Caption())
			}
		}
		if q.Kind == "position" {
			if c.Relation == q.Relation {
				t.Fatalf("%q → %q: same relation", sc.Caption, c.Caption())
			}
			axis := func(rel string) bool { return rel == "above" || rel == "below" }
			if axis(c.Relation) == axis(q.Relation) {
				mirrored++
			} else {
				crossed++
			}
		}
		if got := SceneFor(c, rng); got.Caption != c.Caption() {
			t.Fatalf("scene for %q has caption %q", c.Caption(), got.Caption)
		}
	}
}

// TestShapeCoverage: an object's coverage of a grid adds up to its area
// (circle π·s²/4, square s², triangle s²/2) at every grid size, and lies
// where the object is.
func TestShapeCoverage(t *testing.T) {
	for _, o := range []ShapeObject{{Shape: "circle", Size: "small", X: 9, Y: 20}, {Shape: "square", Size: "large", X: 16.5, Y: 12},
		{Shape: "triangle", Size: "large", X: 20, Y: 22}} {
		s := shapeSidePx[o.Size]
		area := map[string]float64{"circle": math.Pi * s * s / 4, "square": s * s, "triangle": s * s / 2}[o.Shape]
		for _, side := range []int{32, 16, 8, 4} {
			cell := float64(ShapesSize) / float64(side)
			var sum float64
			for p, v := range o.Coverage(side) {
				sum += float64(v) * cell * cell
				cx, cy := (float64(p%side)+0.5)*cell, (float64(p/side)+0.5)*cell
				if v > 0 && (math.Abs(cx-o.X) > s/2+cell || math.Abs(cy-o.Y) > s/2+cell) {
					t.Errorf("%s at %d×%d: cell (%g, %g) covered, %g px from the centre (%g, %g)", o.Shape, side, side, cx, cy, s/2, o.X, o.Y)
				}
			}
			if math.Abs(sum-area) > 0.03*area {
				t.Errorf("%s at %d×%d: coverage adds to %.1f px², want %.1f", o.Shape, side, side, sum, area)
			}
		}
	}
}
