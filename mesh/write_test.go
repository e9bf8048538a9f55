package mesh

import (
	"bytes"
	"encoding/binary"
	"math"
	"strings"
	"testing"
)

// TestEncode writes a small closed mesh in every format and reads back
// what a viewer would: OBJ's counts and 1-based indices, STL's size and
// triangle count, PLY's header and binary body size.
func TestEncode(t *testing.T) {
	m, _ := Extract(field(10, func(x, y, z float64) float64 { return 3 - math.Sqrt(sq(x-4.5)+sq(y-4.5)+sq(z-4.5)) }), 10, 10, 10, 0)
	V, F := len(m.Vertices), len(m.Triangles)
	var obj, stl, ply bytes.Buffer
	for _, c := range []struct {
		format string
		buf    *bytes.Buffer
	}{{"obj", &obj}, {"STL", &stl}, {"ply", &ply}} {
		if err := m.Encode(c.buf, c.format); err != nil {
			t.Fatal(err)
		}
	}
	lines := strings.Split(obj.String(), "\n")
	count := map[string]int{}
	for _, l := range lines {
		if f := strings.Fields(l); len(f) > 0 {
			count[f[0]]++
		}
	}
	if count["v"] != V || count["vn"] != V || count["f"] != F {
		t.Fatalf("obj: %v for %d vertices and %d triangles", count, V, F)
	}
	if !strings.Contains(obj.String(), "f 1//1 ") && !strings.Contains(obj.String(), "//1 ") {
		t.Fatal("obj: indices are not 1-based")
	}
	if stl.Len() != 84+50*F || binary.LittleEndian.Uint32(stl.Bytes()[80:]) != uint32(F) {
		t.Fatalf("stl: %d bytes for %d triangles", stl.Len(), F)
	}
	head, body, ok := bytes.Cut(ply.Bytes(), []byte("end_header\n"))
	if !ok || !bytes.Contains(head, []byte("element face "+itoa(F))) || len(body) != 24*V+13*F {
		t.Fatalf("ply: header %q, body %d bytes", head, len(body))
	}
	if err := m.Encode(&obj, "fbx"); err == nil {
		t.Fatal("format fbx accepted")
	}
}

func itoa(n int) string {
	var b []byte
	for ; n > 0 || len(b) == 0; n /= 10 {
		b = append([]byte{byte('0' + n%10)}, b...)
	}
	return string(b)
}
