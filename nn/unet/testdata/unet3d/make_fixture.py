"""PyTorch reference for nn/unet's UNet3D and the fixture its parity test reads.

A small UNet3D written with torch.nn.Conv3d, GroupNorm, Linear, Embedding and
F.interpolate(mode="trilinear" | "nearest"), following the structure of
diffusers' UNet2DModel (ResNet blocks with the time + class embedding,
self-attention over voxels, stride-2 3x3x3 downsampling, x2 upsampling then a
3x3x3 convolution) and its parameter names. It draws random weights, runs two
volumes at two timesteps with class labels, and writes to this folder:

  config.json                           the UNet3DConfig
  diffusion_pytorch_model.safetensors   the weights
  io.safetensors                        x, timesteps, labels, r (loss weights), out,
                                        and grad.<name> of loss = sum(out * r) for every parameter

    /usr/bin/python3 make_fixture.py        (torch only; no diffusers needed)
"""
import json
import math
import struct

import torch
import torch.nn as tnn
import torch.nn.functional as F

CONFIG = {
    "_class_name": "UNet3DModel", "sample_size": 8, "in_channels": 2, "out_channels": 2,
    "block_out_channels": [8, 16], "layers_per_block": 1,
    "down_block_types": ["DownBlock3D", "AttnDownBlock3D"], "up_block_types": ["AttnUpBlock3D", "UpBlock3D"],
    "mid_block_type": "UNetMidBlock3D", "add_attention": True, "attention_head_dim": 8,
    "norm_num_groups": 4, "norm_eps": 1e-5, "flip_sin_to_cos": True, "freq_shift": 0,
    "upsample_interpolation": "trilinear", "num_class_embeds": 3,
}


def timestep_projection(t, dim, flip, shift):
    half = dim // 2
    exponent = -math.log(10000) * torch.arange(half, dtype=torch.float32) / (half - shift)
    arg = t[:, None].float() * torch.exp(exponent)[None, :]
    emb = torch.cat([torch.sin(arg), torch.cos(arg)], dim=-1)
    if flip:
        emb = torch.cat([emb[:, half:], emb[:, :half]], dim=-1)
    return emb


class Resnet(tnn.Module):
    def __init__(self, cin, cout, temb, groups, eps):
        super().__init__()
        self.norm1 = tnn.GroupNorm(groups, cin, eps=eps)
        self.conv1 = tnn.Conv3d(cin, cout, 3, padding=1)
        self.time_emb_proj = tnn.Linear(temb, cout)
        self.norm2 = tnn.GroupNorm(groups, cout, eps=eps)
        self.conv2 = tnn.Conv3d(cout, cout, 3, padding=1)
        self.conv_shortcut = tnn.Conv3d(cin, cout, 1) if cin != cout else None

    def forward(self, x, emb):
        h = self.conv1(F.silu(self.norm1(x)))
        h = h + self.time_emb_proj(F.silu(emb))[:, :, None, None, None]
        h = self.conv2(F.silu(self.norm2(h)))
        if self.conv_shortcut is not None:
            x = self.conv_shortcut(x)
        return x + h


class Attention(tnn.Module):
    """Self-attention over voxels: group norm, tokens (B, D*H*W, C), heads of head_dim, residual."""

    def __init__(self, c, head_dim, groups, eps):
        super().__init__()
        self.group_norm = tnn.GroupNorm(groups, c, eps=eps)
        self.to_q, self.to_k, self.to_v = tnn.Linear(c, c), tnn.Linear(c, c), tnn.Linear(c, c)
        self.to_out = tnn.ModuleList([tnn.Linear(c, c)])
        self.heads, self.head_dim = c // head_dim, head_dim

    def forward(self, x):
        b, c = x.shape[:2]
        tok = self.group_norm(x).reshape(b, c, -1).transpose(1, 2)
        split = lambda t: t.reshape(b, -1, self.heads, self.head_dim).transpose(1, 2)
        q, k, v = split(self.to_q(tok)), split(self.to_k(tok)), split(self.to_v(tok))
        p = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(self.head_dim), dim=-1)
        o = (p @ v).transpose(1, 2).reshape(b, -1, c)
        o = self.to_out[0](o).transpose(1, 2).reshape(x.shape)
        return o + x


class Resample(tnn.Module):
    def __init__(self, c, stride):
        super().__init__()
        self.conv = tnn.Conv3d(c, c, 3, stride=stride, padding=1)


class Block(tnn.Module):
    def __init__(self):
        super().__init__()
        self.resnets, self.attentions = tnn.ModuleList(), tnn.ModuleList()


class Mid(tnn.Module):
    def __init__(self):
        super().__init__()
        self.resnets, self.attentions = tnn.ModuleList(), tnn.ModuleList()


class TimeEmbedding(tnn.Module):
    def __init__(self, c, temb):
        super().__init__()
        self.linear_1, self.linear_2 = tnn.Linear(c, temb), tnn.Linear(temb, temb)

    def forward(self, x):
        return self.linear_2(F.silu(self.linear_1(x)))


class UNet3D(tnn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg
        ch, L, g, eps = cfg["block_out_channels"], cfg["layers_per_block"], cfg["norm_num_groups"], cfg["norm_eps"]
        n, temb, hd = len(ch), 4 * ch[0], cfg["attention_head_dim"]
        self.conv_in = tnn.Conv3d(cfg["in_channels"], ch[0], 3, padding=1)
        self.time_embedding = TimeEmbedding(ch[0], temb)
        self.class_embedding = tnn.Embedding(cfg["num_class_embeds"], temb)
        self.down_blocks = tnn.ModuleList()
        for i, t in enumerate(cfg["down_block_types"]):
            b = Block()
            for j in range(L):
                b.resnets.append(Resnet(ch[max(i - 1, 0)] if j == 0 else ch[i], ch[i], temb, g, eps))
                if t == "AttnDownBlock3D":
                    b.attentions.append(Attention(ch[i], hd, g, eps))
            if i < n - 1:
                b.downsamplers = tnn.ModuleList([Resample(ch[i], 2)])
            self.down_blocks.append(b)
        self.mid_block = Mid()
        c = ch[-1]
        self.mid_block.resnets.append(Resnet(c, c, temb, g, eps))
        self.mid_block.attentions.append(Attention(c, hd, g, eps))
        self.mid_block.resnets.append(Resnet(c, c, temb, g, eps))
        rev = ch[::-1]
        self.up_blocks = tnn.ModuleList()
        for i, t in enumerate(cfg["up_block_types"]):
            cin, prev, out = rev[min(i + 1, n - 1)], rev[max(i - 1, 0)], rev[i]
            b = Block()
            for j in range(L + 1):
                res_in = prev if j == 0 else out
                skip = cin if j == L else out
                b.resnets.append(Resnet(res_in + skip, out, temb, g, eps))
                if t == "AttnUpBlock3D":
                    b.attentions.append(Attention(out, hd, g, eps))
            if i < n - 1:
                b.upsamplers = tnn.ModuleList([Resample(out, 1)])
            self.up_blocks.append(b)
        self.conv_norm_out = tnn.GroupNorm(g, ch[0], eps=eps)
        self.conv_out = tnn.Conv3d(ch[0], cfg["out_channels"], 3, padding=1)

    def forward(self, x, t, labels):
        cfg = self.cfg
        emb = self.time_embedding(timestep_projection(t, cfg["block_out_channels"][0], cfg["flip_sin_to_cos"], cfg["freq_shift"]))
        emb = emb + self.class_embedding(labels)
        h = self.conv_in(x)
        skips = [h]
        for b in self.down_blocks:
            for j, r in enumerate(b.resnets):
                h = r(h, emb)
                if len(b.attentions):
                    h = b.attentions[j](h)
                skips.append(h)
            if hasattr(b, "downsamplers"):
                h = b.downsamplers[0].conv(h)
                skips.append(h)
        h = self.mid_block.resnets[0](h, emb)
        h = self.mid_block.attentions[0](h)
        h = self.mid_block.resnets[1](h, emb)
        for b in self.up_blocks:
            for j, r in enumerate(b.resnets):
                h = r(torch.cat([h, skips.pop()], dim=1), emb)
                if len(b.attentions):
                    h = b.attentions[j](h)
            if hasattr(b, "upsamplers"):
                mode = cfg["upsample_interpolation"]
                h = F.interpolate(h, scale_factor=2, mode=mode, **({"align_corners": False} if mode == "trilinear" else {}))
                h = b.upsamplers[0].conv(h)
        return self.conv_out(F.silu(self.conv_norm_out(h)))


def save_safetensors(tensors, path):
    """The safetensors layout: u64 header length, JSON header, raw little-endian data."""
    header, blobs, offset = {"__metadata__": {"format": "pt"}}, [], 0
    for name in sorted(tensors):
        t = tensors[name].detach().contiguous()
        dtype = {torch.float32: "F32", torch.int64: "I64"}[t.dtype]
        raw = t.reshape(-1).numpy().tobytes()
        header[name] = {"dtype": dtype, "shape": list(t.shape), "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    h = json.dumps(header).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


def main():
    torch.manual_seed(21)
    model = UNet3D(CONFIG)
    with torch.no_grad():  # wider weights than the default init, so that every path carries signal
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    x = torch.randn(2, CONFIG["in_channels"], 8, 8, 8)
    t = torch.tensor([10, 700])
    labels = torch.tensor([0, 2])
    out = model(x, t, labels)
    r = torch.randn_like(out)
    (out * r).sum().backward()
    with open("config.json", "w") as f:
        json.dump(CONFIG, f, indent=2)
    save_safetensors(dict(model.state_dict()), "diffusion_pytorch_model.safetensors")
    io = {"x": x, "timesteps": t.float(), "labels": labels, "r": r, "out": out}
    for name, p in model.named_parameters():
        io["grad." + name] = p.grad
    save_safetensors(io, "io.safetensors")
    print("out", tuple(out.shape), "max|out|", out.abs().max().item(), "params", sum(p.numel() for p in model.parameters()))


if __name__ == "__main__":
    main()
