package mesh

import (
	"math"
	"testing"
)

// field samples f on a side³ grid (z, y, x), x fastest.
func field(side int, f func(x, y, z float64) float64) []float32 {
	v := make([]float32, side*side*side)
	for z := range side {
		for y := range side {
			for x := range side {
				v[(z*side+y)*side+x] = float32(f(float64(x), float64(y), float64(z)))
			}
		}
	}
	return v
}

// TestAnalyticSolids meshes a sphere and a torus at 64³ from their signed
// distance (+ inside) and checks the promise: watertight and
// manifold, one component, the right topology, and volume and area within
// 2 % of the formulas.
func TestAnalyticSolids(t *testing.T) {
	const side = 64
	c := 31.7 // off the grid points, so nothing is aligned by luck
	cases := []struct {
		name         string
		f            func(x, y, z float64) float64
		volume, area float64
		euler        int
	}{
		{"sphere r=25", func(x, y, z float64) float64 { return 25 - math.Sqrt(sq(x-c)+sq(y-c)+sq(z-c)) },
			4.0 / 3 * math.Pi * 25 * 25 * 25, 4 * math.Pi * 25 * 25, 2},
		{"sphere r=6", func(x, y, z float64) float64 { return 6 - math.Sqrt(sq(x-c)+sq(y-c)+sq(z-c)) },
			4.0 / 3 * math.Pi * 216, 4 * math.Pi * 36, 2},
		{"torus R=20 r=8", func(x, y, z float64) float64 {
			return 8 - math.Hypot(math.Hypot(x-c, z-c)-20, y-c)
		}, 2 * math.Pi * math.Pi * 20 * 8 * 8, 4 * math.Pi * math.Pi * 20 * 8, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m, err := Extract(field(side, tc.f), side, side, side, 0)
			if err != nil {
				t.Fatal(err)
			}
			s := Measure(m)
			if !s.Watertight() || s.Components != 1 || s.Euler != tc.euler {
				t.Fatalf("%+v: want watertight, 1 component, Euler %d", s, tc.euler)
			}
			if r := s.Volume/tc.volume - 1; math.Abs(r) > 0.02 {
				t.Errorf("volume %.1f, formula %.1f (%+.2f%%)", s.Volume, tc.volume, 100*r)
			}
			if r := s.Area/tc.area - 1; math.Abs(r) > 0.02 {
				t.Errorf("area %.1f, formula %.1f (%+.2f%%)", s.Area, tc.area, 100*r)
			}
			t.Logf("%d triangles, volume %+.2f%%, area %+.2f%%", s.Triangles, 100*(s.Volume/tc.volume-1), 100*(s.Area/tc.area-1))
		})
	}
}

// TestExtractClosesAtTheBorder: a solid cut by the grid's border is closed
// by the padding; two solids are two components; a grid of one sign has
// no surface; bad sizes are refused.
func TestExtractClosesAtTheBorder(t *testing.T) {
	m, _ := Extract(field(16, func(x, y, z float64) float64 { return 10 - math.Sqrt(x*x+y*y+z*z) }), 16, 16, 16, 0)
	if s := Measure(m); !s.Watertight() || s.Components != 1 {
		t.Fatalf("corner sphere: %+v", s)
	}
	two := field(20, func(x, y, z float64) float64 {
		return max(4-math.Sqrt(sq(x-5)+sq(y-5)+sq(z-5)), 4-math.Sqrt(sq(x-14)+sq(y-14)+sq(z-14)))
	})
	m, _ = Extract(two, 20, 20, 20, 0)
	if s := Measure(m); !s.Watertight() || s.Components != 2 || s.Euler != 4 {
		t.Fatalf("two spheres: %+v", s)
	}
	// Values exactly at the level (a field of 0 and 1) still give a closed surface.
	m, _ = Extract(field(8, func(x, y, z float64) float64 {
		if x > 2 && x < 6 && y > 2 && y < 6 && z > 2 && z < 6 {
			return 1
		}
		return 0
	}), 8, 8, 8, 0)
	if s := Measure(m); !s.Watertight() || s.Components != 1 {
		t.Fatalf("cube at the level: %+v", s)
	}
	m, _ = Extract(make([]float32, 27), 3, 3, 3, 0.5)
	if len(m.Triangles) != 0 {
		t.Fatal("an empty grid has triangles")
	}
	if _, err := Extract(make([]float32, 8), 1, 2, 4, 0); err == nil {
		t.Fatal("a side of 1 accepted")
	}
	if _, err := Extract(make([]float32, 7), 2, 2, 2, 0); err == nil {
		t.Fatal("7 values for 2³ accepted")
	}
}

func sq(v float64) float64 { return v * v }
