package eval

import (
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/godiffuse/godiffuse/data"
)

// TestShapesJudgeOnDatasetImages: the judge passes at least 99 % of the
// dataset's own images in every category (it must before it judges
// generated ones), and it fails captions that the image contradicts.
func TestShapesJudgeOnDatasetImages(t *testing.T) {
	const n = 3000
	ds, err := data.Shapes(n, 42, data.ShapesAll)
	if err != nil {
		t.Fatal(err)
	}
	pass, total := map[string]int{}, map[string]int{}
	pix := make([]float32, 3*32*32)
	for i := range n {
		ds.Image(i, pix)
		j, err := JudgeShapes(pix, 32, 32, ds.Caption(i))
		if err != nil {
			t.Fatal(err)
		}
		total[j.Kind]++
		if j.Pass {
			pass[j.Kind]++
		} else if total[j.Kind]-pass[j.Kind] <= 3 {
			t.Logf("failed %q: %+v found %+v", ds.Caption(i), j.Claims, j.Found)
		}
	}
	for _, k := range data.ShapeKinds {
		acc := float64(pass[k]) / float64(total[k])
		t.Logf("%-9s %4d images, %.2f %% pass", k, total[k], 100*acc)
		if total[k] < n/8 || acc < 0.99 {
			t.Errorf("%s: %d of %d pass, want ≥ 99 %%", k, pass[k], total[k])
		}
	}
	// Wrong captions fail: another colour, shape, count or relation.
	rng := rand.New(rand.NewPCG(1, 2))
	// Each wrong caption's first failed claim checks what was changed.
	wrong := map[string][2]string{
		"a red circle":                               {"a blue circle", "colour"},
		"a large blue square":                        {"a large blue triangle", "shape"},
		"two yellow triangles":                       {"three yellow triangles", "count"},
		"a red circle to the left of a white square": {"a red circle to the right of a white square", "relation"},
		"a purple square and a green circle":         {"a purple square and a red circle", "colour"},
		"a small white triangle":                     {"a large white triangle", "size"},
	}
	for right, w := range wrong {
		bad, kind := w[0], w[1]
		q, err := data.ParseShapeCaption(right)
		if err != nil {
			t.Fatal(err)
		}
		for range 20 {
			sc := data.SceneFor(q, rng)
			img := sc.Render()
			for k, b := range img {
				pix[k] = float32(b)/127.5 - 1
			}
			if j, _ := JudgeShapes(pix, 32, 32, right); !j.Pass {
				t.Errorf("%q: the right caption failed: %+v", right, j.Claims)
			}
			j, _ := JudgeShapes(pix, 32, 32, bad)
			if j.Pass {
				t.Errorf("image of %q passed as %q", right, bad)
			}
			if first := slices.IndexFunc(j.Claims, func(c ShapeClaim) bool { return !c.OK }); first >= 0 && j.Claims[first].Kind != kind {
				t.Errorf("image of %q judged as %q: first failed claim %+v, want kind %s", right, bad, j.Claims[first], kind)
			}
		}
	}
	// A smudge that fits no shape (an L of green) is a blob, not a triangle.
	for k := range pix {
		pix[k] = -1
	}
	for y := 8; y < 20; y++ {
		for x := 8; x < 20; x++ {
			if x >= 14 && y < 14 {
				continue
			}
			pix[y*32+x], pix[(32+y)*32+x], pix[(64+y)*32+x] = 40/127.5-1, 200/127.5-1, 70/127.5-1
		}
	}
	if j, _ := JudgeShapes(pix, 32, 32, "a green triangle"); j.Pass || len(j.Found) != 1 || j.Found[0].Shape != "blob" {
		t.Errorf("an L-shaped smudge: %+v", j)
	}
	// Two touching triangles of one colour merge into one component that no
	// single shape fits: a blob.
	pair := data.ShapeScene{Kind: "single", Caption: "a green triangle", Objects: []data.ShapeObject{
		{Shape: "triangle", Colour: "green", Size: "small", X: 10, Y: 16},
		{Shape: "triangle", Colour: "green", Size: "small", X: 20, Y: 16},
	}}
	for k, b := range pair.Render() {
		pix[k] = float32(b)/127.5 - 1
	}
	if j, _ := JudgeShapes(pix, 32, 32, "a green triangle"); j.Pass || len(j.Found) != 1 || j.Found[0].Shape != "blob" {
		t.Errorf("two touching triangles: %+v", j)
	}
}

// TestShapesJudgeOnSoftenedImages: generated pictures have softer, less
// even edges than the dataset's; the dataset's own images blurred with a
// 2×2 box (every edge half a pixel wider, the objects shifted by half a
// pixel) still pass at least 99 % of the time in every category.
func TestShapesJudgeOnSoftenedImages(t *testing.T) {
	const n, side = 2000, 32
	ds, err := data.Shapes(n, 7, data.ShapesAll)
	if err != nil {
		t.Fatal(err)
	}
	pass, total := map[string]int{}, map[string]int{}
	pix, soft := make([]float32, 3*side*side), make([]float32, 3*side*side)
	for i := range n {
		ds.Image(i, pix)
		at := func(c, y, x int) float32 { return pix[(c*side+min(y, side-1))*side+min(x, side-1)] } // edge clamped
		for c := range 3 {
			for y := range side {
				for x := range side {
					soft[(c*side+y)*side+x] = (at(c, y, x) + at(c, y, x+1) + at(c, y+1, x) + at(c, y+1, x+1)) / 4
				}
			}
		}
		j, err := JudgeShapes(soft, side, side, ds.Caption(i))
		if err != nil {
			t.Fatal(err)
		}
		total[j.Kind]++
		if j.Pass {
			pass[j.Kind]++
		}
	}
	for _, k := range data.ShapeKinds {
		acc := float64(pass[k]) / float64(total[k])
		t.Logf("%-9s %4d softened images, %.2f %% pass", k, total[k], 100*acc)
		if acc < 0.99 {
			t.Errorf("%s softened: %d of %d pass, want ≥ 99 %%", k, pass[k], total[k])
		}
	}
}

// TestShapesJudgeOnStrayEdgePixels: generated objects often carry a stray
// pixel or two just outside an edge (a darker fringe of the object's
// colour). That widens the object's bounding box by a row but leaves the
// shape what it is: every shape of both sizes, with two such pixels
// under, over, left or right of it, keeps its shape and size.
// (The judge that classified by the bounding box's quarters failed these.)
func TestShapesJudgeOnStrayEdgePixels(t *testing.T) {
	const side = 32
	pix := make([]float32, 3*side*side)
	for _, shape := range data.ShapeNames {
		for _, size := range data.ShapeSizes {
			o := data.ShapeObject{Shape: shape, Colour: "purple", Size: size, X: 16, Y: 16}
			half := map[string]int{"small": 5, "large": 8}[size]
			// Two pixels at 75 % of the colour (close enough to be labelled
			// with it) just outside the middle of one edge.
			for _, at := range [][2]int{{0, half}, {0, -half - 1}, {half, 0}, {-half - 1, 0}} {
				for k, b := range (data.ShapeScene{Objects: []data.ShapeObject{o}}).Render() {
					pix[k] = float32(b)/127.5 - 1
				}
				for d := range 2 {
					x, y := 16+at[0], 16+at[1]
					if at[0] == 0 {
						x += d - 1
					} else {
						y += d - 1
					}
					for k, c := range data.ShapeRGB["purple"] {
						pix[(k*side+y)*side+x] = 0.75*float32(c)/127.5 - 1
					}
				}
				caption := "a " + size + " purple " + shape
				if j, _ := JudgeShapes(pix, side, side, caption); !j.Pass {
					t.Errorf("%s with two stray pixels at %v: %+v", caption, at, j)
				}
			}
		}
	}
}

// TestShapesJudgeRejectsNearMisses: objects that look like a shape pulled
// out of true are no shape: a 10×15 rectangle is not a square (the judge
// that read bounding boxes passed it), an ellipse 16 wide and 10 tall is
// not a circle.
func TestShapesJudgeRejectsNearMisses(t *testing.T) {
	const side = 32
	paint := func(inside func(x, y float64) bool) []float32 {
		pix := make([]float32, 3*side*side)
		for y := range side {
			for x := range side {
				in := 0.0 // 4×4 samples a pixel, as the dataset anti-aliases
				for s := range 16 {
					if inside(float64(x)+(float64(s%4)+0.5)/4, float64(y)+(float64(s/4)+0.5)/4) {
						in++
					}
				}
				for k, c := range data.ShapeRGB["white"] {
					pix[(k*side+y)*side+x] = float32(in/16*float64(c))/127.5 - 1
				}
			}
		}
		return pix
	}
	rect := paint(func(x, y float64) bool { return x >= 11 && x < 21 && y >= 8.5 && y < 23.5 })
	for _, caption := range []string{"a white square", "a small white square", "a large white square"} {
		if j, _ := JudgeShapes(rect, side, side, caption); j.Pass {
			t.Errorf("a 10×15 rectangle passed as %q: %+v", caption, j.Found)
		}
	}
	ellipse := paint(func(x, y float64) bool { return sq((x-16)/8)+sq((y-16)/5) <= 1 })
	if j, _ := JudgeShapes(ellipse, side, side, "a white circle"); j.Pass {
		t.Errorf("a 16×10 ellipse passed as a circle: %+v", j.Found)
	}
}
