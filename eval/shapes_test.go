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
	// Two touching triangles of one colour merge into one component whose
	// box fills like a triangle's; the box's aspect makes it a blob.
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
// pixel) still pass at least 97 % of the time in every category.
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
		if acc < 0.97 {
			t.Errorf("%s softened: %d of %d pass, want ≥ 97 %%", k, pass[k], total[k])
		}
	}
}
