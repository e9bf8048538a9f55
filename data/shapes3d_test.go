package data

import (
	"encoding/binary"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestShapes3D checks what the dataset promises: seeded, classes in turn,
// values in [-1, 1], every solid whole inside the grid (the border is
// outside), a surface present, and sizes that vary.
func TestShapes3D(t *testing.T) {
	ds, err := Shapes3D(70, 1, "train")
	if err != nil {
		t.Fatal(err)
	}
	c, h, w := ds.Shape()
	if c != 1 || h != 32*32 || w != 32 {
		t.Fatalf("shape %d %d %d", c, h, w)
	}
	n := 32 * 32 * 32
	a, b := make([]float32, n), make([]float32, n)
	inside := map[int][]int{}
	for i := range ds.Len() {
		l := ds.Image(i, a)
		if l != i%7 {
			t.Fatalf("volume %d has label %d", i, l)
		}
		ds.Image(i, b)
		if !slices.Equal(a, b) {
			t.Fatalf("volume %d differs between two reads", i)
		}
		count := 0
		for k, v := range a {
			if v < -1 || v > 1 || math.IsNaN(float64(v)) {
				t.Fatalf("volume %d voxel %d = %g", i, k, v)
			}
			if v > 0 {
				count++
			}
			z, y, x := k/1024, k/32%32, k%32
			if (z == 0 || y == 0 || x == 0 || z == 31 || y == 31 || x == 31) && v >= 0 {
				t.Fatalf("volume %d (%s) touches the border at (%d, %d, %d)", i, Shape3DClasses[l], z, y, x)
			}
		}
		if count < 100 {
			t.Fatalf("volume %d (%s) has only %d voxels inside", i, Shape3DClasses[l], count)
		}
		inside[l] = append(inside[l], count)
	}
	for l, counts := range inside {
		if slices.Min(counts) == slices.Max(counts) {
			t.Errorf("%s: every solid has %d voxels inside", Shape3DClasses[l], counts[0])
		}
	}
	test, _ := Shapes3D(7, 1, "test")
	test.Image(0, b)
	ds.Image(0, a)
	if slices.Equal(a, b) {
		t.Fatal("the test split repeats the train split")
	}
	// The TSDF's zero level is the solid's surface: a sphere's voxel count
	// inside is close to its volume.
	s := Solid3D{Class: 0, Centre: [3]float64{15.5, 15.5, 15.5}, Rot: [3][3]float64{{1, 0, 0}, {0, 1, 0}, {0, 0, 1}}, Dims: [3]float64{10}}
	s.TSDF(a, 32)
	count := 0
	for _, v := range a {
		if v > 0 {
			count++
		}
	}
	if want := 4.0 / 3 * math.Pi * 1000; math.Abs(float64(count)-want) > 0.03*want {
		t.Fatalf("sphere of radius 10: %d voxels inside, want about %.0f", count, want)
	}
	if _, err := Shapes3D(0, 1, "train"); err == nil {
		t.Fatal("0 volumes accepted")
	}
	if _, err := Shapes3D(5, 1, "val"); err == nil {
		t.Fatal("split val accepted")
	}
}

// writeNPY writes a little .npy file for the tests.
func writeNPY(t *testing.T, path, descr string, shape string, data []byte) {
	t.Helper()
	h := "{'descr': '" + descr + "', 'fortran_order': False, 'shape': " + shape + ", }"
	h += strings.Repeat(" ", 63-(10+len(h))%64) + "\n"
	out := append([]byte("\x93NUMPY\x01\x00"), byte(len(h)), byte(len(h)>>8))
	out = append(append(out, h...), data...)
	if err := os.WriteFile(path, out, 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestLoadVoxels(t *testing.T) {
	dir := t.TempDir()
	// A bool cube of side 8 with a 4³ block inside, in class folder "block";
	// the same block as binvox in class folder "box".
	side := 8
	occ := make([]byte, side*side*side)
	for z := 2; z < 6; z++ {
		for y := 2; y < 6; y++ {
			for x := 2; x < 6; x++ {
				occ[(z*side+y)*side+x] = 1
			}
		}
	}
	os.MkdirAll(filepath.Join(dir, "block"), 0o755)
	os.MkdirAll(filepath.Join(dir, "box"), 0o755)
	writeNPY(t, filepath.Join(dir, "block", "a.npy"), "|b1", "(8, 8, 8)", occ)
	// binvox order: x slowest, then z, y fastest; run-length pairs.
	var flat []byte
	for x := range side {
		for z := range side {
			for y := range side {
				flat = append(flat, occ[(z*side+y)*side+x])
			}
		}
	}
	var rle []byte
	for i := 0; i < len(flat); {
		j := i
		for j < len(flat) && flat[j] == flat[i] && j-i < 255 {
			j++
		}
		rle = append(rle, flat[i], byte(j-i))
		i = j
	}
	bv := append([]byte("#binvox 1\ndim 8 8 8\ntranslate 0 0 0\nscale 1\ndata\n"), rle...)
	os.WriteFile(filepath.Join(dir, "box", "b.binvox"), bv, 0o644)
	ds, err := LoadVoxels(dir)
	if err != nil {
		t.Fatal(err)
	}
	if ds.Len() != 2 || !slices.Equal(ds.Classes(), []string{"block", "box"}) {
		t.Fatalf("%d volumes, classes %v", ds.Len(), ds.Classes())
	}
	a, b := make([]float32, 512), make([]float32, 512)
	if ds.Image(0, a) != 0 || ds.Image(1, b) != 1 {
		t.Fatal("labels")
	}
	if !slices.Equal(a, b) {
		t.Fatal("the .npy and the .binvox of one block differ")
	}
	for i, o := range occ {
		if (o == 1) != (a[i] > 0) {
			t.Fatalf("voxel %d: occupancy %d but TSDF %g", i, o, a[i])
		}
	}
	// A float field in [-1, 1] is kept as it is.
	field := make([]byte, 4*512)
	for i := range 512 {
		binary.LittleEndian.PutUint32(field[4*i:], math.Float32bits(float32(i%5)/2-1))
	}
	writeNPY(t, filepath.Join(dir, "f.npy"), "<f4", "(1, 8, 8, 8)", field)
	fs, err := LoadVoxels(filepath.Join(dir, "f.npy"))
	if err != nil {
		t.Fatal(err)
	}
	fs.Image(0, a)
	if math.Abs(float64(a[3])-0.5) > 0.01 {
		t.Fatalf("field value 0.5 read as %g", a[3])
	}
	for _, bad := range []struct{ name, descr, shape, want string }{
		{"c.npy", "<f4", "(4, 8, 8)", "shape"},
		{"d.npy", "<c8", "(8, 8, 8)", "descr"},
		{"e.npy", "<f4", "(2, 8, 8, 8)", "data ends"},
	} {
		writeNPY(t, filepath.Join(dir, bad.name), bad.descr, bad.shape, field)
		if _, err := LoadVoxels(filepath.Join(dir, bad.name)); err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("%s: error %v does not say %q", bad.name, err, bad.want)
		}
	}
	os.WriteFile(filepath.Join(dir, "g.binvox"), []byte("#binvox 1\ndim 8 8 8\ndata\n\x01\xff\x01\xff\x01\xff"), 0o644)
	if _, err := LoadVoxels(filepath.Join(dir, "g.binvox")); err == nil || !strings.Contains(err.Error(), "overflows") {
		t.Errorf("overflowing binvox: %v", err)
	}
}

// FuzzLoadVoxels feeds arbitrary bytes to the .npy and .binvox readers:
// an error or a dataset, never a panic or a huge allocation.
func FuzzLoadVoxels(f *testing.F) {
	npy := func(descr, shape string, body []byte) []byte {
		h := "{'descr': '" + descr + "', 'fortran_order': False, 'shape': " + shape + ", }\n"
		return append(append([]byte("\x93NUMPY\x01\x00"), append([]byte{byte(len(h)), byte(len(h) >> 8)}, h...)...), body...)
	}
	f.Add(true, npy("|b1", "(2, 2, 2)", []byte{1, 0, 1, 0, 0, 1, 0, 1}))
	f.Add(true, npy("<f4", "(1, 2, 2, 2)", make([]byte, 32)))
	f.Add(true, npy("<f8", "(256, 256, 256)", nil))
	f.Add(false, []byte("#binvox 1\ndim 2 2 2\ndata\n\x01\x04\x00\x04"))
	f.Add(false, []byte("#binvox 1\ndim 2 2 2\ndata\n\x01\xff"))
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, isNPY bool, raw []byte) {
		path := filepath.Join(dir, "v.binvox")
		if isNPY {
			path = filepath.Join(dir, "v.npy")
		}
		if err := os.WriteFile(path, raw, 0o644); err != nil {
			t.Fatal(err)
		}
		ds, err := LoadVoxels(path)
		if err != nil {
			return
		}
		_, side, _, _ := ds.VolumeShape()
		v := make([]float32, side*side*side)
		for i := range ds.Len() {
			ds.Image(i, v)
		}
	})
}

// TestOccupancyTSDFAgainstSearch: the summed-volume shortcut gives what a
// full search of every voxel's window gives.
func TestOccupancyTSDFAgainstSearch(t *testing.T) {
	side, R := 14, int(math.Ceil(Shape3DTruncation))+1
	occ := make([]float32, side*side*side)
	for i := range occ { // two overlapping balls and some noise
		z, y, x := float64(i/(side*side)), float64(i/side%side), float64(i%side)
		if sq(x-4)+sq(y-5)+sq(z-6) < 12 || sq(x-9)+sq(y-8)+sq(z-7) < 20 || (i*7919)%53 == 0 {
			occ[i] = 1
		}
	}
	got := OccupancyTSDF(occ, side)
	for i := range occ {
		z, y, x := i/(side*side), i/side%side, i%side
		me := occ[i] > 0.5
		best := math.Inf(1)
		for dz := -R; dz <= R; dz++ {
			for dy := -R; dy <= R; dy++ {
				for dx := -R; dx <= R; dx++ {
					zz, yy, xx := z+dz, y+dy, x+dx
					other := !me
					if zz >= 0 && yy >= 0 && xx >= 0 && zz < side && yy < side && xx < side {
						other = (occ[(zz*side+yy)*side+xx] > 0.5) != me
					}
					if other {
						best = math.Min(best, math.Sqrt(float64(dx*dx+dy*dy+dz*dz)))
					}
				}
			}
		}
		want := math.Min(1, (best-0.5)/Shape3DTruncation)
		if !me {
			want = -want
		}
		if float32(want) != got[i] {
			t.Fatalf("voxel (%d, %d, %d): %g, want %g", z, y, x, got[i], want)
		}
	}
}
