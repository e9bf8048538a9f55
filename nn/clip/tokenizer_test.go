package clip

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/godiffuse/godiffuse/internal/sdfixtures"
)

type tokensFixture struct {
	SD2PadID int `json:"sd2_pad_token_id"`
	Cases    []struct {
		Text     string  `json:"text"`
		InputIDs []int64 `json:"input_ids"`
		Differs  string  `json:"differs"`
	} `json:"cases"`
	SD2Cases []struct {
		Text     string  `json:"text"`
		InputIDs []int64 `json:"input_ids"`
	} `json:"sd2_cases"`
}

// realTokenizerDir is a tokenizer folder with the real CLIP vocabulary: the
// pipeline fixture's.
func realTokenizerDir(t testing.TB) string {
	for _, dir := range sdfixtures.Folders(t, sdfixtures.Pipeline) {
		return filepath.Join(dir, "tokenizer")
	}
	return ""
}

func TestTokenizerMatchesReference(t *testing.T) {
	root, _ := sdfixtures.Root()
	b, err := os.ReadFile(filepath.Join(root, "tokens.json"))
	if os.IsNotExist(err) {
		t.Skip("no tokens.json in the fixture root")
	} else if err != nil {
		t.Fatal(err)
	}
	var fx tokensFixture
	if err := json.Unmarshal(b, &fx); err != nil {
		t.Fatal(err)
	}
	tok, err := LoadTokenizer(realTokenizerDir(t))
	if err != nil {
		t.Fatal(err)
	}
	bad := 0
	for _, c := range fx.Cases {
		got, _ := tok.Tokenize(c.Text)
		if !slices.Equal(got, c.InputIDs) {
			bad++
			t.Errorf("%q:\n got %v\nwant %v", c.Text, trimPad(got), trimPad(c.InputIDs))
		}
	}
	sd2, err := LoadTokenizer(realTokenizerDir(t))
	if err != nil {
		t.Fatal(err)
	}
	sd2.Pad = "!"
	if sd2.PadID() != fx.SD2PadID {
		t.Fatalf("SD 2.x pad id %d, want %d", sd2.PadID(), fx.SD2PadID)
	}
	for _, c := range fx.SD2Cases {
		got, _ := sd2.Tokenize(c.Text)
		if !slices.Equal(got, c.InputIDs) {
			bad++
			t.Errorf("SD 2.x %q:\n got %v\nwant %v", c.Text, got, c.InputIDs)
		}
	}
	t.Logf("%d + %d cases, %d differ", len(fx.Cases), len(fx.SD2Cases), bad)
}

func trimPad(ids []int64) []int64 {
	for i := 1; i < len(ids); i++ {
		if ids[i] == 49407 {
			return ids[:i+1]
		}
	}
	return ids
}

func TestTokenizeTruncates(t *testing.T) {
	tok, err := LoadTokenizer(realTokenizerDir(t))
	if err != nil {
		t.Fatal(err)
	}
	long := ""
	for range 100 {
		long += "cat "
	}
	ids, truncated := tok.Tokenize(long)
	if !truncated || len(ids) != 77 || ids[0] != 49406 || ids[76] != 49407 || ids[75] != ids[1] {
		t.Fatalf("truncated %v, ids %v", truncated, ids)
	}
	if _, truncated := tok.Tokenize("a cat"); truncated {
		t.Fatal("a short prompt reported as truncated")
	}
}

func TestLoadTokenizerErrors(t *testing.T) {
	dir := t.TempDir()
	if _, err := LoadTokenizer(dir); err == nil {
		t.Fatal("an empty folder loaded")
	}
	os.WriteFile(filepath.Join(dir, "vocab.json"), []byte("[1,2]"), 0o644)
	if _, err := LoadTokenizer(dir); err == nil || !strings.Contains(err.Error(), "vocab.json") {
		t.Fatalf("bad vocab.json: %v", err)
	}
}

// FuzzTokenize: any string tokenizes to exactly MaxLength ids in the
// vocabulary, starting with bos, without a panic.
func FuzzTokenize(f *testing.F) {
	for _, s := range []string{"a photo of a cat", "", "<|endoftext|>!", "&amp;&notit;", "İΣΣ ﬁ", "\x00\x85\u2028", "🗻🗻"} {
		f.Add(s)
	}
	dir := realTokenizerDir(f)
	f.Fuzz(func(t *testing.T, s string) {
		tok, err := cachedTokenizer(dir)
		if err != nil {
			t.Fatal(err)
		}
		ids, _ := tok.Tokenize(s)
		if len(ids) != tok.MaxLength || ids[0] != int64(tok.BosID()) {
			t.Fatalf("%q: %d ids starting %v", s, len(ids), ids[:1])
		}
		for _, id := range ids {
			if id < 0 || id >= int64(len(tok.vocab)) {
				t.Fatalf("%q: id %d outside the vocabulary", s, id)
			}
		}
	})
}

var (
	tokOnce sync.Once
	tokVal  *Tokenizer
	tokErr  error
)

func cachedTokenizer(dir string) (*Tokenizer, error) {
	tokOnce.Do(func() { tokVal, tokErr = LoadTokenizer(dir) })
	return tokVal, tokErr
}
