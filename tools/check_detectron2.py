#!/usr/bin/python3
"""Checks a Detectron2 handoff (tools/detectron2_handoff.py) without Detectron2: builds its ResNet
in plain PyTorch with Detectron2's module names and layout from the config's MODEL.RESNETS (stem
conv1 + norm + max pool; res2..res5 of BasicBlock for depth 18/34 or BottleneckBlock otherwise,
conv1/conv2/conv3 each with a .norm, a .shortcut conv + norm where a block changes its width, the
stride in the 3x3 conv when STRIDE_IN_1X1 is False), loads the checkpoint's "model" dict into it
strictly (every key and shape must match; only BatchNorm's num_batches_tracked may be absent),
runs it in eval mode on a saved batch and writes the res5 output.

usage: /usr/bin/python3 tools/check_detectron2.py CHECKPOINT.pkl CONFIG.yaml INPUT.safetensors OUT.safetensors

INPUT holds "images" [B, 3, S, S] f32 (already normalised); OUT gets "res5" [B, C, S/32, S/32].
Needs Debian's python3-torch and python3-yaml.
"""
import pickle
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F
import yaml

from safetensors_np import read_safetensors, write_safetensors


class Conv(nn.Conv2d):
    """Detectron2's Conv2d: a bias-free convolution with its norm as a child named `norm`."""

    def __init__(self, cin, cout, k, stride=1):
        super().__init__(cin, cout, k, stride=stride, padding=k // 2, bias=False)
        self.norm = nn.BatchNorm2d(cout)

    def forward(self, x):
        return self.norm(super().forward(x))


class BasicStem(nn.Module):
    def __init__(self, cout):
        super().__init__()
        self.conv1 = Conv(3, cout, 7, stride=2)

    def forward(self, x):
        return F.max_pool2d(F.relu(self.conv1(x)), kernel_size=3, stride=2, padding=1)


class BasicBlock(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.shortcut = Conv(cin, cout, 1, stride) if cin != cout else None
        self.conv1 = Conv(cin, cout, 3, stride)
        self.conv2 = Conv(cout, cout, 3)

    def forward(self, x):
        y = self.conv2(F.relu(self.conv1(x)))
        return F.relu(y + (self.shortcut(x) if self.shortcut is not None else x))


class BottleneckBlock(nn.Module):
    def __init__(self, cin, cout, width, stride, stride_in_1x1):
        super().__init__()
        s1, s3 = (stride, 1) if stride_in_1x1 else (1, stride)
        self.shortcut = Conv(cin, cout, 1, stride) if cin != cout else None
        self.conv1 = Conv(cin, width, 1, s1)
        self.conv2 = Conv(width, width, 3, s3)
        self.conv3 = Conv(width, cout, 1)

    def forward(self, x):
        y = self.conv3(F.relu(self.conv2(F.relu(self.conv1(x)))))
        return F.relu(y + (self.shortcut(x) if self.shortcut is not None else x))


class D2ResNet(nn.Module):
    """stem + res2..res5 as Detectron2's build_resnet_backbone lays them out."""

    def __init__(self, r):
        super().__init__()
        depth = r["DEPTH"]
        blocks = {18: [2, 2, 2, 2], 34: [3, 4, 6, 3], 50: [3, 4, 6, 3], 101: [3, 4, 23, 3]}[depth]
        self.stem = BasicStem(r["STEM_OUT_CHANNELS"])
        cin, cout = r["STEM_OUT_CHANNELS"], r["RES2_OUT_CHANNELS"]
        width = r["NUM_GROUPS"] * r["WIDTH_PER_GROUP"]
        self.stage_names = []
        for i, n in enumerate(blocks):
            stage = []
            for b in range(n):
                stride = 2 if b == 0 and i > 0 else 1
                if depth in (18, 34):
                    stage.append(BasicBlock(cin, cout, stride))
                else:
                    stage.append(BottleneckBlock(cin, cout, width, stride, r["STRIDE_IN_1X1"]))
                cin = cout
            name = f"res{i + 2}"
            self.add_module(name, nn.Sequential(*stage))
            self.stage_names.append(name)
            cout, width = cout * 2, width * 2

    def forward(self, x):
        x = self.stem(x)
        for name in self.stage_names:
            x = getattr(self, name)(x)
        return x


def main():
    if len(sys.argv) != 5:
        print(__doc__, file=sys.stderr)
        return 2
    with open(sys.argv[1], "rb") as f:
        ckpt = pickle.load(f, encoding="latin1")  # as Detectron2 reads .pkl files
    for key in ("model", "__author__", "matching_heuristics"):
        if key not in ckpt:
            print(f"{sys.argv[1]}: no {key!r} entry", file=sys.stderr)
            return 1
    with open(sys.argv[2]) as f:
        cfg = yaml.safe_load(f)
    r = cfg["MODEL"]["RESNETS"]
    net = D2ResNet(r)
    state = {k: torch.from_numpy(v) for k, v in ckpt["model"].items()}
    result = net.load_state_dict(state, strict=False)
    missing = [k for k in result.missing_keys if not k.endswith("num_batches_tracked")]
    if missing or result.unexpected_keys:
        print(f"missing {missing[:8]}, unexpected {result.unexpected_keys[:8]}", file=sys.stderr)
        return 1
    net.eval()
    images = torch.from_numpy(read_safetensors(sys.argv[3])[0]["images"].copy()).float()
    with torch.no_grad():
        res5 = net(images)
    write_safetensors(sys.argv[4], {"res5": res5.numpy()})
    print(f"ResNet-{r['DEPTH']}: {len(state)} tensors loaded by Detectron2 name, "
          f"res5 {list(res5.shape)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
