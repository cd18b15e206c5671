#!/usr/bin/python3
"""Loads a virtex backbone export (torchvision key names, safetensors) into torchvision's ResNet,
runs it in eval mode on a saved input batch and writes the global-average-pooled features.

usage: /usr/bin/python3 tools/check_export.py WEIGHTS.safetensors INPUT.safetensors OUT.safetensors

INPUT holds "images" [B, 3, S, S] f32; OUT gets "pooled" [B, C] f32. The architecture comes from the
export's metadata ("arch"). Only fc.* may be missing; every other key must match (exit 1 otherwise).
Needs Debian's python3-torch and python3-torchvision; no safetensors package (tools/safetensors_np.py).
"""
import sys

import torch
import torchvision

from safetensors_np import read_safetensors, write_safetensors


def read_torch(path):
    """A safetensors file as torch tensors, and its metadata."""
    arrays, meta = read_safetensors(path)
    return {k: torch.from_numpy(v.copy()) for k, v in arrays.items()}, meta


def main():
    if len(sys.argv) != 4:
        print(__doc__, file=sys.stderr)
        return 2
    weights, meta = read_torch(sys.argv[1])
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
    images = read_torch(sys.argv[2])[0]["images"].float()
    with torch.no_grad():
        pooled = model(images)
    write_safetensors(sys.argv[3], {"pooled": pooled.numpy().astype("float32")})
    print(f"{arch}: {len(weights)} tensors loaded, pooled {list(pooled.shape)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
