package clip

import (
	"slices"
	"testing"
)

// TestSubsetTokenizesAsTheFullVocabulary: on the texts it was cut for the
// subset splits every text into the same token strings as CLIP's full
// BPE; other text still tokenizes (into bytes); a saved subset loads back
// with the same ids.
func TestSubsetTokenizesAsTheFullVocabulary(t *testing.T) {
	full, err := OpenAIBPE()
	if err != nil {
		t.Fatal(err)
	}
	texts := []string{"a small red circle", "two yellow triangles", "a blue square to the left of a green triangle",
		"a purple circle above a white square", "Grinning Face with Big Eyes"}
	sub := full.Subset(texts, 24)
	if n := sub.VocabSize(); n < 512 || n > 700 {
		t.Errorf("subset vocabulary %d tokens", n)
	}
	strs := func(tok *Tokenizer, text string) []string {
		var out []string
		for _, word := range preTokenize(clean(text)) {
			out = append(out, tok.bpe(word)...)
		}
		return out
	}
	for _, text := range texts {
		if a, b := strs(full, text), strs(sub, text); !slices.Equal(a, b) {
			t.Errorf("%q: full %v, subset %v", text, a, b)
		}
	}
	if ids, _ := sub.Tokenize("an unseen zebra"); len(ids) != 24 || ids[0] != int64(sub.BosID()) {
		t.Errorf("unseen text: %v", ids)
	}
	dir := t.TempDir()
	if err := sub.Save(dir); err != nil {
		t.Fatal(err)
	}
	back, err := LoadTokenizer(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, text := range append(texts, "an unseen zebra") {
		a, _ := sub.Tokenize(text)
		b, _ := back.Tokenize(text)
		if !slices.Equal(a, b) {
			t.Errorf("%q: %v, after saving %v", text, a, b)
		}
	}
	if back.MaxLength != 24 {
		t.Errorf("max length %d after saving", back.MaxLength)
	}
}

// FuzzParseBPE: any vocab.json and merges.txt bytes give an error or a
// tokenizer that tokenizes (and cuts to a subset) without panicking.
func FuzzParseBPE(f *testing.F) {
	f.Add([]byte(`{"a</w>": 0, "b": 1, "ab</w>": 2, "<|startoftext|>": 3, "<|endoftext|>": 4}`), []byte("#version: 0.2\na b</w>\n"))
	f.Add([]byte(`{}`), []byte(""))
	f.Add([]byte(`{"a": -5}`), []byte("a\nb c d\n"))
	f.Add([]byte(`[1, 2]`), []byte("#version\n\n\n"))
	f.Add([]byte(`{"x": 99999999999}`), []byte("x x\nx x\n"))
	f.Fuzz(func(t *testing.T, vocab, merges []byte) {
		v, m, err := parseBPE("vocab.json", vocab, "merges.txt", merges)
		if err != nil {
			return
		}
		tok := NewTokenizer(v, m)
		tok.Tokenize("a red circle, ab!")
		tok.Subset([]string{"ab ba"}, 8).Tokenize("ab")
	})
}
