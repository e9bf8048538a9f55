package eval

import (
	"fmt"
	"math"
	"slices"

	"github.com/godiffuse/godiffuse/data"
)

// The shapes judge reads a picture of the shapes dataset (data.Shapes)
// back: it labels every pixel with the nearest of the six colours (or the
// background, or nothing when no colour is close, as on anti-aliased
// edges), finds the connected objects of each colour, classifies each by
// how full the top and bottom quarters of its bounding box are (a square
// fills both, a circle neither, a triangle only the bottom) and how much
// of the box it fills (an object that fits no shape, or whose box is not
// about square, is a blob), sizes it by its box, and checks every claim of
// the caption: the objects named, their colours, shapes and sizes, the count,
// the relation. It knows nothing of how an image was made, so it judges
// generated images and dataset images alike.

// FoundShape is an object the judge found.
type FoundShape struct {
	Colour, Shape, Size string
	X, Y                float64 // centre of the bounding box
	Area                int     // pixels
	Fill                float64 // area / bounding-box area
	Top, Bottom         float64 // how full the top and bottom quarter of the box are
}

// ShapeClaim is one checked claim of a caption.
type ShapeClaim struct {
	Claim string
	Kind  string // what it checks: colour, shape, size, count or relation
	OK    bool
}

// ShapeJudgement is the judge's verdict on one image.
type ShapeJudgement struct {
	Kind   string // the caption's template: single, two, counting, position
	Pass   bool   // every claim holds
	Claims []ShapeClaim
	Found  []FoundShape
}

// Judge thresholds.
const (
	colourDist  = 90.0 // a pixel further than this from every colour is unlabelled
	minArea     = 20   // smaller components are noise (a small triangle covers ~45 pixels)
	largeSidePx = 11   // a bounding box this wide or tall: large
	maxAspect   = 1.5  // every shape's box is square (the dataset's measure at most 1.15): a longer one is a blob
)

// FindShapes lists the objects in an image (3, h, w) with values in [−1, 1].
func FindShapes(pix []float32, h, w int) []FoundShape {
	palette := append([]string{"background"}, data.ShapeColours...)
	rgb := [][3]uint8{data.ShapeBackground}
	for _, c := range data.ShapeColours {
		rgb = append(rgb, data.ShapeRGB[c])
	}
	label := make([]int, h*w) // index in palette, −1 unlabelled
	for i := range h * w {
		var p [3]float64
		for k := range 3 {
			p[k] = math.Round((float64(pix[k*h*w+i]) + 1) * 127.5)
		}
		best, bestD := -1, colourDist
		for j, c := range rgb {
			d := math.Sqrt(sq(p[0]-float64(c[0])) + sq(p[1]-float64(c[1])) + sq(p[2]-float64(c[2])))
			if d < bestD {
				best, bestD = j, d
			}
		}
		label[i] = best
	}
	var found []FoundShape
	seen := make([]bool, h*w)
	for start := range h * w {
		if seen[start] || label[start] <= 0 {
			continue
		}
		col := label[start]
		stack := []int{start}
		seen[start] = true
		x0, y0, x1, y1, area := w, h, -1, -1, 0
		var members []int
		for len(stack) > 0 {
			p := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			members = append(members, p)
			y, x := p/w, p%w
			area++
			x0, y0, x1, y1 = min(x0, x), min(y0, y), max(x1, x), max(y1, y)
			for dy := -1; dy <= 1; dy++ {
				for dx := -1; dx <= 1; dx++ {
					ny, nx := y+dy, x+dx
					if ny < 0 || nx < 0 || ny >= h || nx >= w {
						continue
					}
					q := ny*w + nx
					if !seen[q] && label[q] == col {
						seen[q] = true
						stack = append(stack, q)
					}
				}
			}
		}
		if area < minArea {
			continue
		}
		bw, bh := x1-x0+1, y1-y0+1
		f := FoundShape{Colour: palette[col], X: float64(x0+x1)/2 + 0.5, Y: float64(y0+y1)/2 + 0.5, Area: area,
			Fill: float64(area) / float64(bw*bh)}
		// How full the top and the bottom quarter of the box are: a square
		// fills both, a circle neither, a triangle (apex up) the bottom only.
		band := max(1, (bh+2)/4)
		var top, bottom int
		for _, p := range members {
			switch y := p / w; {
			case y < y0+band:
				top++
			case y > y1-band:
				bottom++
			}
		}
		f.Top, f.Bottom = float64(top)/float64(band*bw), float64(bottom)/float64(band*bw)
		f.Shape = classifyShape(f.Fill, f.Top, f.Bottom)
		if float64(max(bw, bh)) > maxAspect*float64(min(bw, bh)) {
			f.Shape = "blob" // e.g. two touching triangles, whose joint box fills like one
		}
		f.Size = "small"
		if max(bw, bh) >= largeSidePx {
			f.Size = "large"
		}
		found = append(found, f)
	}
	return found
}

func sq(x float64) float64 { return x * x }

// classifyShape names an object from how full its box is (fill) and how
// full the top and bottom quarters of the box are. Each shape has a window
// around what the dataset's own objects measure (square: fill 0.99–1, both
// quarters ≥ 0.97; circle: fill 0.71–0.88, quarters 0.48–0.83; triangle:
// fill 0.50–0.67, top ≤ 0.25, bottom ≥ 0.87) with room for imperfect
// drawing; anything outside every window is a "blob", which no caption's
// shape matches (so smudges are not counted as shapes).
func classifyShape(fill, top, bottom float64) string {
	switch {
	case fill >= 0.9 && top >= 0.85 && bottom >= 0.85:
		return "square"
	case fill >= 0.4 && fill <= 0.75 && top <= 0.4 && bottom >= 0.75:
		return "triangle"
	case fill >= 0.65 && fill <= 0.93 && top >= 0.35 && top <= 0.9 && bottom >= 0.35 && bottom <= 0.9 && math.Abs(bottom-top) < 0.35:
		return "circle"
	}
	return "blob"
}

// matches says whether a found object is what a spec names.
func matches(f FoundShape, s data.ShapeSpec) bool {
	return f.Colour == s.Colour && f.Shape == s.Shape && (s.Size == "" || f.Size == s.Size)
}

// JudgeShapes checks an image (3, h, w) in [−1, 1] against its caption.
func JudgeShapes(pix []float32, h, w int, caption string) (ShapeJudgement, error) {
	if len(pix) != 3*h*w {
		return ShapeJudgement{}, fmt.Errorf("shapes judge: %d values for a 3×%d×%d image", len(pix), h, w)
	}
	q, err := data.ParseShapeCaption(caption)
	if err != nil {
		return ShapeJudgement{}, err
	}
	j := ShapeJudgement{Kind: q.Kind, Found: FindShapes(pix, h, w)}
	claim := func(kind, text string, ok bool) { j.Claims = append(j.Claims, ShapeClaim{text, kind, ok}) }
	// best is the largest found object a spec names, other than skip.
	best := func(s data.ShapeSpec, skip int) int {
		k := -1
		for i, f := range j.Found {
			if i != skip && matches(f, s) && (k < 0 || f.Area > j.Found[k].Area) {
				k = i
			}
		}
		return k
	}
	object := func(s data.ShapeSpec, skip int) int {
		colour := slices.ContainsFunc(j.Found, func(f FoundShape) bool { return f.Colour == s.Colour })
		claim("colour", s.Colour+" present", colour)
		k := best(data.ShapeSpec{Shape: s.Shape, Colour: s.Colour}, skip)
		claim("shape", s.Colour+" "+s.Shape+" present", k >= 0)
		if s.Size != "" {
			k = best(s, skip)
			claim("size", s.Size+" "+s.Colour+" "+s.Shape+" present", k >= 0)
		}
		return k
	}
	switch q.Kind {
	case "single":
		object(q.Objects[0], -1)
	case "two":
		a := object(q.Objects[0], -1)
		object(q.Objects[1], a)
	case "counting":
		n := 0
		for _, f := range j.Found {
			if matches(f, q.Objects[0]) {
				n++
			}
		}
		claim("count", fmt.Sprintf("%d %s %ss (found %d)", q.Count, q.Objects[0].Colour, q.Objects[0].Shape, n), n == q.Count)
	case "position":
		a := object(q.Objects[0], -1)
		b := object(q.Objects[1], a)
		ok := false
		if a >= 0 && b >= 0 {
			dx, dy := j.Found[b].X-j.Found[a].X, j.Found[b].Y-j.Found[a].Y
			switch q.Relation {
			case "to the left of":
				ok = dx > 0 && dx > math.Abs(dy)
			case "to the right of":
				ok = dx < 0 && -dx > math.Abs(dy)
			case "above":
				ok = dy > 0 && dy > math.Abs(dx)
			case "below":
				ok = dy < 0 && -dy > math.Abs(dx)
			}
		}
		claim("relation", q.Relation, ok)
	}
	j.Pass = !slices.ContainsFunc(j.Claims, func(c ShapeClaim) bool { return !c.OK })
	return j, nil
}
