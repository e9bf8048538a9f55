package mesh

import "math"

// Stats describes a mesh's geometry and topology.
type Stats struct {
	Vertices, Triangles int
	Volume              float64 // enclosed volume (divergence theorem), grid units³; meaningful when Closed
	Area                float64 // surface area, grid units²
	Components          int     // connected pieces (triangles sharing a vertex)
	Closed              bool    // every edge belongs to exactly two triangles
	Oriented            bool    // … which use it in opposite directions (consistent normals)
	Euler               int     // V - E + F: 2 for a sphere, 0 for a torus, per closed component
}

// Watertight reports a closed, consistently oriented (manifold) surface.
func (s Stats) Watertight() bool { return s.Closed && s.Oriented && s.Triangles > 0 }

// Measure computes a mesh's Stats.
func Measure(m *Mesh) Stats {
	s := Stats{Vertices: len(m.Vertices), Triangles: len(m.Triangles)}
	directed := map[[2]int32]int{}
	parent := make([]int32, len(m.Vertices))
	for i := range parent {
		parent[i] = int32(i)
	}
	var find func(int32) int32
	find = func(i int32) int32 {
		for parent[i] != i {
			parent[i] = parent[parent[i]]
			i = parent[i]
		}
		return i
	}
	for _, t := range m.Triangles {
		a, b, c := f64(m.Vertices[t[0]]), f64(m.Vertices[t[1]]), f64(m.Vertices[t[2]])
		s.Volume += (a[0]*(b[1]*c[2]-b[2]*c[1]) - a[1]*(b[0]*c[2]-b[2]*c[0]) + a[2]*(b[0]*c[1]-b[1]*c[0])) / 6
		u := [3]float64{b[0] - a[0], b[1] - a[1], b[2] - a[2]}
		v := [3]float64{c[0] - a[0], c[1] - a[1], c[2] - a[2]}
		n := [3]float64{u[1]*v[2] - u[2]*v[1], u[2]*v[0] - u[0]*v[2], u[0]*v[1] - u[1]*v[0]}
		s.Area += math.Sqrt(n[0]*n[0]+n[1]*n[1]+n[2]*n[2]) / 2
		for k := range 3 {
			directed[[2]int32{t[k], t[(k+1)%3]}]++
			if ra, rb := find(t[k]), find(t[(k+1)%3]); ra != rb {
				parent[ra] = rb
			}
		}
	}
	s.Closed, s.Oriented = true, true
	edges := 0
	for e, n := range directed {
		back := directed[[2]int32{e[1], e[0]}]
		if n != 1 {
			s.Oriented = false
		}
		if n+back != 2 {
			s.Closed = false
		}
		if e[0] < e[1] || back == 0 {
			edges++
		}
	}
	used := map[int32]bool{}
	for _, t := range m.Triangles {
		used[t[0]], used[t[1]], used[t[2]] = true, true, true
	}
	roots := map[int32]bool{}
	for v := range used {
		roots[find(v)] = true
	}
	s.Components = len(roots)
	s.Euler = len(used) - edges + len(m.Triangles)
	return s
}

func f64(p [3]float32) [3]float64 { return [3]float64{float64(p[0]), float64(p[1]), float64(p[2])} }
