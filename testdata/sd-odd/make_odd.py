"""U-Net input sizes that do not halve evenly (our own script, on shared/reference/sd/unet2d_condition.py).

diffusers' UNet2DConditionModel accepts any latent size: the stride-2 convolutions round up, and each upsampler
then interpolates (nearest) to the size of the skip it meets instead of doubling. This script runs the tiny SD 1.x
U-Net fixture on a 17x13 and a 15x16 input, in float64 from the stored float32 weights, and stores x, t,
encoder_hidden_states and out for each (keys size/<i>/...).

    /usr/bin/python3 testdata/sd-odd/make_odd.py ../shared/reference/sd testdata/sd/tiny-sd-unet testdata/sd-odd/io.safetensors
"""
import json
import os
import sys

import torch

ref_dir, unet_dir, out = sys.argv[1], sys.argv[2], sys.argv[3]
sys.path.insert(0, ref_dir)
sys.path.insert(0, os.path.dirname(os.path.abspath(ref_dir)))
from safetensors_io import save_file  # noqa: E402
from unet2d_condition import UNet2DConditionModel, load_unet_checkpoint  # noqa: E402

torch.set_num_threads(1)
with open(os.path.join(unet_dir, "config.json")) as f:
    cfg = json.load(f)
model = load_unet_checkpoint(UNet2DConditionModel(cfg), os.path.join(unet_dir, "diffusion_pytorch_model.safetensors"))
model = model.double().eval()
gen = torch.Generator().manual_seed(5)
tensors = {}
for i, (h, w) in enumerate([(17, 13), (15, 16)]):
    x = torch.randn(2, cfg["in_channels"], h, w, generator=gen)
    ctx = torch.randn(2, 77, cfg["cross_attention_dim"], generator=gen)
    t = torch.tensor([100, 800])
    with torch.no_grad():
        y = model(x.double(), t, ctx.double())
    tensors.update({f"size/{i}/x": x, f"size/{i}/t": t, f"size/{i}/encoder_hidden_states": ctx,
                    f"size/{i}/out": y.float().contiguous()})
save_file(tensors, out, metadata={"unet": os.path.basename(os.path.normpath(unet_dir)), "sizes": "17x13,15x16"})
print("wrote", out)
