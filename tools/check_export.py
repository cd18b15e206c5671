#!/usr/bin/python3
"""Loads a virtex backbone export (torchvision key names, safetensors) into torchvision's ResNet,
runs it in eval mode on a saved input batch and writes the global-average-pooled features.

usage: /usr/bin/python3 tools/check_export.py WEIGHTS.safetensors INPUT.safetensors OUT.safetensors

INPUT holds "images" [B, 3, S, S] f32; OUT gets "pooled" [B, C] f32. The architecture comes from the
export's metadata ("arch"). Only fc.* may be missing; every other key must match (exit 1 otherwise).
Needs Debian's python3-torch and python3-torchvision; no safetensors package (read by hand here).
"""
import json
import struct
import sys

import numpy as np
import torch
import torchvision

DTYPES = {"F32": np.float32, "I32": np.int32, "I64": np.int64, "F64": np.float64}


def read_safetensors(path):
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    meta = header.pop("__metadata__", {})
    base = 8 + n
    out = {}
    for name, info in header.items():
        b, e = info["data_offsets"]
        arr = np.frombuffer(raw[base + b:base + e], dtype=DTYPES[info["dtype"]])
        out[name] = torch.from_numpy(arr.copy().reshape(info["shape"]))
    return out, meta


def write_safetensors(path, tensors):
    header, blobs, off = {}, [], 0
    for name, t in tensors.items():
        a = np.ascontiguousarray(t.detach().numpy().astype(np.float32))
        header[name] = {"dtype": "F32", "shape": list(a.shape), "data_offsets": [off, off + a.nbytes]}
        blobs.append(a.tobytes())
        off += a.nbytes
    h = json.dumps(header).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


def main():
    if len(sys.argv) != 4:
        print(__doc__, file=sys.stderr)
        return 2
    weights, meta = read_safetensors(sys.argv[1])
    arch = meta.get("arch")
    if meta.get("names", "torchvision") != "torchvision" or not arch:
        print(f"{sys.argv[1]}: not a torchvision-named export (metadata {meta})", file=sys.stderr)
        return 1
    model = getattr(torchvision.models, arch)()
    result = model.load_state_dict(weights, strict=False)
    missing = [k for k in result.missing_keys if not k.startswith("fc.")]
    if missing or result.unexpected_keys:
        print(f"missing {missing}, unexpected {result.unexpected_keys}", file=sys.stderr)
        return 1
    model.fc = torch.nn.Identity()  # pooled features, not class scores
    model.eval()
    images = read_safetensors(sys.argv[2])[0]["images"].float()
    with torch.no_grad():
        pooled = model(images)
    write_safetensors(sys.argv[3], {"pooled": pooled})
    print(f"{arch}: {len(weights)} tensors loaded, pooled {list(pooled.shape)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
