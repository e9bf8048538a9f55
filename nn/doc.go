// Package nn holds the layers and models built on package tensor: Linear,
// Conv2d, GroupNorm, LayerNorm, Embedding, the U-Net blocks and UNet2D, which
// is diffusers' UNet2DModel built from its config.json with parameters named
// by diffusers' state-dict keys, and the optimizers Adam and AdamW with
// PyTorch's semantics and gradient clipping. Weights are read and written
// with package safetensors.
// Model families live below it: nn/unet (UNet2DConditionModel), nn/vae
// (AutoencoderKL), nn/clip (CLIP tokenizer and text encoder); they are built
// from nn's layers and blocks and list their parameters with Collect.
//
//	layers.go       Param, ParamList, Linear, Conv2d, GroupNorm, LayerNorm, Embedding
//	params.go       what every model does with its parameters: LoadParams (strict, names the
//	                file and tensor; float32 or half storage), NoGrad, CountParams, StateDict
//	blocks.go       time projection and embedding, ResnetBlock2D, Attention, down/up/mid blocks
//	config.go       UNet2DConfig: parsing with diffusers' defaults, validation naming the field
//	unet2d.go       UNet2D: construction, Forward, loading and saving checkpoints
//	optim.go        Adam, AdamW, ClipGradNorm
package nn
