#!/usr/bin/env python3
"""Runs Detectron2's own tools/train_net.py with the paper's C4 ROI head registered.

usage: python3 tools/detectron2_train.py DETECTRON2/tools/train_net.py --config-file CONFIG.yaml
           [train_net.py's options: --num-gpus 8, --eval-only, --resume, KEY VALUE ...]

The VirTex paper's VOC detection protocol (after MoCo) puts a batch norm after the res5 stage of
the Faster R-CNN C4 ROI head. Detectron2 has no such head; this script registers one as
"Res5ROIHeadsExtraNorm" (Res5ROIHeads whose res5 block ends in MODEL.RESNETS.NORM) in every
training process, then runs train_net.py's main(args) under Detectron2's launch() exactly as
train_net.py itself does. Configs from tools/detectron2_handoff.py name that head; with
--roi-head standard they need no registration and train_net.py can be run directly.
"""
import importlib.util
import sys


def register_extra_norm_head():
    """Registers Res5ROIHeadsExtraNorm in Detectron2's ROI head registry (once per process)."""
    from detectron2.layers import get_norm
    from detectron2.modeling.roi_heads import ROI_HEADS_REGISTRY, Res5ROIHeads

    if "Res5ROIHeadsExtraNorm" in ROI_HEADS_REGISTRY:
        return

    @ROI_HEADS_REGISTRY.register()
    class Res5ROIHeadsExtraNorm(Res5ROIHeads):
        """Res5ROIHeads with a norm layer after res5."""

        @classmethod
        def _build_res5_block(cls, cfg):
            blocks, out_channels = super()._build_res5_block(cfg)
            blocks.add_module("norm", get_norm(cfg.MODEL.RESNETS.NORM, out_channels))
            return blocks, out_channels


def load_train_net(path):
    """Detectron2's tools/train_net.py as a module (its __main__ block does not run)."""
    spec = importlib.util.spec_from_file_location("detectron2_train_net", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def worker_main(args):
    """One training process: register the head, then train_net.py's own main(args)."""
    register_extra_norm_head()
    return load_train_net(args.train_net).main(args)


def main():
    if len(sys.argv) < 2 or not sys.argv[1].endswith(".py"):
        print(__doc__, file=sys.stderr)
        return 2
    from detectron2.engine import default_argument_parser, launch

    train_net = sys.argv[1]
    args = default_argument_parser().parse_args(sys.argv[2:])
    args.train_net = train_net
    print("Command Line Args:", args)
    launch(
        worker_main,
        args.num_gpus,
        num_machines=args.num_machines,
        machine_rank=args.machine_rank,
        dist_url=args.dist_url,
        args=(args,),
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
