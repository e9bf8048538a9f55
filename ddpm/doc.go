// Package ddpm holds the mathematics of denoising diffusion: noise schedules,
// the forward process q(x_t | x_0), the training objectives, the samplers and
// classifier-free guidance. Each file is one piece of the paper trail:
//
//	schedule.go        β_t schedules and everything derived from them (float64)
//	forward.go         q(x_t | x_0) and the noising of a batch
//	objective.go       ε, v and x0 targets, conversions between them, min-SNR-γ weights
//	sampler.go         the Sampler interface and the loop that drives it
//	sampler_ddpm.go    ancestral sampling (Ho et al. 2020)
//	sampler_ddim.go    DDIM with η (Song et al. 2021) and timestep spacings
//	sampler_dpmpp.go   DPM-Solver++(2M) (Lu et al. 2022)
//	guidance.go        classifier-free guidance (Ho & Salimans 2022) with rescale (Lin et al. 2024)
//	scheduler_config.go  diffusers' scheduler_config.json and its ᾱ, bit-exact with torch
//	sampler_sigma.go   the Stable Diffusion samplers in σ-space with diffusers' points: DDIM,
//	                   Euler, Euler ancestral, DPM-Solver++(2M), Karras σ's (Karras et al. 2022);
//	                   latent masking for inpainting (KeepLatents)
//	choices.go         typed choices: timestep spacing, DDPM variance
//	inpaint.go         inpainting (replace, replace-clean, RePaint) and SDEdit
//	train.go           the training loop (Trainer: AdamW, EMA, label dropout, exact RNG state)
//	checkpoint.go      checkpoint folders: atomic save, crash recovery, resume
//
// Notation: ᾱ_t = Π_{s≤t} (1-β_s), α_t = √ᾱ_t, σ_t = √(1-ᾱ_t), so
// x_t = α_t·x_0 + σ_t·ε. Timesteps are integers in [0, T).
package ddpm
