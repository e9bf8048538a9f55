"""Inpainting reference for the Go pipeline's test (our own script; the shared reference has no inpainting).

Follows diffusers' StableDiffusionInpaintPipeline with DDIMScheduler (eta 0) and strength 1, written from its
pipelines/stable_diffusion/pipeline_stable_diffusion_inpaint.py, on top of shared/reference/sd/pipeline.py, for
two U-Nets of the tiny pipeline:
  legacy   the tiny pipeline's own U-Net (in_channels 4): after every step the latents outside the mask become
           add_noise(image_latents, noise, timesteps[i+1]) (image_latents after the last step)
  unet9    a random inpainting U-Net (the tiny config with in_channels 9, written to unet/ here): its input is
           cat([latents, mask, masked_image_latents]) and nothing is replaced
 1. image (uint8 HWC) -> x = image/255*2 - 1, NCHW; mask (uint8 HW) -> m = (mask/255 >= 0.5) (mask processor
    binarize); masked_image = x * (m < 0.5)
 2. image_latents = (mean + exp(logvar/2) * enc_noise) * sf, masked_image_latents likewise with masked_enc_noise
    (retrieve_latents, sample_mode "sample")
 3. mask_latents = interpolate(m, size=(H/f, W/f)) (nearest: source index floor(i*in/out))
 4. strength 1: latents = noise (DDIM's init_noise_sigma is 1); the DDIM / CFG loop and the decode as pipeline.py
Everything runs in float64 from the stored float32 weights and inputs, like the shared fixtures.

    /usr/bin/python3 testdata/sd-inpaint/make_inpaint.py ../shared/reference/sd testdata/sd/tiny-pipeline testdata/sd-inpaint
"""
import copy
import json
import os
import sys

import torch
import torch.nn.functional as F

ref_dir, folder, out = sys.argv[1], sys.argv[2], sys.argv[3]
sys.path.insert(0, ref_dir)
sys.path.insert(0, ref_dir + "/..")
from pipeline import StableDiffusionPipeline, to_uint8  # noqa: E402
from safetensors_io import save_file  # noqa: E402
from unet2d_condition import UNet2DConditionModel  # noqa: E402

torch.set_num_threads(1)
PROMPT, NEGATIVE, STEPS, GUIDANCE = "a red circle", "blurry", 8, 4.0

pipe = StableDiffusionPipeline.from_pretrained(folder, dtype=torch.float64)
sched, vae = pipe.scheduler, pipe.vae
f = 2 ** (len(vae.config["block_out_channels"]) - 1)
H = W = pipe.unet.config["sample_size"] * f
L = vae.config["latent_channels"]
h, w = H // f, W // f

# The inpainting U-Net: the tiny config with in_channels 2L+1, PyTorch's default init after manual_seed(9).
cfg9 = copy.deepcopy(pipe.unet.config)
cfg9["in_channels"] = 2 * L + 1
torch.manual_seed(9)
unet9 = UNet2DConditionModel(cfg9).eval()
os.makedirs(os.path.join(out, "unet"), exist_ok=True)
with open(os.path.join(out, "unet", "config.json"), "w") as fh:
    json.dump(cfg9, fh, indent=2)
save_file({k: v.detach().float().contiguous() for k, v in unet9.state_dict().items()},
          os.path.join(out, "unet", "diffusion_pytorch_model.safetensors"), metadata={"format": "pt"})
unet9 = unet9.double()

gen = torch.Generator().manual_seed(4321)
image_u8 = (torch.rand(H, W, 3, generator=gen) * 256).floor().clamp(0, 255).to(torch.uint8)
mask_u8 = torch.zeros(H, W, dtype=torch.uint8)
mask_u8[H // 4: H // 4 + H // 2, W // 8: W // 8 + 5 * W // 8] = 200  # light grey: binarized to 1
mask_u8[0, 0] = 100  # dark grey: kept
enc_noise = torch.randn(1, L, h, w, generator=gen)
masked_enc_noise = torch.randn(1, L, h, w, generator=gen)
noise = torch.randn(1, L, h, w, generator=gen)

with torch.no_grad():
    x = (image_u8.double() / 255 * 2 - 1).permute(2, 0, 1)[None]
    m = (mask_u8.double() / 255 >= 0.5).double()[None, None]
    sf = vae.config["scaling_factor"]

    def encode(img, eps):
        mean, logvar = vae.encode(img)
        return (mean + torch.exp(0.5 * logvar) * eps.double()) * sf

    image_latents = encode(x, enc_noise)
    masked_latents = encode(x * (m < 0.5), masked_enc_noise)
    mask_lat = F.interpolate(m, size=(h, w))
    cond, _ = pipe.encode_prompt([PROMPT])
    uncond, _ = pipe.encode_prompt([NEGATIVE])
    ctx = torch.cat([uncond, cond])
    results = {}
    for name, unet in (("legacy", pipe.unet), ("unet9", unet9)):
        ts = sched.set_timesteps(STEPS)
        lat = noise.double().clone()
        for i, t in enumerate(ts):
            inp = torch.cat([lat, lat])
            if name == "unet9":
                inp = torch.cat([inp, torch.cat([mask_lat] * 2), torch.cat([masked_latents] * 2)], dim=1)
            eu, ec = unet(inp, t, ctx).chunk(2)
            lat, _ = sched.step(eu + GUIDANCE * (ec - eu), t, lat)
            if name == "legacy":
                proper = image_latents
                if i < len(ts) - 1:
                    a = sched.alphas_cumprod[int(ts[i + 1])].double()
                    proper = a ** 0.5 * image_latents + (1 - a) ** 0.5 * noise.double()
                lat = (1 - mask_lat) * proper + mask_lat * lat
        dec = vae.decode(lat / sf)
        results[name] = (lat, dec, to_uint8((dec / 2 + 0.5).clamp(0, 1)))
    roundtrip = vae.decode(image_latents / sf)

f32 = lambda t: t.detach().to(torch.float32).contiguous()  # noqa: E731
tensors = {"input_u8": image_u8.contiguous(), "mask_u8": mask_u8.contiguous(), "enc_noise": f32(enc_noise),
           "masked_enc_noise": f32(masked_enc_noise), "noise": f32(noise), "image_latents": f32(image_latents),
           "masked_latents": f32(masked_latents), "mask_latents": f32(mask_lat), "roundtrip": f32(roundtrip)}
for name, (lat, dec, u8) in results.items():
    tensors[name + "/latents"] = f32(lat)
    tensors[name + "/decoded"] = f32(dec)
    tensors[name + "/image_u8"] = torch.from_numpy(u8).contiguous()
save_file(tensors, os.path.join(out, "io.safetensors"),
          metadata={"prompt": PROMPT, "negative_prompt": NEGATIVE, "num_inference_steps": str(STEPS),
                    "guidance_scale": str(GUIDANCE), "sampler": "ddim", "pipeline": "tiny-pipeline"})
print("wrote", out, "timesteps", sched.set_timesteps(STEPS).tolist())
