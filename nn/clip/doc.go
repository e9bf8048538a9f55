// Package clip holds the text side of Stable Diffusion: the CLIP BPE
// tokenizer (tokenizer.go, read from a diffusers tokenizer/ folder, matching
// transformers' CLIPTokenizer as diffusers calls it) and transformers'
// CLIPTextModel (text.go: SD 1.x's ViT-L/14 text tower with quick_gelu, SD
// 2.x's OpenCLIP ViT-H tower with gelu, every layer's hidden state for clip
// skip, the pooled output).
//
//	tok, _ := clip.LoadTokenizer("sd15/tokenizer")
//	ids, truncated := tok.Tokenize("a red circle")          // 77 ids: bos, tokens, eos, padding
//	enc, _ := clip.LoadTextModel(dev, "sd15/text_encoder", nn.StoreAsFile)
//	out, _ := enc.Forward(ids, 1)                           // out.LastHidden is (1, 77, 768)
package clip
