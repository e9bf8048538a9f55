package mesh

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"strings"
)

// ---------------------------------------------------------------------------
// Mesh files: Wavefront OBJ (text, with vertex normals), binary STL (one
// facet normal per triangle, as 3-D printing tools read it) and binary
// little-endian PLY (vertices with normals, faces as index lists).
// ---------------------------------------------------------------------------

// Formats lists the file formats Encode writes, by file extension.
var Formats = []string{"obj", "stl", "ply"}

// Encode writes the mesh in format (obj, stl or ply) to w.
func (m *Mesh) Encode(w io.Writer, format string) error {
	bw := bufio.NewWriter(w)
	var err error
	switch strings.ToLower(format) {
	case "obj":
		err = m.writeOBJ(bw)
	case "stl":
		err = m.writeSTL(bw)
	case "ply":
		err = m.writePLY(bw)
	default:
		return fmt.Errorf("mesh: format %q, want one of %s", format, strings.Join(Formats, ", "))
	}
	if err != nil {
		return err
	}
	return bw.Flush()
}

// Normals returns area-weighted unit vertex normals.
func (m *Mesh) Normals() [][3]float32 {
	n := make([][3]float32, len(m.Vertices))
	for _, t := range m.Triangles {
		a, b, c := m.Vertices[t[0]], m.Vertices[t[1]], m.Vertices[t[2]]
		fn := cross(sub(b, a), sub(c, a)) // length = 2·area
		for _, i := range t {
			n[i] = add(n[i], fn)
		}
	}
	for i, v := range n {
		if l := float32(math.Sqrt(float64(dot(v, v)))); l > 0 {
			n[i] = [3]float32{v[0] / l, v[1] / l, v[2] / l}
		}
	}
	return n
}

// Transformed returns a copy with every vertex mapped to p·scale + offset.
func (m *Mesh) Transformed(scale float32, offset [3]float32) *Mesh {
	out := &Mesh{Vertices: make([][3]float32, len(m.Vertices)), Triangles: m.Triangles}
	for i, p := range m.Vertices {
		out.Vertices[i] = [3]float32{p[0]*scale + offset[0], p[1]*scale + offset[1], p[2]*scale + offset[2]}
	}
	return out
}

func (m *Mesh) writeOBJ(w *bufio.Writer) error {
	fmt.Fprintf(w, "# godiffuse mesh: %d vertices, %d triangles\n", len(m.Vertices), len(m.Triangles))
	for _, v := range m.Vertices {
		fmt.Fprintf(w, "v %g %g %g\n", v[0], v[1], v[2])
	}
	for _, n := range m.Normals() {
		fmt.Fprintf(w, "vn %.4f %.4f %.4f\n", n[0], n[1], n[2])
	}
	for _, t := range m.Triangles {
		a, b, c := t[0]+1, t[1]+1, t[2]+1
		if _, err := fmt.Fprintf(w, "f %d//%d %d//%d %d//%d\n", a, a, b, b, c, c); err != nil {
			return err
		}
	}
	return nil
}

func (m *Mesh) writeSTL(w *bufio.Writer) error {
	var header [80]byte
	copy(header[:], "binary STL written by godiffuse")
	w.Write(header[:])
	binary.Write(w, binary.LittleEndian, uint32(len(m.Triangles)))
	rec := make([]float32, 12)
	for _, t := range m.Triangles {
		a, b, c := m.Vertices[t[0]], m.Vertices[t[1]], m.Vertices[t[2]]
		n := cross(sub(b, a), sub(c, a))
		if l := float32(math.Sqrt(float64(dot(n, n)))); l > 0 {
			n = [3]float32{n[0] / l, n[1] / l, n[2] / l}
		}
		copy(rec, n[:])
		copy(rec[3:], a[:])
		copy(rec[6:], b[:])
		copy(rec[9:], c[:])
		binary.Write(w, binary.LittleEndian, rec)
		if err := binary.Write(w, binary.LittleEndian, uint16(0)); err != nil {
			return err
		}
	}
	return nil
}

func (m *Mesh) writePLY(w *bufio.Writer) error {
	fmt.Fprintf(w, "ply\nformat binary_little_endian 1.0\ncomment godiffuse mesh\nelement vertex %d\n"+
		"property float x\nproperty float y\nproperty float z\nproperty float nx\nproperty float ny\nproperty float nz\n"+
		"element face %d\nproperty list uchar int vertex_indices\nend_header\n", len(m.Vertices), len(m.Triangles))
	normals := m.Normals()
	for i, v := range m.Vertices {
		binary.Write(w, binary.LittleEndian, v)
		binary.Write(w, binary.LittleEndian, normals[i])
	}
	for _, t := range m.Triangles {
		w.WriteByte(3)
		if err := binary.Write(w, binary.LittleEndian, t); err != nil {
			return err
		}
	}
	return nil
}
