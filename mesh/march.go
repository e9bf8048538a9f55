package mesh

import (
	"fmt"
	"math"
)

// ---------------------------------------------------------------------------
// Level sets by marching tetrahedra: marching cubes with every cube cut
// into the same six tetrahedra (the Freudenthal/Kuhn split along the
// diagonal from corner (0,0,0) to (1,1,1)), so that neighbouring cubes
// split their shared faces the same way.
//
// Inside a tetrahedron the field is taken as linear: the surface crosses
// an edge where its two values straddle the level, at the interpolated
// point, and is one triangle (one corner on the other side from three) or
// two (two and two). Classic marching cubes has faces whose four corners
// alternate in sign, which its case table may split one way in one cube and
// the other way in the next, leaving holes; a triangle face has no such
// choice, so the mesh of a level set that stays inside the grid is
// watertight and every edge is shared by exactly two triangles. The price
// is about twice the triangles of marching cubes.
//
// Vertices are shared through their grid edge (the pair of grid points),
// so the mesh is indexed and welded. Values exactly at the level are moved
// a hair to the outside, so that no vertex sits on a grid point (which
// would pinch the surface there). The grid is padded with one layer of
// "outside" first, which closes shapes that touch its border.
// ---------------------------------------------------------------------------

// Mesh is an indexed triangle mesh; triangles are counter-clockwise seen
// from outside (normals point out).
type Mesh struct {
	Vertices  [][3]float32
	Triangles [][3]int32
}

// tetrahedra are the six tetrahedra of a cube as corner numbers
// (bit 0: x, bit 1: y, bit 2: z): paths 0 → 7 along the three axes in
// every order.
var tetrahedra = func() [6][4]int {
	var out [6][4]int
	perms := [6][3]int{{0, 1, 2}, {0, 2, 1}, {1, 0, 2}, {1, 2, 0}, {2, 0, 1}, {2, 1, 0}}
	for i, p := range perms {
		c := 0
		out[i][0] = c
		for k, axis := range p {
			c |= 1 << axis
			out[i][k+1] = c
		}
	}
	return out
}()

// Extract returns the surface where the field crosses level, the inside
// being where it is above (as a TSDF with + inside). vol is (D, H, W) =
// (z, y, x), x fastest. It fails on a grid with a side below 2 or a size
// that does not match.
func Extract(vol []float32, d, h, w int, level float32) (*Mesh, error) {
	if d < 2 || h < 2 || w < 2 || len(vol) != d*h*w {
		return nil, fmt.Errorf("mesh: a %dx%dx%d grid with %d values (want sides ≥ 2 and D·H·W values)", d, h, w, len(vol))
	}
	// Pad by one layer of outside and move values at the level off it.
	D, H, W := d+2, h+2, w+2
	below := level - max(1e-6, 1e-6*float32(math.Abs(float64(level))))
	f := make([]float32, D*H*W)
	for i := range f {
		f[i] = below - 1
	}
	for z := range d {
		for y := range h {
			for x := range w {
				v := vol[(z*h+y)*w+x]
				if v == level || v != v { // NaN counts as outside
					v = below
				}
				f[((z+1)*H+y+1)*W+x+1] = v
			}
		}
	}
	at := func(i int) [3]float32 { // grid point i's position in the unpadded grid
		return [3]float32{float32(i%W - 1), float32(i/W%H - 1), float32(i/(W*H) - 1)}
	}
	m := &Mesh{}
	index := map[[2]int]int32{}
	vertex := func(a, b int) int32 { // the crossing on edge (a, b)
		if a > b {
			a, b = b, a
		}
		key := [2]int{a, b}
		if i, ok := index[key]; ok {
			return i
		}
		t := (level - f[a]) / (f[b] - f[a])
		pa, pb := at(a), at(b)
		var p [3]float32
		for k := range p {
			p[k] = pa[k] + t*(pb[k]-pa[k])
		}
		i := int32(len(m.Vertices))
		m.Vertices = append(m.Vertices, p)
		index[key] = i
		return i
	}
	// emit adds triangle (a, b, c), turned so its normal points from the
	// inside corners toward the outside ones.
	emit := func(a, b, c int32, in, out []int) {
		pa, pb, pc := m.Vertices[a], m.Vertices[b], m.Vertices[c]
		n := cross(sub(pb, pa), sub(pc, pa))
		var dir [3]float32
		for _, o := range out {
			dir = add(dir, at(o))
		}
		for _, i := range in {
			p := at(i)
			for k := range dir {
				dir[k] -= p[k] * float32(len(out)) / float32(len(in))
			}
		}
		if dot(n, dir) < 0 {
			b, c = c, b
		}
		m.Triangles = append(m.Triangles, [3]int32{a, b, c})
	}
	var corner [8]int
	for z := range D - 1 {
		for y := range H - 1 {
			for x := range W - 1 {
				base := (z*H+y)*W + x
				any, all := false, true
				for c := range 8 {
					corner[c] = base + (c & 1) + (c>>1&1)*W + (c>>2&1)*W*H
					inside := f[corner[c]] > level
					any = any || inside
					all = all && inside
				}
				if !any || all {
					continue
				}
				for _, tet := range tetrahedra {
					var in, out []int
					for _, c := range tet {
						if g := corner[c]; f[g] > level {
							in = append(in, g)
						} else {
							out = append(out, g)
						}
					}
					switch len(in) {
					case 1:
						emit(vertex(in[0], out[0]), vertex(in[0], out[1]), vertex(in[0], out[2]), in, out)
					case 3:
						emit(vertex(out[0], in[0]), vertex(out[0], in[1]), vertex(out[0], in[2]), in, out)
					case 2:
						a, b := vertex(in[0], out[0]), vertex(in[0], out[1])
						c, e := vertex(in[1], out[1]), vertex(in[1], out[0])
						emit(a, b, c, in, out)
						emit(a, c, e, in, out)
					}
				}
			}
		}
	}
	return m, nil
}

func sub(a, b [3]float32) [3]float32 { return [3]float32{a[0] - b[0], a[1] - b[1], a[2] - b[2]} }
func add(a, b [3]float32) [3]float32 { return [3]float32{a[0] + b[0], a[1] + b[1], a[2] + b[2]} }
func dot(a, b [3]float32) float32    { return a[0]*b[0] + a[1]*b[1] + a[2]*b[2] }
func cross(a, b [3]float32) [3]float32 {
	return [3]float32{a[1]*b[2] - a[2]*b[1], a[2]*b[0] - a[0]*b[2], a[0]*b[1] - a[1]*b[0]}
}
