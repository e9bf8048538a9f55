package clip

import (
	"bytes"
	"compress/gzip"
	_ "embed"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/godiffuse/godiffuse/internal/atomicfile"
)

// The byte-level BPE of OpenAI's CLIP (vocab.json and merges.txt of
// openai/clip-vit-large-patch14, MIT licence), gzipped, so that a text
// encoder trained here (diffuse train -data shapes) tokenizes as Stable
// Diffusion does without a download.
var (
	//go:embed bpe/vocab.json.gz
	clipVocabGz []byte
	//go:embed bpe/merges.txt.gz
	clipMergesGz []byte
)

// OpenAIBPE is CLIP's tokenizer (49,408 tokens, maximum length 77).
func OpenAIBPE() (*Tokenizer, error) {
	unzip := func(b []byte) ([]byte, error) {
		r, err := gzip.NewReader(bytes.NewReader(b))
		if err != nil {
			return nil, err
		}
		return io.ReadAll(r)
	}
	vb, err := unzip(clipVocabGz)
	if err != nil {
		return nil, fmt.Errorf("tokenizer: the embedded vocabulary: %w", err)
	}
	mb, err := unzip(clipMergesGz)
	if err != nil {
		return nil, fmt.Errorf("tokenizer: the embedded merges: %w", err)
	}
	vocab, merges, err := parseBPE("embedded vocab.json", vb, "embedded merges.txt", mb)
	if err != nil {
		return nil, err
	}
	return NewTokenizer(vocab, merges), nil
}

// Subset is the tokenizer cut down to what texts need: the 512 byte
// symbols (so that any text still tokenizes), the merges the texts use and
// their results, and the special tokens, renumbered in that order. On the
// texts it tokenizes exactly as t does (a merge the texts never use never
// wins, so leaving it out changes nothing), with a vocabulary small enough
// for a text encoder trained from scratch. maxLength is the new
// model_max_length.
func (t *Tokenizer) Subset(texts []string, maxLength int) *Tokenizer {
	used := map[[2]string]bool{}
	for _, text := range texts {
		for _, c := range t.splitSpecial(text) {
			if c.special {
				continue
			}
			for _, word := range preTokenize(clean(c.text)) {
				t.merge(word, func(a, b string) { used[[2]string{a, b}] = true })
			}
		}
	}
	var merges [][2]string
	for m := range used {
		merges = append(merges, m)
	}
	slices.SortFunc(merges, func(a, b [2]string) int { return t.ranks[a] - t.ranks[b] })
	vocab := map[string]int{}
	add := func(tok string) {
		if _, ok := vocab[tok]; !ok {
			vocab[tok] = len(vocab)
		}
	}
	for _, suffix := range []string{"", "</w>"} {
		for b := range 256 {
			add(string(t.byteRune[b]) + suffix)
		}
	}
	for _, m := range merges {
		add(m[0] + m[1])
	}
	for _, s := range []string{t.Bos, t.Eos, t.Unk, t.Pad} {
		add(s)
	}
	sub := NewTokenizer(vocab, merges)
	sub.Bos, sub.Eos, sub.Unk, sub.Pad, sub.MaxLength = t.Bos, t.Eos, t.Unk, t.Pad, maxLength
	return sub
}

// VocabSize is the number of tokens.
func (t *Tokenizer) VocabSize() int { return len(t.vocab) }

// Save writes the tokenizer as a diffusers tokenizer/ folder (vocab.json,
// merges.txt, tokenizer_config.json, special_tokens_map.json), each file
// atomically; transformers' CLIPTokenizer reads it too.
func (t *Tokenizer) Save(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	vocab, err := json.Marshal(t.vocab)
	if err != nil {
		return err
	}
	merges := make([][2]string, len(t.ranks))
	for m, r := range t.ranks {
		merges[r] = m
	}
	var mb strings.Builder
	mb.WriteString("#version: 0.2\n")
	for _, m := range merges {
		mb.WriteString(m[0] + " " + m[1] + "\n")
	}
	special := map[string]any{"bos_token": t.Bos, "eos_token": t.Eos, "unk_token": t.Unk, "pad_token": t.Pad}
	cfg := map[string]any{"tokenizer_class": "CLIPTokenizer", "model_max_length": t.MaxLength, "do_lower_case": true,
		"errors": "replace", "add_prefix_space": false}
	for k, v := range special {
		cfg[k] = v
	}
	sb, _ := json.MarshalIndent(special, "", "  ")
	cb, _ := json.MarshalIndent(cfg, "", "  ")
	for name, b := range map[string][]byte{"vocab.json": vocab, "merges.txt": []byte(mb.String()),
		"special_tokens_map.json": sb, "tokenizer_config.json": cb} {
		if err := atomicfile.Write(filepath.Join(dir, name), b); err != nil {
			return err
		}
	}
	return nil
}
