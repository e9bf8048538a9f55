package clip

import (
	"encoding/json"
	"fmt"
	"html"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// ---------------------------------------------------------------------------
// The CLIP byte-level BPE tokenizer, as diffusers calls transformers'
// CLIPTokenizer: tokenizer(prompt, padding="max_length", max_length=77,
// truncation=True). Steps (shared/reference/sd/tokenizer.py):
//
//  1. cut the raw text at special-token strings (each hit is its id);
//  2. each other chunk: ftfy's fix_text on well-formed text (fixText), every
//     run of white space → one space, trim, full Unicode lower-casing;
//  3. pre-tokenise: specials, English contractions, runs of letters, ONE
//     number character, runs of anything else that is not white space;
//  4. byte-level BPE: UTF-8 bytes → printable runes, "</w>" on the last
//     symbol, merge the lowest-ranked adjacent pair until none is ranked;
//  5. [bos] + ids[:max-2] + [eos], padded with the pad id to max (77).
// ---------------------------------------------------------------------------

// Tokenizer is a CLIP BPE tokenizer read from a diffusers tokenizer/ folder.
// It is safe for concurrent use.
type Tokenizer struct {
	vocab     map[string]int
	ranks     map[[2]string]int
	byteRune  [256]rune
	Bos, Eos  string // special-token strings
	Unk, Pad  string
	MaxLength int // model_max_length (77)

	mu    sync.Mutex
	cache map[string][]string
}

// mergesUsed is how many lines of merges.txt CLIP uses: 49152 − 256 − 2.
const mergesUsed = 49152 - 256 - 2

// LoadTokenizer reads vocab.json, merges.txt and, when present,
// tokenizer_config.json then special_tokens_map.json (the latter wins) from dir.
func LoadTokenizer(dir string) (*Tokenizer, error) {
	vocabPath := filepath.Join(dir, "vocab.json")
	b, err := os.ReadFile(vocabPath)
	if err != nil {
		return nil, fmt.Errorf("tokenizer: %w", err)
	}
	if _, _, err := parseBPE(vocabPath, b, "", nil); err != nil {
		return nil, err
	}
	mergesPath := filepath.Join(dir, "merges.txt")
	mb, err := os.ReadFile(mergesPath)
	if err != nil {
		return nil, fmt.Errorf("tokenizer: %w", err)
	}
	vocab, merges, err := parseBPE(vocabPath, b, mergesPath, mb)
	if err != nil {
		return nil, err
	}
	t := NewTokenizer(vocab, merges)
	for _, name := range []string{"tokenizer_config.json", "special_tokens_map.json"} {
		p := filepath.Join(dir, name)
		b, err := os.ReadFile(p)
		if os.IsNotExist(err) {
			continue
		} else if err != nil {
			return nil, fmt.Errorf("tokenizer: %w", err)
		}
		if err := t.applyConfig(p, b); err != nil {
			return nil, err
		}
	}
	for _, s := range []struct{ field, tok string }{{"bos_token", t.Bos}, {"eos_token", t.Eos}, {"pad_token", t.Pad}} {
		if _, ok := vocab[s.tok]; !ok {
			if _, ok := vocab[t.Unk]; !ok {
				return nil, fmt.Errorf("tokenizer: %s: %s %q is not in vocab.json", dir, s.field, s.tok)
			}
		}
	}
	return t, nil
}

// parseBPE reads vocab.json and merges.txt (paths name them in errors).
func parseBPE(vocabPath string, vb []byte, mergesPath string, mb []byte) (map[string]int, [][2]string, error) {
	var vocab map[string]int
	if err := json.Unmarshal(vb, &vocab); err != nil {
		return nil, nil, fmt.Errorf("tokenizer: %s: want a JSON object of token → id: %v", vocabPath, err)
	}
	if mb == nil {
		return vocab, nil, nil
	}
	lines := strings.Split(strings.TrimSpace(string(mb)), "\n")
	if len(lines) > 0 && strings.HasPrefix(lines[0], "#version") {
		lines = lines[1:]
	}
	lines = lines[:min(len(lines), mergesUsed)]
	var merges [][2]string
	for i, l := range lines {
		f := strings.Fields(l)
		if len(f) != 2 {
			return nil, nil, fmt.Errorf("tokenizer: %s line %d: want two symbols, have %q", mergesPath, i+2, l)
		}
		merges = append(merges, [2]string{f[0], f[1]})
	}
	return vocab, merges, nil
}

// NewTokenizer builds a tokenizer from a vocabulary and ranked merges, with
// SD 1.x's special tokens (pad = eos) and a maximum length of 77.
func NewTokenizer(vocab map[string]int, merges [][2]string) *Tokenizer {
	t := &Tokenizer{vocab: vocab, ranks: make(map[[2]string]int, len(merges)),
		Bos: "<|startoftext|>", Eos: "<|endoftext|>", Unk: "<|endoftext|>", Pad: "<|endoftext|>",
		MaxLength: 77, cache: map[string][]string{}}
	for i, m := range merges {
		if _, dup := t.ranks[m]; !dup {
			t.ranks[m] = i
		}
	}
	t.byteRune = bytesToRunes()
	return t
}

// applyConfig reads the special tokens (a string or {"content": …}) and
// model_max_length from a tokenizer config file.
func (t *Tokenizer) applyConfig(path string, b []byte) error {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		return fmt.Errorf("tokenizer: %s: not a JSON object: %v", path, err)
	}
	for key, dst := range map[string]*string{"bos_token": &t.Bos, "eos_token": &t.Eos, "unk_token": &t.Unk, "pad_token": &t.Pad} {
		v, ok := raw[key]
		if !ok || string(v) == "null" {
			continue
		}
		var s string
		if json.Unmarshal(v, &s) == nil {
			*dst = s
			continue
		}
		var obj struct {
			Content *string `json:"content"`
		}
		if err := json.Unmarshal(v, &obj); err != nil || obj.Content == nil {
			return fmt.Errorf("tokenizer: %s: %s: want a string or an object with \"content\", have %s", path, key, v)
		}
		*dst = *obj.Content
	}
	if v, ok := raw["model_max_length"]; ok {
		var n float64
		if err := json.Unmarshal(v, &n); err != nil {
			return fmt.Errorf("tokenizer: %s: model_max_length: want a number, have %s", path, v)
		}
		// transformers writes a huge sentinel when a tokenizer has no limit; CLIP's is 77.
		if n >= 3 && n <= 1<<20 {
			t.MaxLength = int(n)
		}
	}
	return nil
}

// ID is the id of a token string, or the unknown token's id.
func (t *Tokenizer) ID(tok string) int {
	if id, ok := t.vocab[tok]; ok {
		return id
	}
	return t.vocab[t.Unk]
}

// BosID, EosID and PadID are the special tokens' ids.
func (t *Tokenizer) BosID() int { return t.ID(t.Bos) }

// EosID is the end-of-text id.
func (t *Tokenizer) EosID() int { return t.ID(t.Eos) }

// PadID is the padding id (49407 for SD 1.x, 0 for SD 2.x's "!").
func (t *Tokenizer) PadID() int { return t.ID(t.Pad) }

// Encode returns the ids of text without bos/eos, untruncated.
func (t *Tokenizer) Encode(text string) []int {
	var ids []int
	for _, c := range t.splitSpecial(text) {
		if c.special {
			ids = append(ids, t.ID(c.text))
			continue
		}
		for _, word := range preTokenize(clean(c.text)) {
			for _, sym := range t.bpe(word) {
				ids = append(ids, t.ID(sym))
			}
		}
	}
	return ids
}

// Tokenize returns MaxLength ids: bos, the text's ids, eos, then padding.
// truncated reports that ids beyond MaxLength−2 were dropped (diffusers
// warns then, and so should the caller).
func (t *Tokenizer) Tokenize(text string) (ids []int64, truncated bool) {
	body := t.Encode(text)
	if keep := t.MaxLength - 2; len(body) > keep {
		body, truncated = body[:keep], true
	}
	ids = make([]int64, 0, t.MaxLength)
	ids = append(ids, int64(t.BosID()))
	for _, id := range body {
		ids = append(ids, int64(id))
	}
	ids = append(ids, int64(t.EosID()))
	for len(ids) < t.MaxLength {
		ids = append(ids, int64(t.PadID()))
	}
	return ids, truncated
}

type chunk struct {
	text    string
	special bool
}

// splitSpecial cuts text at every occurrence of a special token's string,
// longest first, case-sensitive.
func (t *Tokenizer) splitSpecial(text string) []chunk {
	specials := []string{}
	for _, s := range []string{t.Bos, t.Eos, t.Unk, t.Pad} {
		if s != "" && !containsStr(specials, s) {
			specials = append(specials, s)
		}
	}
	// longest first (a stable insertion sort of at most four strings)
	for i := 1; i < len(specials); i++ {
		for j := i; j > 0 && len(specials[j]) > len(specials[j-1]); j-- {
			specials[j], specials[j-1] = specials[j-1], specials[j]
		}
	}
	var out []chunk
	start := 0
	for i := 0; i < len(text); {
		hit := ""
		for _, s := range specials {
			if strings.HasPrefix(text[i:], s) {
				hit = s
				break
			}
		}
		if hit == "" {
			_, n := utf8.DecodeRuneInString(text[i:])
			i += n
			continue
		}
		out = append(out, chunk{text[start:i], false}, chunk{hit, true})
		i += len(hit)
		start = i
	}
	return append(out, chunk{text[start:], false})
}

func containsStr(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

// bpe splits one pre-token into vocabulary symbols.
func (t *Tokenizer) bpe(word string) []string {
	t.mu.Lock()
	if out, ok := t.cache[word]; ok {
		t.mu.Unlock()
		return out
	}
	t.mu.Unlock()
	syms := t.merge(word, nil)
	t.mu.Lock()
	if len(t.cache) < 1<<16 {
		t.cache[word] = syms
	}
	t.mu.Unlock()
	return syms
}

// merge runs the byte-level BPE on one pre-token; used, when set, sees
// every merge applied.
func (t *Tokenizer) merge(word string, used func(a, b string)) []string {
	var syms []string
	if word == t.Bos || word == t.Eos {
		syms = []string{word}
	} else {
		for _, b := range []byte(word) {
			syms = append(syms, string(t.byteRune[b]))
		}
		syms[len(syms)-1] += "</w>"
		for len(syms) > 1 {
			best, bestRank := -1, int(^uint(0)>>1)
			for i := 0; i+1 < len(syms); i++ {
				if r, ok := t.ranks[[2]string{syms[i], syms[i+1]}]; ok && r < bestRank {
					best, bestRank = i, r
				}
			}
			if best < 0 {
				break
			}
			a, b := syms[best], syms[best+1]
			if used != nil {
				used(a, b)
			}
			merged := syms[:0:0]
			for i := 0; i < len(syms); i++ {
				if i+1 < len(syms) && syms[i] == a && syms[i+1] == b {
					merged = append(merged, a+b)
					i++
				} else {
					merged = append(merged, syms[i])
				}
			}
			syms = merged
		}
	}
	return syms
}

// bytesToRunes is CLIP's byte → printable rune table: the 188 printable
// Latin-1 bytes map to themselves, the others to 256 + n in byte order.
func bytesToRunes() [256]rune {
	var m [256]rune
	printable := func(b int) bool {
		return (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF)
	}
	n := 0
	for b := range 256 {
		if printable(b) {
			m[b] = rune(b)
		} else {
			m[b] = rune(256 + n)
			n++
		}
	}
	return m
}

// ---------------------------------------------------------------------------
// Cleaning and pre-tokenisation.
// ---------------------------------------------------------------------------

// clean is fix_text, white-space collapsing and Python's str.lower.
func clean(text string) string {
	return lower(collapseSpace(fixText(text)))
}

func collapseSpace(s string) string {
	var b strings.Builder
	prev := false
	for _, r := range s {
		if unicode.IsSpace(r) {
			if !prev {
				b.WriteByte(' ')
			}
			prev = true
			continue
		}
		b.WriteRune(r)
		prev = false
	}
	return strings.TrimSpace(b.String())
}

// lower is Python's str.lower: full lower-casing (İ → i + U+0307) and the
// final-sigma rule (Σ → ς at the end of a word).
func lower(s string) string {
	rs := []rune(s)
	var b strings.Builder
	for i, r := range rs {
		switch r {
		case 'İ':
			b.WriteString("i\u0307")
		case 'Σ':
			if finalSigma(rs, i) {
				b.WriteRune('ς')
			} else {
				b.WriteRune('σ')
			}
		default:
			b.WriteRune(unicode.ToLower(r))
		}
	}
	return b.String()
}

func caseIgnorable(r rune) bool {
	return unicode.In(r, unicode.Mn, unicode.Me, unicode.Cf, unicode.Lm, unicode.Sk) || r == '\'' || r == '.' || r == ':' || r == '·'
}

func cased(r rune) bool { return unicode.IsUpper(r) || unicode.IsLower(r) || unicode.IsTitle(r) }

// finalSigma: preceded by a cased letter and not followed by one (skipping
// case-ignorable runes both ways), as Unicode's Final_Sigma condition.
func finalSigma(rs []rune, i int) bool {
	j := i - 1
	for j >= 0 && caseIgnorable(rs[j]) {
		j--
	}
	if j < 0 || !cased(rs[j]) {
		return false
	}
	k := i + 1
	for k < len(rs) && caseIgnorable(rs[k]) {
		k++
	}
	return k >= len(rs) || !cased(rs[k])
}

var contractions = []string{"'s", "'t", "'re", "'ve", "'m", "'ll", "'d"}

// preTokenize emulates CLIP's pattern (case-insensitive)
//
//	<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+
//
// scanning left to right: the first alternative that matches wins.
func preTokenize(text string) []string {
	var out []string
	for i := 0; i < len(text); {
		r, n := utf8.DecodeRuneInString(text[i:])
		if unicode.IsSpace(r) {
			i += n
			continue
		}
		rest := text[i:]
		tok := ""
		for _, s := range []string{"<|startoftext|>", "<|endoftext|>"} {
			if len(rest) >= len(s) && strings.EqualFold(rest[:len(s)], s) {
				tok = rest[:len(s)]
				break
			}
		}
		if tok == "" && r == '\'' {
			for _, c := range contractions {
				if len(rest) >= len(c) && strings.EqualFold(rest[:len(c)], c) {
					tok = rest[:len(c)]
					break
				}
			}
		}
		if tok == "" {
			j := i + n
			switch {
			case unicode.IsLetter(r):
				for j < len(text) {
					r2, n2 := utf8.DecodeRuneInString(text[j:])
					if !unicode.IsLetter(r2) {
						break
					}
					j += n2
				}
			case unicode.IsNumber(r):
			default:
				for j < len(text) {
					r2, n2 := utf8.DecodeRuneInString(text[j:])
					if unicode.IsLetter(r2) || unicode.IsNumber(r2) || unicode.IsSpace(r2) {
						break
					}
					j += n2
				}
			}
			tok = text[i:j]
		}
		out = append(out, tok)
		i += len(tok)
	}
	return out
}

// ---------------------------------------------------------------------------
// fixText: the parts of ftfy 6.3's fix_text that act on well-formed text,
// per line, repeated until nothing changes: HTML entities (with the
// semicolon; off for this and every later line once a line holds "<"), C1
// controls read as Windows-1252, Latin ligatures, full-width forms, curly
// quotes, line breaks, ANSI escapes and control characters removed, NFC.
// (ftfy's mojibake repair is left out: it only matters for mis-decoded text.)
// ---------------------------------------------------------------------------

var (
	entityRE = regexp.MustCompile(`&#?[0-9A-Za-z]{1,24};`)
	ansiRE   = regexp.MustCompile("\x1b\\[((?:\\d|;)*)([a-zA-Z])")
)

var ligatures = strings.NewReplacer("Ĳ", "IJ", "ĳ", "ij", "ŉ", "ʼn", "Ǳ", "DZ", "ǲ", "Dz", "ǳ", "dz", "Ǆ", "DŽ",
	"ǅ", "Dž", "ǆ", "dž", "Ǉ", "LJ", "ǈ", "Lj", "ǉ", "lj", "Ǌ", "NJ", "ǋ", "Nj", "ǌ", "nj", "ﬀ", "ff", "ﬁ", "fi",
	"ﬂ", "fl", "ﬃ", "ffi", "ﬄ", "ffl", "ﬅ", "ſt", "ﬆ", "st")

// cp1252 maps the C1 range 0x80–0x9F as Windows-1252 reads it (0 where
// Windows-1252 has no character: ftfy then keeps the Latin-1 control).
var cp1252 = [32]rune{'€', 0, '‚', 'ƒ', '„', '…', '†', '‡', 'ˆ', '‰', 'Š', '‹', 'Œ', 0, 'Ž', 0,
	0, '‘', '’', '“', '”', '•', '–', '—', '˜', '™', 'š', '›', 'œ', 0, 'ž', 'Ÿ'}

func fixText(text string) string {
	var out strings.Builder
	unescape := true
	for len(text) > 0 {
		end := strings.IndexByte(text, '\n') + 1
		if end == 0 {
			end = len(text)
		}
		seg := text[:end]
		text = text[end:]
		if unescape && strings.Contains(seg, "<") {
			unescape = false
		}
		out.WriteString(fixSegment(seg, unescape))
	}
	return out.String()
}

func fixSegment(s string, unescape bool) string {
	for {
		orig := s
		if unescape {
			s = entityRE.ReplaceAllStringFunc(s, unescapeEntity)
		}
		s = mapRunes(s, fixRune)
		s = ligatures.Replace(s)
		s = strings.NewReplacer("\r\n", "\n", "\r", "\n", "\u2028", "\n", "\u2029", "\n", "\u0085", "\n").Replace(s)
		s = ansiRE.ReplaceAllString(s, "")
		s = mapRunes(s, dropControl)
		s = norm.NFC.String(s)
		if s == orig {
			return s
		}
	}
}

func mapRunes(s string, f func(r rune) string) string {
	var b strings.Builder
	for _, r := range s {
		b.WriteString(f(r))
	}
	return b.String()
}

// fixRune: C1 controls, full- and half-width forms, curly quotes.
func fixRune(r rune) string {
	switch {
	case r >= 0x80 && r <= 0x9F:
		if c := cp1252[r-0x80]; c != 0 {
			return string(c)
		}
	case r == 0x3000:
		return " "
	case r >= 0xFF01 && r < 0xFFF0:
		return norm.NFKC.String(string(r))
	case r >= 0x201C && r <= 0x201F:
		return `"`
	case r == 0x02BC || (r >= 0x2018 && r <= 0x201B):
		return "'"
	}
	return string(r)
}

func dropControl(r rune) string {
	if (r <= 0x08) || r == 0x0B || (r >= 0x0E && r <= 0x1F) || r == 0x7F || (r >= 0x206A && r <= 0x206F) ||
		r == 0xFEFF || (r >= 0xFFF9 && r <= 0xFFFC) {
		return ""
	}
	return string(r)
}

// unescapeEntity decodes "&name;" when name; is an HTML5 entity (or the
// all-caps form of a lower-case one, which ftfy maps to the upper-cased
// character), and "&#…;" when it is a valid character reference.
func unescapeEntity(t string) string {
	if u, ok := htmlEntity(t); ok {
		return u
	}
	if strings.HasPrefix(t, "&#") {
		return t
	}
	name := t[1 : len(t)-1]
	if low := strings.ToLower(name); low != name && strings.ToUpper(name) == name {
		if u, ok := htmlEntity("&" + low + ";"); ok {
			return strings.ToUpper(u)
		}
	}
	return t
}

// htmlEntity decodes t ("&…;") only when the whole reference, semicolon
// included, is one entity.
func htmlEntity(t string) (string, bool) {
	u := html.UnescapeString(t)
	if u == t {
		return "", false
	}
	if strings.HasPrefix(t, "&#") {
		return u, !strings.Contains(u, ";")
	}
	// html.UnescapeString also decodes a semicolon-less prefix ("&notit;" →
	// "¬it;"); the reference takes only whole "&name;" entities.
	if strings.HasSuffix(u, ";") && u != ";" {
		return "", false
	}
	return u, true
}
