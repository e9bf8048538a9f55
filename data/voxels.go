package data

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// ---------------------------------------------------------------------------
// Voxel grids from files, so users can train the 3-D model on their own
// shapes:
//
//	FILE.npy      NumPy array (N, D, H, W) or (D, H, W): bool, uint8, int8,
//	              float32 or float64, C order
//	FILE.binvox   binvox 1 (run-length occupancy, as cuda_voxelizer and
//	              binvox write it)
//	DIR           class folders DIR/CLASS/*.npy|*.binvox: the label is the
//	              folder's name
//
// Grids must be cubes, all of one side. Occupancy (bool and integer arrays,
// binvox, and float arrays holding only 0 and 1) is turned into the same
// TSDF as Shapes3D's (see shapes3d.go), with distances measured between
// voxel centres; any other float array is taken as a field already in that
// form (+1 inside, -1 outside, the surface at 0) and clamped to [-1, 1].
// Values are kept as int8 (127 steps per unit).
// ---------------------------------------------------------------------------

// maxVoxelSide bounds a grid's side (files come from anywhere).
const maxVoxelSide = 256

type voxelSet struct {
	side    int
	vols    [][]int8
	labels  []int
	classes []string
}

func (v *voxelSet) Len() int             { return len(v.vols) }
func (v *voxelSet) Classes() []string    { return v.classes }
func (v *voxelSet) Shape() (c, h, w int) { return 1, v.side * v.side, v.side }
func (v *voxelSet) VolumeShape() (c, d, h, w int) {
	return 1, v.side, v.side, v.side
}
func (v *voxelSet) Image(i int, dst []float32) int {
	for k, q := range v.vols[i] {
		dst[k] = float32(q) / 127
	}
	return v.labels[i]
}

// LoadVoxels reads a .npy file, a .binvox file or a folder of class folders
// (see above) into a VolumeDataset.
func LoadVoxels(path string) (VolumeDataset, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	set := &voxelSet{}
	if !st.IsDir() {
		if err := set.addFile(path, -1); err != nil {
			return nil, err
		}
		return set, nil
	}
	entries, err := os.ReadDir(path)
	if err != nil {
		return nil, err
	}
	for _, e := range entries {
		if !e.IsDir() || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		files, err := os.ReadDir(filepath.Join(path, e.Name()))
		if err != nil {
			return nil, err
		}
		label := len(set.classes)
		set.classes = append(set.classes, e.Name())
		for _, f := range files {
			if ext := strings.ToLower(filepath.Ext(f.Name())); f.Type().IsRegular() && (ext == ".npy" || ext == ".binvox") {
				if err := set.addFile(filepath.Join(path, e.Name(), f.Name()), label); err != nil {
					return nil, err
				}
			}
		}
	}
	if len(set.vols) == 0 {
		return nil, fmt.Errorf("%s: no .npy or .binvox files in class folders %s/CLASS/", path, path)
	}
	return set, nil
}

func (v *voxelSet) addFile(path string, label int) error {
	var vols [][]float32
	var side int
	var occupancy bool
	var err error
	switch strings.ToLower(filepath.Ext(path)) {
	case ".npy":
		vols, side, occupancy, err = readNPYVolumes(path)
	case ".binvox":
		var vol []float32
		vol, side, err = readBinvox(path)
		vols, occupancy = [][]float32{vol}, true
	default:
		return fmt.Errorf("%s: want a .npy or .binvox file", path)
	}
	if err != nil {
		return err
	}
	if v.side != 0 && side != v.side {
		return fmt.Errorf("%s: grids of side %d, but earlier files have side %d", path, side, v.side)
	}
	v.side = side
	for _, vol := range vols {
		if occupancy {
			vol = OccupancyTSDF(vol, side)
		}
		q := make([]int8, len(vol))
		for i, x := range vol {
			q[i] = int8(math.Round(127 * math.Max(-1, math.Min(1, float64(x)))))
		}
		v.vols = append(v.vols, q)
		v.labels = append(v.labels, label)
	}
	return nil
}

// OccupancyTSDF turns an occupancy grid (values > 0.5 inside) into a TSDF
// like Shapes3D's: for each voxel the distance m to the nearest voxel
// centre of the other kind (searched within the truncation; outside the
// grid counts as outside), the surface taken halfway, v = ±clamp((m - 0.5)/τ,
// 0, 1), + inside. A summed-volume table finds the voxels whose whole
// search window is of their own kind (they saturate at ±1), so only those
// near the surface are searched.
func OccupancyTSDF(occ []float32, side int) []float32 {
	R := int(math.Ceil(Shape3DTruncation)) + 1
	n := side + 1
	sum := make([]int32, n*n*n) // sum[z][y][x] = inside voxels in [0,z)×[0,y)×[0,x)
	at := func(z, y, x int) int32 { return sum[(z*n+y)*n+x] }
	for z := 1; z < n; z++ {
		for y := 1; y < n; y++ {
			for x := 1; x < n; x++ {
				var v int32
				if occ[((z-1)*side+y-1)*side+x-1] > 0.5 {
					v = 1
				}
				sum[(z*n+y)*n+x] = v + at(z-1, y, x) + at(z, y-1, x) + at(z, y, x-1) -
					at(z-1, y-1, x) - at(z-1, y, x-1) - at(z, y-1, x-1) + at(z-1, y-1, x-1)
			}
		}
	}
	box := func(z0, y0, x0, z1, y1, x1 int) int32 { // inside voxels in [z0,z1)×[y0,y1)×[x0,x1)
		return at(z1, y1, x1) - at(z0, y1, x1) - at(z1, y0, x1) - at(z1, y1, x0) +
			at(z0, y0, x1) + at(z0, y1, x0) + at(z1, y0, x0) - at(z0, y0, x0)
	}
	in := func(z, y, x int) bool { return occ[(z*side+y)*side+x] > 0.5 }
	out := make([]float32, len(occ))
	for z := range side {
		for y := range side {
			for x := range side {
				me := in(z, y, x)
				z0, y0, x0 := max(z-R, 0), max(y-R, 0), max(x-R, 0)
				z1, y1, x1 := min(z+R+1, side), min(y+R+1, side), min(x+R+1, side)
				count, full := box(z0, y0, x0, z1, y1, x1), int32((z1-z0)*(y1-y0)*(x1-x0))
				clipped := z0 != z-R || y0 != y-R || x0 != x-R || z1 != z+R+1 || y1 != y+R+1 || x1 != x+R+1
				best := math.Inf(1)
				if (me && count < full) || (me && clipped) || (!me && count > 0) {
					for dz := -R; dz <= R; dz++ {
						for dy := -R; dy <= R; dy++ {
							for dx := -R; dx <= R; dx++ {
								zz, yy, xx := z+dz, y+dy, x+dx
								other := !me // outside the grid counts as outside
								if zz >= 0 && yy >= 0 && xx >= 0 && zz < side && yy < side && xx < side {
									other = in(zz, yy, xx) != me
								}
								if other {
									best = math.Min(best, math.Sqrt(float64(dx*dx+dy*dy+dz*dz)))
								}
							}
						}
					}
				}
				v := math.Min(1, (best-0.5)/Shape3DTruncation)
				if !me {
					v = -v
				}
				out[(z*side+y)*side+x] = float32(v)
			}
		}
	}
	return out
}

var npyShape = regexp.MustCompile(`'shape'\s*:\s*\(([^)]*)\)`)
var npyDescr = regexp.MustCompile(`'descr'\s*:\s*'([^']*)'`)

// readNPYVolumes reads a (N, D, H, W) or (D, H, W) array of cubes.
func readNPYVolumes(path string) (vols [][]float32, side int, occupancy bool, err error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, 0, false, err
	}
	defer f.Close()
	r := bufio.NewReader(f)
	magic := make([]byte, 8)
	if _, err := io.ReadFull(r, magic); err != nil || string(magic[:6]) != "\x93NUMPY" {
		return nil, 0, false, fmt.Errorf("%s: not a .npy file (no \\x93NUMPY magic)", path)
	}
	var hlen int
	switch magic[6] {
	case 1:
		var n uint16
		err = binary.Read(r, binary.LittleEndian, &n)
		hlen = int(n)
	case 2, 3:
		var n uint32
		err = binary.Read(r, binary.LittleEndian, &n)
		hlen = int(n)
	default:
		return nil, 0, false, fmt.Errorf("%s: .npy version %d, want 1, 2 or 3", path, magic[6])
	}
	if err != nil || hlen > 1<<16 {
		return nil, 0, false, fmt.Errorf("%s: .npy header length unreadable or over 64 KiB", path)
	}
	header := make([]byte, hlen)
	if _, err := io.ReadFull(r, header); err != nil {
		return nil, 0, false, fmt.Errorf("%s: .npy header: %v", path, err)
	}
	h := string(header)
	if strings.Contains(h, "'fortran_order': True") {
		return nil, 0, false, fmt.Errorf("%s: field fortran_order is True, want a C-order array", path)
	}
	dm := npyDescr.FindStringSubmatch(h)
	sm := npyShape.FindStringSubmatch(h)
	if dm == nil || sm == nil {
		return nil, 0, false, fmt.Errorf("%s: .npy header without descr or shape: %q", path, h)
	}
	var shape []int
	for _, s := range strings.Split(sm[1], ",") {
		if s = strings.TrimSpace(s); s == "" {
			continue
		}
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 {
			return nil, 0, false, fmt.Errorf("%s: field shape (%s): want non-negative integers", path, sm[1])
		}
		shape = append(shape, n)
	}
	if len(shape) == 3 {
		shape = append([]int{1}, shape...)
	}
	if len(shape) != 4 || shape[1] != shape[2] || shape[2] != shape[3] || shape[1] < 2 || shape[1] > maxVoxelSide || shape[0] < 1 || shape[0] > 1<<20 {
		return nil, 0, false, fmt.Errorf("%s: field shape (%s): want (N, S, S, S) or (S, S, S) cubes with 2 ≤ S ≤ %d", path, sm[1], maxVoxelSide)
	}
	side = shape[1]
	var size int
	var decode func([]byte) float64
	switch dm[1] {
	case "|b1", "|u1":
		size, decode, occupancy = 1, func(b []byte) float64 { return float64(b[0]) }, true
	case "|i1":
		size, decode, occupancy = 1, func(b []byte) float64 { return float64(int8(b[0])) }, true
	case "<f4":
		size, decode = 4, func(b []byte) float64 { return float64(math.Float32frombits(binary.LittleEndian.Uint32(b))) }
	case "<f8":
		size, decode = 8, func(b []byte) float64 { return math.Float64frombits(binary.LittleEndian.Uint64(b)) }
	default:
		return nil, 0, false, fmt.Errorf("%s: field descr %q: want |b1, |u1, |i1, <f4 or <f8", path, dm[1])
	}
	n := side * side * side
	buf := make([]byte, n*size)
	binary01 := true
	for range shape[0] {
		if _, err := io.ReadFull(r, buf); err != nil {
			return nil, 0, false, fmt.Errorf("%s: data ends before %d volumes of %d³: %v", path, shape[0], side, err)
		}
		vol := make([]float32, n)
		for i := range vol {
			x := decode(buf[i*size : (i+1)*size])
			if math.IsNaN(x) {
				return nil, 0, false, fmt.Errorf("%s: volume %d holds NaN", path, len(vols))
			}
			if x != 0 && x != 1 {
				binary01 = false
			}
			vol[i] = float32(x)
		}
		vols = append(vols, vol)
	}
	return vols, side, occupancy || binary01, nil
}

// readBinvox reads a binvox 1 file into a (z, y, x) occupancy grid, y up
// (binvox stores x slowest, then z, with y running fastest).
func readBinvox(path string) ([]float32, int, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, 0, err
	}
	r := bufio.NewReader(bytes.NewReader(raw))
	line := func() (string, error) {
		s, err := r.ReadString('\n')
		return strings.TrimSpace(s), err
	}
	if s, err := line(); err != nil || !strings.HasPrefix(s, "#binvox") {
		return nil, 0, fmt.Errorf("%s: not a binvox file (first line %q)", path, s)
	}
	side := 0
	for {
		s, err := line()
		if err != nil {
			return nil, 0, fmt.Errorf("%s: header ends without a data line", path)
		}
		if s == "data" {
			break
		}
		if f := strings.Fields(s); len(f) == 4 && f[0] == "dim" {
			d := make([]int, 3)
			for i := range d {
				if d[i], err = strconv.Atoi(f[i+1]); err != nil {
					return nil, 0, fmt.Errorf("%s: field dim %q: want three integers", path, s)
				}
			}
			if d[0] != d[1] || d[1] != d[2] || d[0] < 2 || d[0] > maxVoxelSide {
				return nil, 0, fmt.Errorf("%s: field dim %v: want a cube of side 2 … %d", path, d, maxVoxelSide)
			}
			side = d[0]
		}
	}
	if side == 0 {
		return nil, 0, fmt.Errorf("%s: no dim line in the header", path)
	}
	n := side * side * side
	flat := make([]float32, 0, n)
	for len(flat) < n {
		var pair [2]byte
		if _, err := io.ReadFull(r, pair[:]); err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
				return nil, 0, fmt.Errorf("%s: run-length data covers %d of %d voxels", path, len(flat), n)
			}
			return nil, 0, err
		}
		if int(pair[1]) > n-len(flat) || pair[1] == 0 {
			return nil, 0, fmt.Errorf("%s: a run of %d at voxel %d overflows the %d³ grid", path, pair[1], len(flat), side)
		}
		flat = append(flat, slices.Repeat([]float32{float32(min(pair[0], 1))}, int(pair[1]))...)
	}
	vol := make([]float32, n)
	for x := range side {
		for z := range side {
			for y := range side {
				vol[(z*side+y)*side+x] = flat[(x*side+z)*side+y]
			}
		}
	}
	return vol, side, nil
}
