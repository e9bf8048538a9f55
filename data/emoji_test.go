package data

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// emojiFiles skips without Debian's fonts-noto-color-emoji and
// unicode-data, unless GODIFFUSE_REQUIRE_EMOJI=1 (CI installs them).
func emojiFiles(t *testing.T) {
	t.Helper()
	for _, f := range []string{NotoEmojiFont, EmojiTestFile} {
		if _, err := os.Stat(f); err != nil {
			if os.Getenv("GODIFFUSE_REQUIRE_EMOJI") == "1" {
				t.Fatalf("GODIFFUSE_REQUIRE_EMOJI=1 but %v", err)
			}
			t.Skipf("%v (apt-get install fonts-noto-color-emoji unicode-data)", err)
		}
	}
}

func TestLoadEmoji(t *testing.T) {
	emojiFiles(t)
	ds, err := LoadEmoji(NotoEmojiFont, EmojiTestFile, 32)
	if err != nil {
		t.Fatal(err)
	}
	list := EmojiList(ds)
	if ds.Len() < 1000 || len(list) != ds.Len() || ds.Caption(0) != "grinning face" || list[0].CodePoint != 0x1F600 || list[0].Group != "Smileys & Emotion" {
		t.Fatalf("%d emoji, first %+v", ds.Len(), list[0])
	}
	c, h, w := ds.Shape()
	v := make([]float32, c*h*w)
	names := map[string]bool{}
	for i := range ds.Len() {
		if names[ds.Caption(i)] {
			t.Fatalf("caption %q twice", ds.Caption(i))
		}
		names[ds.Caption(i)] = true
	}
	for _, i := range []int{0, ds.Len() / 2, ds.Len() - 1} {
		ds.Image(i, v)
		white, coloured := 0, 0
		for p := range h * w {
			if v[p] > 0.98 && v[h*w+p] > 0.98 && v[2*h*w+p] > 0.98 {
				white++
			} else {
				coloured++
			}
		}
		if white < 20 || coloured < 100 {
			t.Errorf("emoji %d (%s): %d white and %d coloured pixels", i, ds.Caption(i), white, coloured)
		}
	}
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.ttf")
	os.WriteFile(bad, []byte("\x00\x01\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00cmap\x00\x00\x00\x00\x00\x00\x00\x1c\x00\x00\x00\x04\x00\x00\x00\x00"), 0o644)
	if _, err := LoadEmoji(bad, EmojiTestFile, 32); err == nil || !strings.Contains(err.Error(), "CBDT") {
		t.Errorf("a font without CBDT: %v", err)
	}
	test := filepath.Join(dir, "emoji-test.txt")
	os.WriteFile(test, []byte("1F600 ; fully-qualified\n"), 0o644)
	if _, err := LoadEmoji(NotoEmojiFont, test, 32); err == nil || !strings.Contains(err.Error(), "emoji-test.txt:1") {
		t.Errorf("a line without its comment: %v", err)
	}
}

// FuzzParseColorFont: arbitrary bytes as a font give an error or a font,
// never a panic.
func FuzzParseColorFont(f *testing.F) {
	f.Add([]byte("\x00\x01\x00\x00\x00\x03\x00\x00\x00\x00\x00\x00"))
	f.Add([]byte("\x00\x01\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00cmap\x00\x00\x00\x00\x00\x00\x00\x1c\x00\x00\x00\x04\x00\x00\x00\x00"))
	f.Fuzz(func(t *testing.T, b []byte) {
		cf, err := parseColorFont(b)
		if err != nil {
			return
		}
		for g := range cf.index {
			cf.png(g)
		}
	})
}
