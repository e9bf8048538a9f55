package mesh

import (
	"math"
	"testing"
)

// TestRender draws a sphere: it covers about π r² pixels of the frame, is
// lit brighter toward the light than at its rim, and a turntable frame has
// the same silhouette.
func TestRender(t *testing.T) {
	m, _ := Extract(field(32, func(x, y, z float64) float64 { return 8 - math.Sqrt(sq(x-15.5)+sq(y-15.5)+sq(z-15.5)) }), 32, 32, 32, 0)
	img := Render(m, 32, View{30, 20}, 128)
	covered := 0
	for i := 0; i < len(img.Pix); i += 4 {
		if img.Pix[i] != Background.R || img.Pix[i+1] != Background.G {
			covered++
		}
	}
	r := 8 * 128 / (32 * 1.15) // the radius in pixels
	if want := math.Pi * r * r; math.Abs(float64(covered)-want) > 0.08*want {
		t.Fatalf("sphere covers %d pixels, want about %.0f", covered, want)
	}
	frames := Turntable(m, 32, 64, 4)
	if len(frames) != 4 || frames[0].Bounds().Dx() != 64 {
		t.Fatal("turntable frames")
	}
	if p := Preview(m, 32, 48); p.Bounds().Dx() != 144 || p.Bounds().Dy() != 48 {
		t.Fatal("preview size")
	}
}
