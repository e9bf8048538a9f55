package data

import (
	"fmt"
	"math"
	"math/rand/v2"
)

// ---------------------------------------------------------------------------
// Shapes3D: a seeded procedural dataset of solids in a 32³ grid, one class
// per kind of solid (Shape3DClasses), each with a random size, position and
// orientation that keep it inside the grid with a margin.
//
// A volume holds a truncated signed distance field (TSDF), not occupancy:
//
//	v = clamp(-d/τ, -1, 1),   d the signed distance to the surface in voxels
//	                          (negative inside), τ = Shape3DTruncation
//
// so +1 is deep inside, -1 far outside and the surface is the level set
// v = 0, found to a fraction of a voxel by marching cubes' linear
// interpolation. Occupancy (±1 only) would put the surface somewhere
// within a voxel — staircase meshes — and give the diffusion model a
// target with no sub-voxel information; the TSDF is as easy to learn
// (smooth, bounded in [-1, 1] like images) and its zero crossing is the
// shape. Distances are exact for spheres, boxes, cylinders, capsules and
// tori; for cones and pyramids (intersections of half-spaces and a cone)
// they are exact inside and a lower bound outside near edges, which moves
// only values beyond the surface, never the surface itself.
//
// Volumes are indexed (z, y, x) = (D, H, W) with y up. Through the
// Dataset interface a volume is the stack of its slices: Shape is
// (1, D·H, W) and Image writes D·H·W values, z slowest.
// ---------------------------------------------------------------------------

// Shape3DClasses are the kinds of solid, in label order.
var Shape3DClasses = []string{"sphere", "cube", "cylinder", "cone", "torus", "capsule", "pyramid"}

// Shape3DSize is the side of the generated volumes.
const Shape3DSize = 32

// Shape3DTruncation is τ, the distance (voxels) at which the TSDF saturates.
const Shape3DTruncation = 3.0

// VolumeDataset is a Dataset of volumes: Shape is (C, D·H, W) and
// VolumeShape names the sides.
type VolumeDataset interface {
	Dataset
	VolumeShape() (c, d, h, w int)
}

// Solid3D is one generated shape: its class, and the transform from grid
// coordinates (voxel centres, 0 … side-1) to the solid's own frame.
type Solid3D struct {
	Class  int
	Centre [3]float64    // grid coordinates (x, y, z)
	Rot    [3][3]float64 // rows: the solid's axes in grid coordinates
	Dims   [3]float64    // class-specific sizes in voxels (see solidDistance)
}

// NewSolid3D draws solid i of class label (i mod classes unless given) from
// a generator seeded by (seed, i): the same arguments give the same solid.
func NewSolid3D(seed uint64, i, class int) Solid3D {
	rng := rand.New(rand.NewPCG(seed, uint64(i)*0x9e3779b97f4a7c15+0x3d))
	s := Solid3D{Class: class, Rot: randomRotation(rng)}
	u := func(lo, hi float64) float64 { return lo + (hi-lo)*rng.Float64() }
	// Dims are chosen so the solid's bounding radius is about 6 … 12 voxels.
	switch Shape3DClasses[class] {
	case "sphere":
		s.Dims = [3]float64{u(6, 11)}
	case "cube":
		a := u(4.5, 7.5) // half-side
		s.Dims = [3]float64{a, a, a}
	case "cylinder": // radius, half-height
		s.Dims = [3]float64{u(4, 7), u(4.5, 8)}
	case "cone": // base radius, half-height
		s.Dims = [3]float64{u(5, 8), u(5, 8.5)}
	case "torus": // major radius, minor radius
		s.Dims = [3]float64{u(6.5, 9), u(2.2, 3.5)}
	case "capsule": // radius, half-length of the segment (≥ 1.2 radii: not a sphere)
		r := u(3, 5)
		s.Dims = [3]float64{r, u(1.2*r+1, 8)}
	case "pyramid": // half-side of the square base, height
		s.Dims = [3]float64{u(5, 8), u(9, 14)}
	}
	reach := s.boundingRadius()
	margin := 1.5
	half := float64(Shape3DSize-1) / 2
	slack := max(0, half-margin-reach)
	for k := range s.Centre {
		s.Centre[k] = half + u(-slack, slack)
	}
	return s
}

// boundingRadius bounds |p| over the solid in its own frame.
func (s Solid3D) boundingRadius() float64 {
	d := s.Dims
	switch Shape3DClasses[s.Class] {
	case "sphere":
		return d[0]
	case "cube":
		return d[0] * math.Sqrt(3)
	case "cylinder", "cone":
		return math.Hypot(d[0], d[1])
	case "torus":
		return d[0] + d[1]
	case "capsule":
		return d[0] + d[1]
	case "pyramid": // base corners at y = -h/2, apex at +h/2
		return math.Hypot(d[0]*math.Sqrt2, d[1]/2)
	}
	return 0
}

// randomRotation draws a uniformly random rotation (a random unit quaternion).
func randomRotation(rng *rand.Rand) [3][3]float64 {
	var q [4]float64
	n := 0.0
	for n < 1e-6 {
		for i := range q {
			q[i] = rng.NormFloat64()
		}
		n = math.Sqrt(q[0]*q[0] + q[1]*q[1] + q[2]*q[2] + q[3]*q[3])
	}
	w, x, y, z := q[0]/n, q[1]/n, q[2]/n, q[3]/n
	return [3][3]float64{
		{1 - 2*(y*y+z*z), 2 * (x*y - w*z), 2 * (x*z + w*y)},
		{2 * (x*y + w*z), 1 - 2*(x*x+z*z), 2 * (y*z - w*x)},
		{2 * (x*z - w*y), 2 * (y*z + w*x), 1 - 2*(x*x+y*y)},
	}
}

// Distance is the signed distance (voxels, negative inside) from grid
// point (x, y, z) to the solid's surface.
func (s Solid3D) Distance(x, y, z float64) float64 {
	p := [3]float64{x - s.Centre[0], y - s.Centre[1], z - s.Centre[2]}
	var q [3]float64
	for i := range q {
		q[i] = s.Rot[i][0]*p[0] + s.Rot[i][1]*p[1] + s.Rot[i][2]*p[2]
	}
	return solidDistance(Shape3DClasses[s.Class], s.Dims, q[0], q[1], q[2])
}

// solidDistance is the signed distance in the solid's frame (y its axis).
func solidDistance(class string, d [3]float64, x, y, z float64) float64 {
	rho := math.Hypot(x, z)
	switch class {
	case "sphere":
		return math.Sqrt(x*x+y*y+z*z) - d[0]
	case "cube":
		return boxDistance(math.Abs(x)-d[0], math.Abs(y)-d[1], math.Abs(z)-d[2])
	case "cylinder":
		return boxDistance2(rho-d[0], math.Abs(y)-d[1])
	case "cone": // apex at y = +h, base of radius R at y = -h
		R, h := d[0], d[1]
		side := (rho*2*h + (y-h)*R) / math.Hypot(2*h, R)
		return max(side, -h-y)
	case "torus":
		return math.Hypot(rho-d[0], y) - d[1]
	case "capsule": // segment from y = -l to +l
		yc := math.Max(-d[1], math.Min(d[1], y))
		return math.Sqrt(x*x+(y-yc)*(y-yc)+z*z) - d[0]
	case "pyramid": // square base of half-side a at y = -h/2, apex at y = +h/2
		a, h := d[0], d[1]
		n := math.Hypot(h, a) // each slanted face: (|x|·h + (y - h/2)·a)/n
		fx := (math.Abs(x)*h + (y-h/2)*a) / n
		fz := (math.Abs(z)*h + (y-h/2)*a) / n
		return max(fx, fz, -h/2-y)
	}
	return 1e9
}

// boxDistance is the exact distance for a box given the per-axis excesses
// (|p| - half-sides).
func boxDistance(ex, ey, ez float64) float64 {
	out := math.Sqrt(sq(max(ex, 0)) + sq(max(ey, 0)) + sq(max(ez, 0)))
	return out + min(max(ex, ey, ez), 0)
}

func boxDistance2(ex, ey float64) float64 {
	return math.Hypot(max(ex, 0), max(ey, 0)) + min(max(ex, ey), 0)
}

func sq(v float64) float64 { return v * v }

// TSDF fills dst (side³ values, z slowest) with the solid's truncated
// signed distance field, +1 inside (see the top of this file).
func (s Solid3D) TSDF(dst []float32, side int) {
	scale := float64(Shape3DSize-1) / float64(side-1)
	i := 0
	for z := range side {
		for y := range side {
			for x := range side {
				d := s.Distance(float64(x)*scale, float64(y)*scale, float64(z)*scale) / scale
				dst[i] = float32(math.Max(-1, math.Min(1, -d/Shape3DTruncation)))
				i++
			}
		}
	}
}

// Shapes3D returns n seeded solids, classes in turn (label i mod 7). The
// "train" split and the "test" split draw from different seeds.
func Shapes3D(n int, seed uint64, split string) (VolumeDataset, error) {
	if n < 1 || n > 10_000_000 {
		return nil, fmt.Errorf("shapes3d: want 1 … 10000000 volumes, have %d", n)
	}
	switch split {
	case "train":
	case "test":
		seed ^= 0x7e57
	default:
		return nil, fmt.Errorf("shapes3d: split %q, want train or test", split)
	}
	return &shapes3d{n: n, seed: seed}, nil
}

type shapes3d struct {
	n    int
	seed uint64
}

func (s *shapes3d) Len() int             { return s.n }
func (s *shapes3d) Classes() []string    { return Shape3DClasses }
func (s *shapes3d) Shape() (c, h, w int) { return 1, Shape3DSize * Shape3DSize, Shape3DSize }
func (s *shapes3d) VolumeShape() (c, d, h, w int) {
	return 1, Shape3DSize, Shape3DSize, Shape3DSize
}

// Solid returns volume i's solid.
func (s *shapes3d) Solid(i int) Solid3D {
	return NewSolid3D(s.seed, i, i%len(Shape3DClasses))
}

func (s *shapes3d) Image(i int, dst []float32) int {
	sol := s.Solid(i)
	sol.TSDF(dst, Shape3DSize)
	return sol.Class
}
