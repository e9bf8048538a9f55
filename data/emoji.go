package data

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"os"
	"strconv"
	"strings"

	xdraw "golang.org/x/image/draw"
)

// ---------------------------------------------------------------------------
// Emoji with their names, for text-to-image training: the colour bitmaps of
// a CBDT/CBLC font (Noto Color Emoji: Debian's fonts-noto-color-emoji,
// Apache-2.0) and the names and groups of Unicode's emoji-test.txt (Debian's
// unicode-data). Nothing is embedded: the dataset is built from those files
// on the user's machine.
//
// An emoji is taken when emoji-test.txt lists it as fully-qualified and it
// is one code point (optionally followed by the variation selector U+FE0F)
// that the font's cmap maps to a glyph with a PNG bitmap; sequences (ZWJ,
// flags, skin tones) would need the font's GSUB ligatures and are left out.
// Each bitmap is composited on white and resized (Catmull-Rom) to size ×
// size; the caption is the emoji's name ("grinning face", "red apple").
//
// The font's tables, as the OpenType specification lays them out:
//
//	CBLC  header, BitmapSize records (48 bytes: the offset of the index
//	      subtable array, …, first and last glyph), index subtables
//	      (format 1: uint32 offsets, 3: uint16 offsets, 2: fixed-size
//	      images) pointing into CBDT
//	CBDT  per glyph: format 17 (small metrics, uint32 length, PNG),
//	      18 (big metrics, length, PNG) or 19 (length, PNG)
//	cmap  format 12 (32-bit groups) or 4 subtables: code point → glyph
// ---------------------------------------------------------------------------

// Emoji is one emoji of the dataset.
type Emoji struct {
	CodePoint rune
	Name      string
	Group     string // "Smileys & Emotion", "Food & Drink", …
}

// Default locations of the Debian packages' files.
const (
	NotoEmojiFont = "/usr/share/fonts/truetype/noto/NotoColorEmoji.ttf"
	EmojiTestFile = "/usr/share/unicode/emoji/emoji-test.txt"
)

type emojiSet struct {
	size int
	list []Emoji
	pix  [][]byte // RGB, size×size each
}

func (e *emojiSet) Len() int             { return len(e.list) }
func (e *emojiSet) Shape() (c, h, w int) { return 3, e.size, e.size }
func (e *emojiSet) Classes() []string    { return nil }
func (e *emojiSet) Caption(i int) string { return e.list[i].Name }
func (e *emojiSet) Image(i int, dst []float32) int {
	n := e.size * e.size
	for p := range n {
		for c := range 3 {
			dst[c*n+p] = float32(e.pix[i][3*p+c])/127.5 - 1
		}
	}
	return -1
}

// EmojiList returns the dataset's emoji in emoji-test.txt's order.
func EmojiList(ds Captioned) []Emoji {
	if e, ok := ds.(*emojiSet); ok {
		return e.list
	}
	return nil
}

// LoadEmoji builds the emoji dataset from a CBDT/CBLC colour font and
// emoji-test.txt at size × size (8 … 256).
func LoadEmoji(fontPath, testPath string, size int) (Captioned, error) {
	if size < 8 || size > 256 {
		return nil, fmt.Errorf("emoji: size %d, want 8 … 256", size)
	}
	list, err := readEmojiTest(testPath)
	if err != nil {
		return nil, err
	}
	font, err := os.ReadFile(fontPath)
	if err != nil {
		return nil, err
	}
	f, err := parseColorFont(font)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", fontPath, err)
	}
	set := &emojiSet{size: size}
	for _, e := range list {
		g, ok := f.glyphs[e.CodePoint]
		if !ok {
			continue
		}
		raw, err := f.png(g)
		if err != nil || raw == nil {
			continue
		}
		img, err := png.Decode(bytes.NewReader(raw))
		if err != nil {
			return nil, fmt.Errorf("%s: glyph %d (U+%04X %s): %v", fontPath, g, e.CodePoint, e.Name, err)
		}
		set.list = append(set.list, e)
		set.pix = append(set.pix, onWhite(img, size))
	}
	if len(set.list) == 0 {
		return nil, fmt.Errorf("%s: no emoji of %s has a bitmap in the font", fontPath, testPath)
	}
	return set, nil
}

// onWhite composites img over white and resizes it to size × size, RGB.
func onWhite(img image.Image, size int) []byte {
	b := img.Bounds()
	side := max(b.Dx(), b.Dy())
	square := image.NewRGBA(image.Rect(0, 0, side, side))
	xdraw.Draw(square, square.Bounds(), image.NewUniform(color.White), image.Point{}, xdraw.Src)
	off := image.Pt((side-b.Dx())/2, (side-b.Dy())/2)
	xdraw.Draw(square, b.Sub(b.Min).Add(off), img, b.Min, xdraw.Over)
	small := image.NewRGBA(image.Rect(0, 0, size, size))
	xdraw.CatmullRom.Scale(small, small.Bounds(), square, square.Bounds(), xdraw.Src, nil)
	out := make([]byte, 0, 3*size*size)
	for i := 0; i < len(small.Pix); i += 4 {
		out = append(out, small.Pix[i], small.Pix[i+1], small.Pix[i+2])
	}
	return out
}

// readEmojiTest reads the single-code-point fully-qualified emoji of
// emoji-test.txt with their names and groups.
func readEmojiTest(path string) ([]Emoji, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []Emoji
	group := ""
	sc := bufio.NewScanner(f)
	for line := 1; sc.Scan(); line++ {
		s := sc.Text()
		if g, ok := strings.CutPrefix(s, "# group: "); ok {
			group = strings.TrimSpace(g)
			continue
		}
		if s == "" || strings.HasPrefix(s, "#") {
			continue
		}
		codes, rest, ok := strings.Cut(s, ";")
		status, comment, ok2 := strings.Cut(rest, "#")
		if !ok || !ok2 {
			return nil, fmt.Errorf("%s:%d: want CODE POINTS ; STATUS # EMOJI VERSION NAME, have %q", path, line, s)
		}
		if strings.TrimSpace(status) != "fully-qualified" {
			continue
		}
		cps := strings.Fields(codes)
		if len(cps) == 2 && cps[1] == "FE0F" {
			cps = cps[:1]
		}
		if len(cps) != 1 {
			continue // a sequence
		}
		cp, err := strconv.ParseUint(cps[0], 16, 32)
		if err != nil {
			return nil, fmt.Errorf("%s:%d: code point %q: %v", path, line, cps[0], err)
		}
		// The comment is "EMOJI E<version> name".
		f := strings.Fields(comment)
		if len(f) < 3 || !strings.HasPrefix(f[1], "E") {
			return nil, fmt.Errorf("%s:%d: comment %q: want EMOJI E<version> NAME", path, line, comment)
		}
		out = append(out, Emoji{CodePoint: rune(cp), Name: strings.Join(f[2:], " "), Group: group})
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s: no fully-qualified emoji", path)
	}
	return out, nil
}

// colorFont is what LoadEmoji needs of a CBDT/CBLC font.
type colorFont struct {
	cbdt   []byte
	glyphs map[rune]uint16
	index  map[uint16][2]uint32 // glyph → image format, offset in CBDT
}

// fontReader reads big-endian fields, remembering the first overrun.
type fontReader struct {
	b   []byte
	bad bool
}

func (r *fontReader) u8(at int) int {
	if at < 0 || at+1 > len(r.b) {
		r.bad = true
		return 0
	}
	return int(r.b[at])
}

func (r *fontReader) u16(at int) int {
	if at < 0 || at+2 > len(r.b) {
		r.bad = true
		return 0
	}
	return int(binary.BigEndian.Uint16(r.b[at:]))
}

func (r *fontReader) u32(at int) int {
	if at < 0 || at+4 > len(r.b) {
		r.bad = true
		return 0
	}
	return int(binary.BigEndian.Uint32(r.b[at:]))
}

func parseColorFont(b []byte) (*colorFont, error) {
	r := &fontReader{b: b}
	tables := map[string][]byte{}
	n := r.u16(4)
	for i := range n {
		rec := 12 + 16*i
		if rec+16 > len(b) {
			return nil, fmt.Errorf("table directory runs past the file")
		}
		tag := string(b[rec : rec+4])
		off, length := r.u32(rec+8), r.u32(rec+12)
		if off < 0 || length < 0 || off+length > len(b) {
			return nil, fmt.Errorf("table %s (offset %d, length %d) runs past the file", tag, off, length)
		}
		tables[tag] = b[off : off+length]
	}
	for _, t := range []string{"CBDT", "CBLC", "cmap"} {
		if tables[t] == nil {
			return nil, fmt.Errorf("no %s table (want a colour-bitmap font such as Noto Color Emoji)", t)
		}
	}
	f := &colorFont{cbdt: tables["CBDT"], index: map[uint16][2]uint32{}}
	var err error
	if f.glyphs, err = parseCmap(tables["cmap"]); err != nil {
		return nil, err
	}
	if err := f.parseCBLC(tables["CBLC"]); err != nil {
		return nil, err
	}
	return f, nil
}

// parseCmap reads the format 12 (else format 4) Unicode subtable.
func parseCmap(b []byte) (map[rune]uint16, error) {
	r := &fontReader{b: b}
	n := r.u16(2)
	best, bestFormat := -1, 0
	for i := range n {
		off := r.u32(4 + 8*i + 4)
		if format := r.u16(off); (format == 12 && bestFormat != 12) || (format == 4 && bestFormat == 0) {
			best, bestFormat = off, format
		}
	}
	if r.bad || best < 0 {
		return nil, fmt.Errorf("cmap: no format 12 or 4 subtable")
	}
	out := map[rune]uint16{}
	switch bestFormat {
	case 12:
		groups, budget := r.u32(best+12), 1<<21 // at most 2M mappings, whatever the file claims
		for g := range min(groups, len(b)/12) {
			at := best + 16 + 12*g
			start, end, glyph := r.u32(at), r.u32(at+4), r.u32(at+8)
			for cp := start; cp <= min(end, 0x10FFFF) && budget > 0; cp++ {
				out[rune(cp)] = uint16(glyph + cp - start)
				budget--
			}
		}
	case 4:
		segs := r.u16(best+6) / 2
		ends, starts, deltas, ranges := best+14, best+16+2*segs, best+16+4*segs, best+16+6*segs
		for s := range segs {
			start, end := r.u16(starts+2*s), r.u16(ends+2*s)
			delta, ro := r.u16(deltas+2*s), r.u16(ranges+2*s)
			for cp := start; cp <= end && cp != 0xFFFF; cp++ {
				g := (cp + delta) & 0xFFFF
				if ro != 0 {
					g = r.u16(ranges + 2*s + ro + 2*(cp-start))
					if g != 0 {
						g = (g + delta) & 0xFFFF
					}
				}
				if g != 0 {
					out[rune(cp)] = uint16(g)
				}
			}
		}
	}
	if r.bad {
		return nil, fmt.Errorf("cmap: a subtable runs past its table")
	}
	return out, nil
}

// parseCBLC indexes every glyph's image from the first bitmap size (Noto
// has one, 136 pixels per em).
func (f *colorFont) parseCBLC(b []byte) error {
	r := &fontReader{b: b}
	if r.u32(4) < 1 {
		return fmt.Errorf("CBLC: no bitmap sizes")
	}
	arr, count := r.u32(8), r.u32(16)
	for i := range min(count, 1<<16) {
		at := arr + 8*i
		first, last, add := r.u16(at), r.u16(at+2), r.u32(at+4)
		sub := arr + add
		indexFormat, imageFormat, dataOff := r.u16(sub), r.u16(sub+2), r.u32(sub+4)
		for g := first; g <= last && !r.bad; g++ {
			var off int
			switch indexFormat {
			case 1:
				off = r.u32(sub + 8 + 4*(g-first))
			case 3:
				off = r.u16(sub + 8 + 2*(g-first))
			case 2:
				off = r.u32(sub+8) * (g - first)
			default:
				return fmt.Errorf("CBLC: index format %d is not supported (want 1, 2 or 3)", indexFormat)
			}
			f.index[uint16(g)] = [2]uint32{uint32(imageFormat), uint32(dataOff + off)}
		}
	}
	if r.bad {
		return fmt.Errorf("CBLC: an index subtable runs past its table")
	}
	return nil
}

// png returns glyph g's PNG bytes (nil when it has no image).
func (f *colorFont) png(g uint16) ([]byte, error) {
	ix, ok := f.index[g]
	if !ok {
		return nil, nil
	}
	r := &fontReader{b: f.cbdt}
	at := int(ix[1])
	switch ix[0] {
	case 17:
		at += 5
	case 18:
		at += 8
	case 19:
	default:
		return nil, fmt.Errorf("CBDT: image format %d (want 17, 18 or 19: PNG)", ix[0])
	}
	n := r.u32(at)
	if r.bad || n <= 0 || at+4+n > len(f.cbdt) {
		return nil, fmt.Errorf("CBDT: glyph %d's image runs past the table", g)
	}
	return f.cbdt[at+4 : at+4+n], nil
}
