"""Convert pytorch-fid's InceptionV3 weights to the safetensors file `diffuse eval -features inception:FILE` reads.

    python3 convert_inception.py pt_inception-2015-12-05-6726825d.pth pt_inception.safetensors [--f16]

Needs PyTorch (Debian: python3-torch). The state dict is written under its own key names, float tensors as
F32 (or F16 with --f16, half the size; FID moves in the 4th significant digit), num_batches_tracked as I64.
The safetensors layout is written here directly: an 8-byte little-endian header length, a JSON header
mapping each name to its dtype, shape and byte range, then the raw little-endian data.
"""
import json
import struct
import sys

import torch


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    if len(args) != 2:
        sys.exit(__doc__)
    half = "--f16" in sys.argv
    sd = torch.load(args[0], map_location="cpu")
    header, blobs, offset = {}, [], 0
    for name in sorted(sd):
        t = sd[name].contiguous()
        if t.is_floating_point():
            t = t.to(torch.float16 if half else torch.float32)
            dtype = "F16" if half else "F32"
        else:
            t, dtype = t.to(torch.int64), "I64"
        raw = t.numpy().tobytes()
        header[name] = {"dtype": dtype, "shape": list(t.shape), "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    header["__metadata__"] = {"format": "pt", "source": args[0].split("/")[-1]}
    hj = json.dumps(header, separators=(",", ":")).encode()
    hj += b" " * (-len(hj) % 8)
    with open(args[1], "wb") as f:
        f.write(struct.pack("<Q", len(hj)))
        f.write(hj)
        for raw in blobs:
            f.write(raw)
    print(f"wrote {args[1]}: {len(sd)} tensors, {offset:,} bytes of data")


if __name__ == "__main__":
    main()
