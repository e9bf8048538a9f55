package clip_test

import (
	"fmt"

	"github.com/godiffuse/godiffuse/nn/clip"
)

// A prompt becomes 77 ids: start, the BPE tokens, end, then padding.
func ExampleTokenizer() {
	tok, err := clip.LoadTokenizer("../../testdata/sd/tiny-pipeline/tokenizer")
	if err != nil {
		fmt.Println(err)
		return
	}
	ids, truncated := tok.Tokenize("a photo of a cat")
	fmt.Println(ids[:8], len(ids), truncated)
	// Output: [49406 320 1125 539 320 2368 49407 49407] 77 false
}
