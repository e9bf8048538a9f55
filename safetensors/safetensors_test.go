package safetensors_test

import (
	"bytes"
	"encoding/binary"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/godiffuse/godiffuse/safetensors"
)

func TestSafeTensorsRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.safetensors")
	in := []safetensors.Tensor{
		{Name: "a", DType: safetensors.F32, Shape: []int{2, 3}, F: []float32{1, -2, 3.5, 0, float32(math.Inf(1)), 1e-30}},
		{Name: "h", DType: safetensors.F16, Shape: []int{4}, F: []float32{1, -0.5, 65504, 5.960464477539063e-08}},
		{Name: "b", DType: safetensors.BF16, Shape: []int{2}, F: []float32{1, -3}},
		{Name: "i", DType: safetensors.I64, Shape: []int{3}, I: []int64{-1, 0, 1 << 40}},
		{Name: "s", DType: safetensors.F32, Shape: []int{}, F: []float32{7}},
		{Name: "z", DType: safetensors.F32, Shape: []int{0, 5}, F: []float32{}},
	}
	if err := safetensors.Write(path, in, map[string]string{"k": "v"}); err != nil {
		t.Fatal(err)
	}
	st, err := safetensors.Read(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Metadata["k"] != "v" {
		t.Fatalf("metadata %v", st.Metadata)
	}
	for _, w := range in {
		if w.DType == safetensors.I64 {
			got, shape, err := st.Int64(w.Name)
			if err != nil || len(got) != len(w.I) || len(shape) != len(w.Shape) {
				t.Fatalf("%s: %v %v %v", w.Name, got, shape, err)
			}
			for i := range got {
				if got[i] != w.I[i] {
					t.Fatalf("%s: %v want %v", w.Name, got, w.I)
				}
			}
			continue
		}
		got, shape, err := st.Float32(w.Name)
		if err != nil || len(got) != len(w.F) || len(shape) != len(w.Shape) {
			t.Fatalf("%s: %v %v %v", w.Name, got, shape, err)
		}
		for i := range got {
			if got[i] != w.F[i] {
				t.Fatalf("%s: %v want %v (exactly representable)", w.Name, got, w.F)
			}
		}
	}
	// No temporary file is left behind.
	entries, _ := os.ReadDir(filepath.Dir(path))
	if len(entries) != 1 {
		t.Fatalf("directory holds %d entries, want only the file", len(entries))
	}
}

func TestF16Conversion(t *testing.T) {
	// Every half-precision bit pattern survives f16 -> f32 -> f16 (NaNs stay NaN).
	for h := 0; h < 1<<16; h++ {
		f := safetensors.F16ToF32(uint16(h))
		back := safetensors.F32ToF16(f)
		if f != f {
			if safetensors.F16ToF32(back) == safetensors.F16ToF32(back) {
				t.Fatalf("NaN %#x came back as %#x", h, back)
			}
			continue
		}
		if back != uint16(h) {
			t.Fatalf("%#x -> %g -> %#x", h, f, back)
		}
	}
	// Subnormals and rounding.
	if v := safetensors.F16ToF32(0x0001); v != 5.960464477539063e-08 {
		t.Fatalf("smallest subnormal = %g", v)
	}
	if h := safetensors.F32ToF16(1 + 1.0/2048); h != 0x3c00 { // halfway between 1 and 1+2⁻¹⁰: ties to even
		t.Fatalf("1+2^-11 -> %#x, want 0x3c00", h)
	}
}

// build assembles a file from a raw header and body.
func build(header string, body []byte) []byte {
	var b bytes.Buffer
	binary.Write(&b, binary.LittleEndian, uint64(len(header)))
	b.WriteString(header)
	b.Write(body)
	return b.Bytes()
}

func TestSafeTensorsRejectsBadFiles(t *testing.T) {
	body8 := make([]byte, 8)
	cases := []struct {
		name, want string
		data       []byte
	}{
		{"short", "shorter than", []byte{1, 2, 3}},
		{"header too long", "header length", append([]byte{0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0}, '{', '}')},
		{"not json", "JSON", build(`{"a": nope}`, nil)},
		{"not an object", "start with", build(`[1,2]`, nil)},
		{"bad dtype", `"Q8"`, build(`{"a":{"dtype":"Q8","shape":[2],"data_offsets":[0,8]}}`, body8)},
		{"size mismatch", "needs 12 bytes", build(`{"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}`, body8)},
		{"outside", "outside the data section", build(`{"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}`, body8)},
		{"negative dim", "bad dimension", build(`{"a":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}}`, body8)},
		{"huge shape", "needs more bytes", build(`{"a":{"dtype":"F32","shape":[2147483647,2147483647,2147483647],"data_offsets":[0,8]}}`, body8)},
		{"overlap", "overlap", build(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}`, body8)},
		{"duplicate", "twice", build(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}`, body8)},
		{"missing field", "want the fields", build(`{"a":{"dtype":"F32","shape":[2]}}`, body8)},
		{"offsets reversed", "outside", build(`{"a":{"dtype":"F32","shape":[0],"data_offsets":[8,4]}}`, body8)},
		{"bad metadata", "__metadata__", build(`{"__metadata__":{"k":1}}`, nil)},
		{"trailing", "trailing bytes", build(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}} x`, body8)},
	}
	for _, c := range cases {
		_, err := safetensors.Parse("bad.safetensors", c.data)
		if err == nil {
			t.Errorf("%s: accepted", c.name)
			continue
		}
		if !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "bad.safetensors") {
			t.Errorf("%s: error %q should name the file and mention %q", c.name, err, c.want)
		}
	}
}

// FuzzParse: no input may panic the reader or make it allocate
// more than the input's size; whatever it accepts must decode.
func FuzzParse(f *testing.F) {
	f.Add(build(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"__metadata__":{"x":"y"}}`, make([]byte, 8)))
	f.Add(build(`{"h":{"dtype":"F16","shape":[2,2],"data_offsets":[0,8]},"i":{"dtype":"I64","shape":[],"data_offsets":[8,16]}}`, make([]byte, 16)))
	f.Add(build(`{}`, nil))
	f.Fuzz(func(t *testing.T, data []byte) {
		st, err := safetensors.Parse("fuzz", data)
		if err != nil {
			return
		}
		for _, name := range st.Names() {
			info := st.Tensors[name]
			if info.End > len(data) {
				t.Fatalf("%s: range beyond the input", name)
			}
			switch info.DType {
			case safetensors.I64, safetensors.I32:
				if _, _, err := st.Int64(name); err != nil {
					t.Fatal(err)
				}
			case safetensors.U8:
				if _, _, err := st.Uint8(name); err != nil {
					t.Fatal(err)
				}
			default:
				if _, _, err := st.Float32(name); err != nil {
					t.Fatal(err)
				}
			}
		}
	})
}
