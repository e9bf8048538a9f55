// Package safetensors reads and writes the safetensors format of Hugging
// Face: validated reading (memory-mapped where the platform allows),
// atomic writing, and the F16/BF16 conversions.
package safetensors

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"runtime"
	"slices"
	"sort"

	"github.com/godiffuse/godiffuse/internal/atomicfile"
)

// ---------------------------------------------------------------------------
// safetensors: an 8-byte little-endian header length N, N bytes of JSON
// {"name": {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]}, ...,
// "__metadata__": {"k": "v"}}, then the data; offsets are relative to the
// byte after the header. The reader validates every field before it trusts
// it, so a damaged or hostile file gets an error naming the file and the
// tensor, never a panic or an allocation larger than the file.
// ---------------------------------------------------------------------------

// MaxHeaderSize bounds the JSON header (the reference implementation uses 100 MB).
const MaxHeaderSize = 100 << 20

// DType is a safetensors element type.
type DType string

// Element types the reader decodes.
const (
	F32  DType = "F32"
	F16  DType = "F16"
	BF16 DType = "BF16"
	F64  DType = "F64"
	I64  DType = "I64"
	I32  DType = "I32"
	U8   DType = "U8"
)

var sizes = map[DType]int{F32: 4, F16: 2, BF16: 2, F64: 8, I64: 8, I32: 4, U8: 1}

// Info describes one tensor of a safetensors file.
type Info struct {
	Name       string
	DType      DType
	Shape      []int
	Begin, End int // byte range inside the data section
}

// File is a parsed, validated safetensors file, memory-mapped where
// the platform allows (Read) or held in memory (Parse).
// Every accessor returns a copy, so Close may unmap the file at any time;
// an unreachable File is unmapped by the garbage collector.
type File struct {
	Path     string
	Metadata map[string]string
	Tensors  map[string]Info
	data     []byte
	mapping  *fileMapping
}

type fileMapping struct{ release func() }

// Close unmaps a mapped file; the File must not be read afterwards.
func (f *File) Close() {
	if f.mapping != nil && f.mapping.release != nil {
		f.mapping.release()
		f.mapping.release = nil
		f.data = nil
	}
}

// DropPages tells the OS that tensor name's bytes of a mapped file will not
// be read again (they leave the resident set; a later read maps them back).
// Loaders call it after copying each tensor, so a checkpoint's file pages
// and the model's memory do not add up.
func (f *File) DropPages(name string) {
	if info, ok := f.Tensors[name]; ok && f.mapping != nil {
		dropPages(f.data[info.Begin:info.End])
	}
}

// Names returns the tensor names in sorted order.
func (f *File) Names() []string {
	names := make([]string, 0, len(f.Tensors))
	for n := range f.Tensors {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Read reads and validates path.
func Read(path string) (*File, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s: not a regular file", path)
	}
	file, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer file.Close() // the mapping outlives the descriptor
	data, release, err := mapFile(file, int(fi.Size()))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	st, err := Parse(path, data)
	if err != nil {
		release()
		return nil, err
	}
	m := &fileMapping{release: release}
	st.mapping = m
	runtime.AddCleanup(st, func(m *fileMapping) {
		if m.release != nil {
			m.release()
		}
	}, m)
	return st, nil
}

// Parse validates an in-memory safetensors file; name is used in
// error messages. The returned value keeps a reference to data.
func Parse(name string, data []byte) (*File, error) {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%s: invalid safetensors: %s", name, fmt.Sprintf(format, args...))
	}
	if len(data) < 8 {
		return nil, bad("file is %d bytes, shorter than the 8-byte header length", len(data))
	}
	hlen := binary.LittleEndian.Uint64(data[:8])
	if hlen > MaxHeaderSize || hlen > uint64(len(data)-8) {
		return nil, bad("header length %d exceeds the file (%d bytes) or the %d-byte limit", hlen, len(data), MaxHeaderSize)
	}
	header := data[8 : 8+hlen]
	body := data[8+hlen:]
	if len(header) == 0 || header[0] != '{' {
		return nil, bad("header does not start with '{'")
	}
	dec := json.NewDecoder(bytes.NewReader(header))
	dec.UseNumber()
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil, bad("header is not a JSON object")
	}
	f := &File{Path: name, Tensors: map[string]Info{}, data: body}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, bad("header JSON: %v", err)
		}
		key, _ := tok.(string)
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, bad("header JSON at %q: %v", key, err)
		}
		if key == "__metadata__" {
			if f.Metadata != nil {
				return nil, bad("duplicate __metadata__")
			}
			if err := json.Unmarshal(raw, &f.Metadata); err != nil {
				return nil, bad("__metadata__ must map strings to strings: %v", err)
			}
			if f.Metadata == nil {
				f.Metadata = map[string]string{}
			}
			continue
		}
		if _, dup := f.Tensors[key]; dup {
			return nil, bad("tensor %q appears twice", key)
		}
		info, err := parseInfo(key, raw, len(body))
		if err != nil {
			return nil, bad("%v", err)
		}
		f.Tensors[key] = info
	}
	if _, err := dec.Token(); err != nil {
		return nil, bad("header JSON: %v", err)
	}
	if rest, _ := io.ReadAll(dec.Buffered()); len(bytes.TrimSpace(rest)) != 0 {
		return nil, bad("trailing bytes after the header object")
	}
	// Ranges must not overlap.
	infos := make([]Info, 0, len(f.Tensors))
	for _, t := range f.Tensors {
		infos = append(infos, t)
	}
	slices.SortFunc(infos, func(a, b Info) int {
		if a.Begin != b.Begin {
			return a.Begin - b.Begin
		}
		return a.End - b.End
	})
	for i := 1; i < len(infos); i++ {
		if infos[i].Begin < infos[i-1].End {
			return nil, bad("tensors %q and %q overlap", infos[i-1].Name, infos[i].Name)
		}
	}
	return f, nil
}

func parseInfo(name string, raw json.RawMessage, bodyLen int) (Info, error) {
	var e struct {
		DType   *string       `json:"dtype"`
		Shape   []json.Number `json:"shape"`
		Offsets []json.Number `json:"data_offsets"`
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	dec.DisallowUnknownFields()
	if err := dec.Decode(&e); err != nil {
		return Info{}, fmt.Errorf("tensor %q: %v", name, err)
	}
	if e.DType == nil || e.Shape == nil || e.Offsets == nil {
		return Info{}, fmt.Errorf("tensor %q: want the fields dtype, shape and data_offsets", name)
	}
	info := Info{Name: name, DType: DType(*e.DType)}
	size, ok := sizes[info.DType]
	if !ok {
		return Info{}, fmt.Errorf("tensor %q: unsupported dtype %q (want F32, F16, BF16, F64, I64 or I32)", name, *e.DType)
	}
	n := uint64(1)
	for _, s := range e.Shape {
		v, err := s.Int64()
		if err != nil || v < 0 || v > math.MaxInt32 {
			return Info{}, fmt.Errorf("tensor %q: bad dimension %s in shape", name, s)
		}
		info.Shape = append(info.Shape, int(v))
		if n != 0 && v != 0 && uint64(v) > uint64(bodyLen)/n {
			// More elements than bytes: it cannot fit, and checking first keeps n from overflowing.
			return Info{}, fmt.Errorf("tensor %q: shape %v needs more bytes than the data section has (%d)", name, e.Shape, bodyLen)
		}
		n *= uint64(v)
	}
	if info.Shape == nil {
		info.Shape = []int{}
	}
	if len(e.Offsets) != 2 {
		return Info{}, fmt.Errorf("tensor %q: data_offsets must be [begin, end]", name)
	}
	b, err1 := e.Offsets[0].Int64()
	en, err2 := e.Offsets[1].Int64()
	if err1 != nil || err2 != nil || b < 0 || en < b || en > int64(bodyLen) {
		return Info{}, fmt.Errorf("tensor %q: data_offsets [%s, %s] outside the data section of %d bytes", name, e.Offsets[0], e.Offsets[1], bodyLen)
	}
	info.Begin, info.End = int(b), int(en)
	if want := n * uint64(size); want != uint64(info.End-info.Begin) {
		return Info{}, fmt.Errorf("tensor %q: shape %v of %s needs %d bytes, data_offsets give %d", name, info.Shape, info.DType, want, info.End-info.Begin)
	}
	return info, nil
}

// Float32 decodes tensor name (F32, F16, BF16 or F64) to float32.
func (f *File) Float32(name string) ([]float32, []int, error) {
	info, ok := f.Tensors[name]
	if !ok {
		return nil, nil, fmt.Errorf("%s: no tensor %q", f.Path, name)
	}
	raw := f.data[info.Begin:info.End]
	var out []float32
	switch info.DType {
	case F32:
		out = make([]float32, len(raw)/4)
		for i := range out {
			out[i] = math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:]))
		}
	case F16:
		out = make([]float32, len(raw)/2)
		for i := range out {
			out[i] = F16ToF32(binary.LittleEndian.Uint16(raw[2*i:]))
		}
	case BF16:
		out = make([]float32, len(raw)/2)
		for i := range out {
			out[i] = math.Float32frombits(uint32(binary.LittleEndian.Uint16(raw[2*i:])) << 16)
		}
	case F64:
		out = make([]float32, len(raw)/8)
		for i := range out {
			out[i] = float32(math.Float64frombits(binary.LittleEndian.Uint64(raw[8*i:])))
		}
	default:
		return nil, nil, fmt.Errorf("%s: tensor %q is %s, want a floating-point dtype", f.Path, name, info.DType)
	}
	return out, info.Shape, nil
}

// Float64 decodes tensor name (any floating-point dtype) to float64; F64
// tensors keep every bit.
func (f *File) Float64(name string) ([]float64, []int, error) {
	if info, ok := f.Tensors[name]; ok && info.DType == F64 {
		raw := f.data[info.Begin:info.End]
		out := make([]float64, len(raw)/8)
		for i := range out {
			out[i] = math.Float64frombits(binary.LittleEndian.Uint64(raw[8*i:]))
		}
		return out, info.Shape, nil
	}
	v, shape, err := f.Float32(name)
	if err != nil {
		return nil, nil, err
	}
	out := make([]float64, len(v))
	for i, x := range v {
		out[i] = float64(x)
	}
	return out, shape, nil
}

// Int64 decodes tensor name (I64 or I32) to int64.
func (f *File) Int64(name string) ([]int64, []int, error) {
	info, ok := f.Tensors[name]
	if !ok {
		return nil, nil, fmt.Errorf("%s: no tensor %q", f.Path, name)
	}
	raw := f.data[info.Begin:info.End]
	var out []int64
	switch info.DType {
	case I64:
		out = make([]int64, len(raw)/8)
		for i := range out {
			out[i] = int64(binary.LittleEndian.Uint64(raw[8*i:]))
		}
	case I32:
		out = make([]int64, len(raw)/4)
		for i := range out {
			out[i] = int64(int32(binary.LittleEndian.Uint32(raw[4*i:])))
		}
	default:
		return nil, nil, fmt.Errorf("%s: tensor %q is %s, want I64 or I32", f.Path, name, info.DType)
	}
	return out, info.Shape, nil
}

// Half returns tensor name as IEEE half-precision bits: F16 as stored, any
// other float type rounded to nearest even.
func (f *File) Half(name string) ([]uint16, []int, error) {
	info, ok := f.Tensors[name]
	if !ok {
		return nil, nil, fmt.Errorf("%s: no tensor %q", f.Path, name)
	}
	if info.DType == F16 {
		raw := f.data[info.Begin:info.End]
		out := make([]uint16, len(raw)/2)
		for i := range out {
			out[i] = binary.LittleEndian.Uint16(raw[2*i:])
		}
		return out, info.Shape, nil
	}
	v, shape, err := f.Float32(name)
	if err != nil {
		return nil, nil, err
	}
	out := make([]uint16, len(v))
	for i, x := range v {
		out[i] = F32ToF16(x)
	}
	return out, shape, nil
}

// Uint8 returns tensor name (U8) as bytes (a copy).
func (f *File) Uint8(name string) ([]uint8, []int, error) {
	info, ok := f.Tensors[name]
	if !ok {
		return nil, nil, fmt.Errorf("%s: no tensor %q", f.Path, name)
	}
	if info.DType != U8 {
		return nil, nil, fmt.Errorf("%s: tensor %q is %s, want U8", f.Path, name, info.DType)
	}
	return append([]uint8(nil), f.data[info.Begin:info.End]...), info.Shape, nil
}

// F16ToF32 converts an IEEE 754 half-precision value, subnormals included.
func F16ToF32(h uint16) float32 {
	sign := uint32(h>>15) << 31
	exp := uint32(h>>10) & 0x1f
	man := uint32(h) & 0x3ff
	switch {
	case exp == 0x1f: // Inf or NaN
		return math.Float32frombits(sign | 0x7f800000 | man<<13)
	case exp == 0 && man == 0:
		return math.Float32frombits(sign)
	case exp == 0: // subnormal: man·2⁻²⁴
		v := float32(man) * (1.0 / (1 << 24))
		if sign != 0 {
			v = -v
		}
		return v
	}
	return math.Float32frombits(sign | (exp+112)<<23 | man<<13)
}

// F32ToF16 converts to half precision with round-to-nearest-even.
func F32ToF16(f float32) uint16 {
	b := math.Float32bits(f)
	sign := uint16(b>>16) & 0x8000
	exp := int(b>>23) & 0xff
	man := b & 0x7fffff
	if exp == 0xff {
		if man != 0 {
			return sign | 0x7e00
		}
		return sign | 0x7c00
	}
	e := exp - 127 + 15
	if e >= 0x1f {
		return sign | 0x7c00
	}
	if e <= 0 {
		if e < -10 {
			return sign
		}
		man |= 0x800000
		shift := uint(14 - e)
		half := uint32(1) << (shift - 1)
		r := man >> shift
		if rem := man & (1<<shift - 1); rem > half || (rem == half && r&1 == 1) {
			r++
		}
		return sign | uint16(r)
	}
	r := uint32(e)<<10 | man>>13
	if rem := man & 0x1fff; rem > 0x1000 || (rem == 0x1000 && r&1 == 1) {
		r++
	}
	return sign | uint16(r)
}

// Tensor is one tensor to write: float data (F32, F16 or BF16), float64
// data (F64) or int64 data (I64). For a float tensor too large to hold
// twice, Fill may produce the values instead of F (called once, with a
// slice of the tensor's size).
type Tensor struct {
	Name  string
	DType DType
	Shape []int
	F     []float32
	D     []float64
	I     []int64
	Fill  func(dst []float32)
}

// Write writes tensors atomically: to a temporary file in the same
// directory, fsynced, then renamed over path. Tensors are laid out in name
// order and streamed to the file one at a time.
func Write(path string, tensors []Tensor, metadata map[string]string) error {
	ts := slices.Clone(tensors)
	slices.SortFunc(ts, func(a, b Tensor) int { return cmpStr(a.Name, b.Name) })
	header := map[string]any{}
	if len(metadata) > 0 {
		header["__metadata__"] = metadata
	}
	offset := 0
	for i, t := range ts {
		if i > 0 && t.Name == ts[i-1].Name {
			return fmt.Errorf("write %s: tensor %q given twice", path, t.Name)
		}
		size, ok := sizes[t.DType]
		if !ok || t.DType == I32 || t.DType == U8 {
			return fmt.Errorf("write %s: tensor %q: cannot write dtype %q", path, t.Name, t.DType)
		}
		n := 1
		for _, d := range t.Shape {
			n *= d
		}
		var have int
		switch t.DType {
		case F64:
			have = len(t.D)
		case I64:
			have = len(t.I)
		default:
			have = len(t.F)
			if t.F == nil && t.Fill != nil {
				have = n
			}
		}
		if have != n {
			return fmt.Errorf("write %s: tensor %q: %d values for shape %v", path, t.Name, have, t.Shape)
		}
		shape := t.Shape
		if shape == nil {
			shape = []int{}
		}
		header[t.Name] = map[string]any{"dtype": t.DType, "shape": shape, "data_offsets": []int{offset, offset + n*size}}
		offset += n * size
	}
	hj, err := json.Marshal(header)
	if err != nil {
		return fmt.Errorf("write %s: %v", path, err)
	}
	for len(hj)%8 != 0 { // pad so the data section starts 8-byte aligned
		hj = append(hj, ' ')
	}
	return atomicfile.WriteWith(path, func(w io.Writer) error {
		bw := bufio.NewWriterSize(w, 1<<20)
		binary.Write(bw, binary.LittleEndian, uint64(len(hj)))
		bw.Write(hj)
		var buf []byte
		for _, t := range ts {
			switch t.DType {
			case F64:
				binary.Write(bw, binary.LittleEndian, t.D)
			case I64:
				binary.Write(bw, binary.LittleEndian, t.I)
			default:
				v := t.F
				if v == nil && t.Fill != nil {
					n := 1
					for _, d := range t.Shape {
						n *= d
					}
					v = make([]float32, n)
					t.Fill(v)
				}
				size := sizes[t.DType]
				buf = slices.Grow(buf[:0], len(v)*size)[:len(v)*size]
				for i, x := range v {
					switch t.DType {
					case F32:
						binary.LittleEndian.PutUint32(buf[4*i:], math.Float32bits(x))
					case F16:
						binary.LittleEndian.PutUint16(buf[2*i:], F32ToF16(x))
					case BF16:
						binary.LittleEndian.PutUint16(buf[2*i:], f32ToBF16(x))
					}
				}
				bw.Write(buf)
			}
		}
		return bw.Flush()
	})
}

func f32ToBF16(f float32) uint16 {
	b := math.Float32bits(f)
	if b&0x7fffffff > 0x7f800000 {
		return uint16(b>>16) | 0x40
	}
	return uint16((b + 0x7fff + (b>>16)&1) >> 16)
}

func cmpStr(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
