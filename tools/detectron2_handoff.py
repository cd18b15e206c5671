#!/usr/bin/env python3
"""Turns a virtex backbone export (Detectron2 key names) into a Detectron2 checkpoint and the
paper's detection / instance-segmentation configs.

usage: python3 tools/detectron2_handoff.py EXPORT.safetensors --out DIR [--name NAME]

EXPORT comes from `./virtex export --model REF --names detectron2 --out EXPORT.safetensors`. Writes
  DIR/NAME.pkl                        {"model": {name: float32 ndarray}, "__author__": "virtex",
                                       "matching_heuristics": True}: Detectron2's
                                       DetectionCheckpointer matches the keys (stem.conv1.*,
                                       res2.0.conv1.norm.*, …, res5.*) to its model by suffix, so
                                       res5 lands in the C4 ROI head and res2-res5 in the FPN's
                                       bottom-up ResNet.
  DIR/faster_rcnn_C4_voc.yaml         Faster R-CNN R-C4 on PASCAL VOC 07+12 (24K iterations)
  DIR/mask_rcnn_FPN_coco.yaml         Mask R-CNN R-FPN on COCO 2017 (2x schedule)
as the VirTex paper (after MoCo): every layer trained (FREEZE_AT 0), SyncBN in the backbone (and
the FPN), torchvision-style strides (STRIDE_IN_1X1 False: stride in the 3x3 conv), RGB input with
the pretraining mean/std in 0-255 (from the export's metadata; ImageNet's when absent), test-time
precise BN, and for C4 an extra BN after res5 (ROI head Res5ROIHeadsExtraNorm, registered by
tools/detectron2_train.py; --roi-head standard writes Detectron2's own Res5ROIHeads instead).

The backbone's shape goes into MODEL.RESNETS (DEPTH, STEM_OUT_CHANNELS, RES2_OUT_CHANNELS,
WIDTH_PER_GROUP); architectures Detectron2 cannot build are refused: `_os16` (its stem always
ends in a max pool), ResNet-18/34 narrower than 64 (it requires RES2_OUT_CHANNELS 64), and C4 for
ResNet-18/34 (its res5 head is built of bottleneck blocks). Needs numpy only.
"""
import argparse
import os
import pickle
import re
import sys

import numpy as np

from safetensors_np import read_safetensors

IMAGENET_MEAN = [0.485, 0.456, 0.406]
IMAGENET_STD = [0.229, 0.224, 0.225]


def resnet_shape(arch):
    """MODEL.RESNETS values of a virtex backbone name; raises ValueError when D2 cannot build it."""
    m = re.fullmatch(r"(resnet(18|34|50|101)|wide_resnet50_2)(?:_w(\d+))?(_os16)?", arch)
    if not m:
        raise ValueError(f"unknown architecture {arch!r}")
    if m.group(4):
        raise ValueError(f"{arch}: Detectron2's stem always ends in a max pool; _os16 has none")
    depth = 50 if m.group(1) == "wide_resnet50_2" else int(m.group(2))
    base = int(m.group(3)) if m.group(3) else 64
    if depth in (18, 34):
        if base != 64:
            raise ValueError(f"{arch}: Detectron2 builds ResNet-{depth} only at width 64")
        return {"DEPTH": depth, "STEM_OUT_CHANNELS": 64, "RES2_OUT_CHANNELS": 64,
                "WIDTH_PER_GROUP": 64, "NUM_GROUPS": 1}
    width = 2 * base if m.group(1) == "wide_resnet50_2" else base
    return {"DEPTH": depth, "STEM_OUT_CHANNELS": base, "RES2_OUT_CHANNELS": 4 * base,
            "WIDTH_PER_GROUP": width, "NUM_GROUPS": 1}


def check_keys(tensors, shape):
    """Every key must be a Detectron2 ResNet name (stem.conv1.*, resN.i.convK[.norm].*, shortcut)."""
    pat = re.compile(r"(stem\.conv1|res[2-5]\.\d+\.(conv[1-3]|shortcut))"
                     r"(\.weight|\.norm\.(weight|bias|running_mean|running_var))")
    bad = [k for k in tensors if not pat.fullmatch(k)]
    if bad:
        raise ValueError(f"not Detectron2 ResNet names: {bad[:5]} (export with --names detectron2)")
    stem = tensors.get("stem.conv1.weight")
    if stem is None or stem.shape[0] != shape["STEM_OUT_CHANNELS"]:
        raise ValueError(f"stem.conv1.weight {None if stem is None else stem.shape} does not "
                         f"match STEM_OUT_CHANNELS {shape['STEM_OUT_CHANNELS']}")


def yaml_list(xs):
    return "[" + ", ".join(yaml_value(x) for x in xs) + "]"


def yaml_value(v):
    if isinstance(v, bool):
        return "True" if v else "False"
    if isinstance(v, float):
        return f"{v:.3f}"
    if isinstance(v, (list, tuple)):
        return yaml_list(v)
    return str(v)


def tuple_str(xs):
    """A Python tuple as Detectron2 configs write them (yacs evaluates the string)."""
    return "(" + ", ".join(f'"{x}"' if isinstance(x, str) else str(x) for x in xs) + (",)" if len(xs) == 1 else ")")


def common_model(weights, shape, mean, std, out_features, norm):
    return [
        "MODEL:",
        '  META_ARCHITECTURE: "GeneralizedRCNN"',
        f'  WEIGHTS: "{weights}"',
        "  # RGB order, 0-255: the mean/std the backbone was pretrained with.",
        f"  PIXEL_MEAN: {yaml_list([255 * m for m in mean])}",
        f"  PIXEL_STD: {yaml_list([255 * s for s in std])}",
        "  RESNETS:",
        f"    DEPTH: {shape['DEPTH']}",
        f"    STEM_OUT_CHANNELS: {shape['STEM_OUT_CHANNELS']}",
        f"    RES2_OUT_CHANNELS: {shape['RES2_OUT_CHANNELS']}",
        f"    WIDTH_PER_GROUP: {shape['WIDTH_PER_GROUP']}",
        f"    NUM_GROUPS: {shape['NUM_GROUPS']}",
        "    # torchvision-style blocks: the stride sits in the 3x3 conv.",
        "    STRIDE_IN_1X1: False",
        f'    NORM: "{norm}"',
        f"    OUT_FEATURES: {yaml_list(out_features)}",
    ]


def c4_voc_config(weights, shape, mean, std, roi_head, norm):
    lines = [
        "# Faster R-CNN R-C4 on PASCAL VOC 2007+2012 detection from a virtex backbone, as the VirTex",
        "# paper (after MoCo): all layers trained, SyncBN, extra BN after res5, 24K iterations.",
        *common_model(weights, shape, mean, std, ['"res4"'], norm),
        "  MASK_ON: False",
        "  BACKBONE:",
        '    NAME: "build_resnet_backbone"',
        "    FREEZE_AT: 0",
        "  RPN:",
        "    PRE_NMS_TOPK_TEST: 6000",
        "    POST_NMS_TOPK_TEST: 1000",
        "  ROI_HEADS:",
        f'    NAME: "{roi_head}"',
        "    NUM_CLASSES: 20",
        "INPUT:",
        '  FORMAT: "RGB"',
        f"  MIN_SIZE_TRAIN: {tuple_str(list(range(480, 801, 32)))}",
        "  MIN_SIZE_TEST: 800",
        "DATASETS:",
        f"  TRAIN: {tuple_str(['voc_2007_trainval', 'voc_2012_trainval'])}",
        f"  TEST: {tuple_str(['voc_2007_test'])}",
        "SOLVER:",
        "  IMS_PER_BATCH: 16  # 8 GPUs; scale BASE_LR linearly with it",
        "  BASE_LR: 0.02",
        "  STEPS: (18000, 22000)",
        "  MAX_ITER: 24000",
        "  WARMUP_ITERS: 100",
        "TEST:",
        "  PRECISE_BN:",
        "    ENABLED: True",
        "VERSION: 2",
    ]
    return "\n".join(lines) + "\n"


def fpn_coco_config(weights, shape, mean, std, norm):
    stages = ['"res2"', '"res3"', '"res4"', '"res5"']
    lines = [
        "# Mask R-CNN R-FPN on COCO 2017 instance segmentation from a virtex backbone, as the VirTex",
        "# paper (after MoCo): all layers trained, SyncBN in the backbone and the FPN, 2x schedule.",
        *common_model(weights, shape, mean, std, stages, norm),
        "  MASK_ON: True",
        "  BACKBONE:",
        '    NAME: "build_resnet_fpn_backbone"',
        "    FREEZE_AT: 0",
        "  FPN:",
        f"    IN_FEATURES: {yaml_list(stages)}",
        f'    NORM: "{norm}"',
        "  ANCHOR_GENERATOR:",
        "    SIZES: [[32], [64], [128], [256], [512]]",
        "    ASPECT_RATIOS: [[0.5, 1.0, 2.0]]",
        "  RPN:",
        '    IN_FEATURES: ["p2", "p3", "p4", "p5", "p6"]',
        "    PRE_NMS_TOPK_TRAIN: 2000",
        "    PRE_NMS_TOPK_TEST: 1000",
        "    POST_NMS_TOPK_TRAIN: 1000",
        "    POST_NMS_TOPK_TEST: 1000",
        "  ROI_HEADS:",
        '    NAME: "StandardROIHeads"',
        '    IN_FEATURES: ["p2", "p3", "p4", "p5"]',
        "    NUM_CLASSES: 80",
        "  ROI_BOX_HEAD:",
        '    NAME: "FastRCNNConvFCHead"',
        "    NUM_FC: 2",
        "    POOLER_RESOLUTION: 7",
        "  ROI_MASK_HEAD:",
        '    NAME: "MaskRCNNConvUpsampleHead"',
        "    NUM_CONV: 4",
        "    POOLER_RESOLUTION: 14",
        "INPUT:",
        '  FORMAT: "RGB"',
        f"  MIN_SIZE_TRAIN: {tuple_str(list(range(640, 801, 32)))}",
        "  MIN_SIZE_TEST: 800",
        "DATASETS:",
        f"  TRAIN: {tuple_str(['coco_2017_train'])}",
        f"  TEST: {tuple_str(['coco_2017_val'])}",
        "SOLVER:",
        "  IMS_PER_BATCH: 16  # 8 GPUs; scale BASE_LR linearly with it",
        "  BASE_LR: 0.02",
        "  STEPS: (120000, 160000)",
        "  MAX_ITER: 180000",
        "TEST:",
        "  PRECISE_BN:",
        "    ENABLED: True",
        "VERSION: 2",
    ]
    return "\n".join(lines) + "\n"


def float_list(meta, key, default):
    """A metadata entry holding a JSON list of three numbers, or the default."""
    if key not in meta:
        return default, False
    vals = [float(x) for x in meta[key].strip("[]").split(",")]
    if len(vals) != 3:
        raise ValueError(f"metadata {key} = {meta[key]!r}: expected three numbers")
    return vals, True


def write_atomic(path, data):
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog="\n".join(__doc__.split("\n")[2:]))
    ap.add_argument("export", help="safetensors file from ./virtex export --names detectron2")
    ap.add_argument("--out", required=True, help="output folder (created)")
    ap.add_argument("--name", default="virtex_backbone", help="checkpoint file name (no .pkl)")
    ap.add_argument("--roi-head", choices=["extra-norm", "standard"], default="extra-norm",
                    help="C4 ROI head: the paper's Res5ROIHeadsExtraNorm (default) or Res5ROIHeads")
    ap.add_argument("--norm", default="SyncBN",
                    help='normalisation in the backbone/FPN (default SyncBN; "BN" on one GPU)')
    a = ap.parse_args(argv)
    try:
        tensors, meta = read_safetensors(a.export)
        if meta.get("names") != "detectron2":
            raise ValueError(f"{a.export}: names {meta.get('names')!r}, not detectron2 "
                             "(export with ./virtex export --names detectron2)")
        arch = meta.get("arch")
        if not arch:
            raise ValueError(f"{a.export}: no arch in its metadata")
        shape = resnet_shape(arch)
        check_keys(tensors, shape)
        mean, known = float_list(meta, "mean", IMAGENET_MEAN)
        std, _ = float_list(meta, "std", IMAGENET_STD)
    except (OSError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    os.makedirs(a.out, exist_ok=True)
    weights = os.path.abspath(os.path.join(a.out, a.name + ".pkl"))
    ckpt = {"model": {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in tensors.items()},
            "__author__": f"virtex ({arch})", "matching_heuristics": True}
    write_atomic(weights, pickle.dumps(ckpt, protocol=2))
    written = [weights]
    if shape["DEPTH"] in (18, 34):
        print(f"note: no C4 config for {arch} (Detectron2's res5 head is built of bottleneck "
              "blocks)", file=sys.stderr)
    else:
        head = "Res5ROIHeadsExtraNorm" if a.roi_head == "extra-norm" else "Res5ROIHeads"
        path = os.path.join(a.out, "faster_rcnn_C4_voc.yaml")
        write_atomic(path, c4_voc_config(weights, shape, mean, std, head, a.norm).encode())
        written.append(path)
    path = os.path.join(a.out, "mask_rcnn_FPN_coco.yaml")
    write_atomic(path, fpn_coco_config(weights, shape, mean, std, a.norm).encode())
    written.append(path)
    if not known:
        print("note: the export has no mean/std metadata; wrote ImageNet's", file=sys.stderr)
    print(f"{arch}: {len(tensors)} tensors; wrote " + ", ".join(written))
    return 0


if __name__ == "__main__":
    sys.exit(main())
