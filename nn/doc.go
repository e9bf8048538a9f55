// Package nn holds the layers and models built on package tensor: Linear,
// Conv2d, GroupNorm, LayerNorm, Embedding, the U-Net blocks and UNet2D, which
// is diffusers' UNet2DModel built from its config.json with parameters named
// by diffusers' state-dict keys. It also reads and writes safetensors files
// (validated before they are trusted; written atomically) and has the
// optimizers Adam and AdamW with PyTorch's semantics and gradient clipping.
//
//	layers.go       Param, Linear, Conv2d, GroupNorm, LayerNorm, Embedding
//	blocks.go       time projection and embedding, ResnetBlock2D, Attention, down/up/mid blocks
//	config.go       UNet2DConfig: parsing with diffusers' defaults, validation naming the field
//	unet2d.go       UNet2D: construction, Forward, loading and saving checkpoints
//	safetensors.go  the safetensors reader and writer, atomic file writes
//	optim.go        Adam, AdamW, ClipGradNorm
package nn
