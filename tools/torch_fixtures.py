#!/usr/bin/env python3
"""Writes PyTorch reference fixtures for the engine's parity tests (tests/engine/torch_parity_*).

Run with Debian's torch: /usr/bin/python3 tools/torch_fixtures.py [--out tests/fixtures/engine]

Each fixture is a .safetensors file (written here without the safetensors package) holding
  input.<name>      inputs of the forward pass
  param.<name>      parameters and buffers before the forward pass (module state dict)
  proj              a fixed random tensor; the scalar loss is sum(output * proj)
  output            the forward output
  grad_input.<name> d loss / d input
  grad.<name>       d loss / d parameter
  after.<name>      buffers after the forward pass (BatchNorm running statistics)
and its __metadata__ describes the configuration as JSON strings.
"""
import argparse
import json
import os
import struct

import torch
import torch.nn as nn
from torchvision.models.resnet import Bottleneck


def write_safetensors(path, tensors, metadata):
    header = {"__metadata__": {k: json.dumps(v) for k, v in metadata.items()}}
    blobs = []
    offset = 0
    for name in sorted(tensors):
        t = tensors[name].detach().contiguous().cpu()
        if t.dtype == torch.float32:
            dtype = "F32"
        elif t.dtype == torch.int64:
            t = t.to(torch.int32)
            dtype = "I32"
        elif t.dtype == torch.int32:
            dtype = "I32"
        else:
            raise ValueError(f"{name}: unsupported dtype {t.dtype}")
        raw = t.numpy().tobytes()  # little-endian on every platform torch supports here
        header[name] = {"dtype": dtype, "shape": list(t.shape), "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    hjson = json.dumps(header, separators=(",", ":")).encode()
    hjson += b" " * ((8 - len(hjson) % 8) % 8)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(hjson)))
        f.write(hjson)
        for b in blobs:
            f.write(b)
    os.replace(tmp, path)


def bottleneck_fixture(out_dir):
    torch.manual_seed(1)
    downsample = nn.Sequential(nn.Conv2d(16, 16, 1, stride=2, bias=False), nn.BatchNorm2d(16))
    block = Bottleneck(16, 4, stride=2, downsample=downsample)
    # Non-trivial affine parameters and running statistics.
    with torch.no_grad():
        for m in block.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.5, 0.5)
                m.running_mean.uniform_(-0.2, 0.2)
                m.running_var.uniform_(0.5, 1.5)
    block.train()
    params_before = {k: v.clone() for k, v in block.state_dict().items()}
    x = torch.randn(2, 16, 8, 8, requires_grad=True)
    y = block(x)
    proj = torch.randn_like(y)
    (y * proj).sum().backward()
    t = {"input.x": x, "proj": proj, "output": y, "grad_input.x": x.grad}
    for k, v in params_before.items():
        t["param." + k] = v
    for k, p in block.named_parameters():
        t["grad." + k] = p.grad
    for k, v in block.state_dict().items():
        if "running" in k or "num_batches" in k:
            t["after." + k] = v
    # Eval-mode forward with the updated running statistics.
    block.eval()
    with torch.no_grad():
        t["eval_output"] = block(x)
    meta = {"module": "torchvision Bottleneck(16, 4, stride=2, downsample)", "mode": "train",
            "torch": torch.__version__}
    write_safetensors(os.path.join(out_dir, "bottleneck.safetensors"), t, meta)


def decoder_fixture(out_dir, norm_first):
    torch.manual_seed(2 if norm_first else 3)
    E, A, F, B, T, S = 16, 4, 32, 2, 5, 7
    layer = nn.TransformerDecoderLayer(E, A, F, dropout=0.0, activation="gelu", batch_first=True,
                                       norm_first=norm_first)
    with torch.no_grad():  # non-trivial biases and norms
        for name, p in layer.named_parameters():
            if name.endswith("bias") or name.startswith("norm"):
                p.add_(0.1 * torch.randn_like(p))
    layer.train()
    params_before = {k: v.clone() for k, v in layer.state_dict().items()}
    tgt = torch.randn(B, T, E, requires_grad=True)
    memory = torch.randn(B, S, E, requires_grad=True)
    causal = torch.triu(torch.full((T, T), float("-inf")), diagonal=1)
    pad = torch.zeros(B, T, dtype=torch.bool)
    pad[1, 3:] = True  # second caption has 3 real tokens
    y = layer(tgt, memory, tgt_mask=causal, tgt_key_padding_mask=pad)
    proj = torch.randn_like(y)
    (y * proj).sum().backward()
    t = {"input.tgt": tgt, "input.memory": memory, "input.tgt_key_padding_mask": pad.float(),
         "proj": proj, "output": y, "grad_input.tgt": tgt.grad, "grad_input.memory": memory.grad}
    for k, v in params_before.items():
        t["param." + k] = v
    for k, p in layer.named_parameters():
        t["grad." + k] = p.grad
    meta = {"module": f"TransformerDecoderLayer({E}, {A}, {F}, gelu, batch_first, norm_first={norm_first})",
            "d_model": E, "nhead": A, "dim_feedforward": F, "norm_first": norm_first, "causal": True,
            "torch": torch.__version__}
    name = "decoder_prenorm.safetensors" if norm_first else "decoder_postnorm.safetensors"
    write_safetensors(os.path.join(out_dir, name), t, meta)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default="tests/fixtures/engine")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    torch.set_num_threads(1)
    bottleneck_fixture(args.out)
    decoder_fixture(args.out, norm_first=False)
    decoder_fixture(args.out, norm_first=True)
    print("wrote fixtures to", args.out)


if __name__ == "__main__":
    main()
