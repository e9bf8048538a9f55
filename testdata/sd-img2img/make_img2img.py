"""img2img reference for the Go pipeline's test (our own script; the shared reference has no img2img).

Follows diffusers' StableDiffusionImg2ImgPipeline with DDIMScheduler (eta 0), written from its
pipelines/stable_diffusion/pipeline_stable_diffusion_img2img.py, on top of shared/reference/sd/pipeline.py:
 1. image (uint8 HWC) -> x = image/255*2 - 1, NCHW (VaeImageProcessor.preprocess; the size is already a multiple of 8)
 2. latents = (mean + exp(logvar/2) * enc_noise) * scaling_factor  (retrieve_latents, sample_mode "sample";
    enc_noise is stored so the Go side can replay the draw)
 3. set_timesteps(N); init_timestep = min(int(N * strength), N); t_start = max(N - init_timestep, 0);
    timesteps = timesteps[t_start:]   (get_timesteps)
 4. latents = add_noise(latents, noise, timesteps[0]) = sqrt(a_t) latents + sqrt(1 - a_t) noise  (DDIM, float32 a_t)
 5. the DDIM / CFG loop and the decode exactly as pipeline.py
Everything runs in float64 from the stored float32 weights and inputs, like the shared fixtures.

    /usr/bin/python3 testdata/sd-img2img/make_img2img.py ../shared/reference/sd testdata/sd/tiny-pipeline testdata/sd-img2img/io.safetensors
"""
import sys

import numpy as np
import torch

ref_dir, folder, out = sys.argv[1], sys.argv[2], sys.argv[3]
sys.path.insert(0, ref_dir)
sys.path.insert(0, ref_dir + "/..")
from pipeline import StableDiffusionPipeline, to_uint8  # noqa: E402
from safetensors_io import save_file  # noqa: E402

torch.set_num_threads(1)
PROMPT, NEGATIVE, STEPS, GUIDANCE, STRENGTH = "a blue square", "blurry", 10, 4.0, 0.6

pipe = StableDiffusionPipeline.from_pretrained(folder, dtype=torch.float64)
sched, vae, unet = pipe.scheduler, pipe.vae, pipe.unet
f = 2 ** (len(vae.config["block_out_channels"]) - 1)
H = W = unet.config["sample_size"] * f
gen = torch.Generator().manual_seed(1234)
image_u8 = (torch.rand(H, W, 3, generator=gen) * 256).floor().clamp(0, 255).to(torch.uint8)
L = vae.config["latent_channels"]
enc_noise = torch.randn(1, L, H // f, W // f, generator=gen)
noise = torch.randn(1, L, H // f, W // f, generator=gen)

with torch.no_grad():
    x = (image_u8.double() / 255 * 2 - 1).permute(2, 0, 1)[None]
    mean, logvar = vae.encode(x)
    latents = (mean + torch.exp(0.5 * logvar) * enc_noise.double()) * vae.config["scaling_factor"]
    ts = sched.set_timesteps(STEPS)
    init_timestep = min(int(STEPS * STRENGTH), STEPS)
    t_start = max(STEPS - init_timestep, 0)
    ts = ts[t_start:]
    a = sched.alphas_cumprod[int(ts[0])]
    x_t = a.double() ** 0.5 * latents + (1 - a.double()) ** 0.5 * noise.double()
    cond, _ = pipe.encode_prompt([PROMPT])
    uncond, _ = pipe.encode_prompt([NEGATIVE])
    ctx = torch.cat([uncond, cond])
    for t in ts:
        eps = unet(torch.cat([x_t, x_t]), t, ctx)
        eu, ec = eps.chunk(2)
        eps = eu + GUIDANCE * (ec - eu)
        x_t, _ = sched.step(eps, t, x_t)
    dec = vae.decode(x_t / vae.config["scaling_factor"])
    img = (dec / 2 + 0.5).clamp(0, 1)

f32 = lambda t: t.detach().to(torch.float32).contiguous()  # noqa: E731
save_file({"input_u8": image_u8.contiguous(), "enc_noise": f32(enc_noise), "noise": f32(noise),
           "init_latents": f32(latents), "timesteps": ts.to(torch.int64).contiguous(), "latents": f32(x_t),
           "decoded": f32(dec), "image_u8": torch.from_numpy(to_uint8(img)).contiguous()}, out,
          metadata={"prompt": PROMPT, "negative_prompt": NEGATIVE, "num_inference_steps": str(STEPS),
                    "guidance_scale": str(GUIDANCE), "strength": str(STRENGTH), "sampler": "ddim",
                    "pipeline": "tiny-pipeline"})
print("wrote", out, "timesteps", ts.tolist())
