#!/usr/bin/python3
"""PyTorch replica of a virtex real-photo recipe's pretraining (issue 17, point 4).

Replays the pretrain step of a virtex pipeline file (or virtex's defaults changed by flags) in
PyTorch: the same captions and images (read from virtex's own tokenize and augment artifacts),
transform, model layout and initialisation, optimizer groups, LookAhead, schedule and clipping, for
the same number of steps. It writes the backbone as visual.safetensors (torchvision names, like a
virtex pretrain artifact) + model.json, so virtex's own extract + evaluate + report score it
(tools/replica_score.ts) beside virtex's backbones and random init, by the very same protocol.

  /usr/bin/python3 tools/recipe_replica.py --virtex-recipe examples/flickr8k.json [--step NAME]
      [--tokens DIR] [--shards DIR] [--train.steps 100] [--set optim.lookaheadK=0] ...
      [--threads 2] --out DIR
  node_modules/.bin/deno run -A tools/replica_score.ts --replica DIR [--virtex-model KEY ...]

The recipe is resolved by virtex itself (tools/replica_plan.ts: its schemas and defaults), which
also lists the model's parameter names and shapes and its optimizer groups; the replica's must
match them one by one. --tokens/--shards name the recipe's tokenize and augment artifact folders
(e.g. in another virtex cache, only read); without them they are built with ./virtex into
$VIRTEX_CACHE (a cache hit when built before). Either way the artifact's config must be the
recipe's. Writes model.json, visual.safetensors, metrics.jsonl and summary.json to --out.
Run from the folder the recipe's relative paths start from (the repository root for examples/).
See tools/recipe_replica.md for the measured comparison.
"""

import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from replica import data as D  # noqa: E402
from replica.model import PretrainingModel, param_shapes  # noqa: E402
from replica.recipe import build_artifact, resolve  # noqa: E402
from replica.train import param_groups, pretrain  # noqa: E402
from torch_fixtures import write_safetensors  # noqa: E402

# flag -> (role, key) of the recipe it overrides (virtex's config keys).
KEY_FLAGS = {
    "model.task": ("pretrain", "model.task"), "model.visual": ("pretrain", "model.visual"),
    "model.textual": ("pretrain", "model.textual"), "model.initStd": ("pretrain", "model.initStd"),
    "optim.cnnLr": ("pretrain", "optim.cnnLr"), "optim.headLr": ("pretrain", "optim.headLr"),
    "optim.warmupSteps": ("pretrain", "optim.warmupSteps"), "train.steps": ("pretrain", "train.steps"),
    "train.batchSize": ("pretrain", "train.batchSize"), "transform.size": ("pretrain", "transform.size"),
    "transform.scale": ("pretrain", "transform.scale"), "seed": ("pretrain", "train.seed"),
    "vocabSize": ("tokenize", "vocabSize"), "shortSide": ("augment", "shortSide"),
}


def parse_args(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog=__doc__.split("\n\n", 1)[1],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--virtex-recipe", metavar="PIPELINE.json", help="virtex pipeline file to replay (its pretrain step)")
    ap.add_argument("--step", help="the pretrain step to replay (default: the file's first)")
    for flag in KEY_FLAGS:
        ap.add_argument(f"--{flag}", metavar="V", help=f"override {KEY_FLAGS[flag][0]} key {KEY_FLAGS[flag][1]}")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="override any pretrain key (dotted, value as JSON), e.g. optim.lookaheadK=0")
    ap.add_argument("--tokens", metavar="DIR", help="virtex tokenize artifact folder (default: built with ./virtex)")
    ap.add_argument("--shards", metavar="DIR", help="virtex augment artifact folder (default: built with ./virtex)")
    ap.add_argument("--random-init", action="store_true",
                    help="no training: export the backbone as initialised under --seed (a PyTorch random-init baseline)")
    ap.add_argument("--bn-calibrate", type=int, default=0, metavar="N",
                    help="with --random-init: first N forward passes over training batches in train mode, no gradient "
                         "(BatchNorm running statistics of the data, weights untouched)")
    ap.add_argument("--snapshot-every", type=int, default=0, metavar="N",
                    help="also export the backbone every N steps into OUT/step-<N>/ (scored like OUT itself)")
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    ap.add_argument("--out", required=True, help="output folder (created; files written atomically)")
    ap.add_argument("--log-every", type=int, default=10)
    return ap.parse_args(argv)


def role_sets(a):
    sets = []
    for flag, (role, key) in KEY_FLAGS.items():
        v = getattr(a, flag, None)
        if v is None:
            continue
        if flag == "transform.scale" and not v.startswith("["):
            v = f"[{v}]"
        sets.append(f"{role}.{key}={v}")
    return sets + [f"pretrain.{s}" for s in a.set]


def check_layout(model, plan):
    """Parameter names and shapes, and optimizer groups (members, lr, decay), equal to virtex's one by
    one; returns parameter counts per part for the report."""
    mine, theirs = dict(param_shapes(model)), dict((n, s) for n, s in plan["params"])
    if mine != theirs:
        only_m, only_t = sorted(set(mine) - set(theirs))[:5], sorted(set(theirs) - set(mine))[:5]
        diff = [n for n in mine if n in theirs and mine[n] != theirs[n]][:5]
        raise SystemExit(f"parameter mismatch with virtex: only replica {only_m}, only virtex {only_t}, shapes {diff}")
    cfg = plan["pretrain"]["config"]["optim"]
    lr = {"cnn": cfg["cnnLr"], "head_no_decay": cfg["headLr"], "head": cfg["headLr"]}
    wd = {"cnn": cfg["weightDecay"], "head_no_decay": 0.0, "head": cfg["weightDecay"]}
    groups = {n: sorted(p for p, _ in ps) for n, ps in param_groups(model).items() if ps}
    for g in plan["groups"]:
        if sorted(g["params"]) != groups.get(g["name"]) or g["lr"] != lr[g["name"]] or g["weightDecay"] != wd[g["name"]]:
            raise SystemExit(f"optimizer group {g['name']!r} differs from virtex's (members, lr or weight decay)")
    if sorted(g["name"] for g in plan["groups"]) != sorted(groups):
        raise SystemExit(f"optimizer groups {sorted(groups)} differ from virtex's {[g['name'] for g in plan['groups']]}")
    count = lambda d, pre: sum(int(np.prod(s)) for n, s in d.items() if n.startswith(pre))
    parts = {(p.rstrip(".") or "total"): count(mine, p) for p in ("visual.", "textual.", "backward_textual.", "")}
    return parts, {n: len(ps) for n, ps in groups.items()}


def write_atomic(path, text):
    with open(path + ".tmp", "w") as f:
        f.write(text)
    os.replace(path + ".tmp", path)


def artifact(flag, stage, config, check):
    """A virtex artifact folder: the one given (its manifest's config checked against the recipe's
    keys in `check`), else built with ./virtex. Returns (folder, manifest)."""
    d = os.path.abspath(flag) if flag else build_artifact(stage, config)
    try:
        man = json.load(open(os.path.join(d, "manifest.json")))
    except OSError as e:
        raise SystemExit(f"--{'tokens' if stage == 'tokenize' else 'shards'} {d}: not a virtex artifact ({e})")
    if man["stage"] != stage:
        raise SystemExit(f"{d}: a {man['stage']} artifact, expected {stage}")
    same = lambda x, y: (os.path.realpath(x) == os.path.realpath(y) if isinstance(x, str) and isinstance(y, str)
                         and "/" in x + y else x == y)
    for k, want in check.items():
        if not same(man["config"].get(k), want):
            raise SystemExit(f"{d}: {stage} config {k} = {man['config'].get(k)!r}, the recipe has {want!r}")
    return d, man


def load_data(a, plan):
    """(captions, training image ids, their uint8 images [3, H, W]) from virtex's artifacts."""
    tok, cfg = plan["tokenize"], plan["pretrain"]["config"]
    tcheck = {k: tok["config"][k] for k in ("captions", "vocabSplit") if k in tok["config"]}
    tdir, tman = artifact(a.tokens, "tokenize", tok["config"], {**tcheck, "vocabSize": tok["vocabSize"]})
    caps = D.Captions.from_virtex_artifact(tdir)
    short = plan["augment"]["shortSide"]
    sdir, sman = artifact(a.shards, "augment", plan["augment"]["config"], {"shortSide": short})
    ids = [i for i in (D.read_split(cfg["trainSplit"]) if cfg["trainSplit"] else sorted(caps.by_image))
           if i in caps.by_image]
    t0 = time.time()
    imgs, _ = D.read_shards(sdir, ids)
    print(f"[replica] captions: {tdir} ({len(caps.pieces)} pieces); {len(ids)} training images at short side "
          f"{short} from {sdir} ({time.time() - t0:.0f} s)", flush=True)
    return caps, ids, imgs, dict(tokens=tman["key"], shards=sman["key"])


def train_summary(metrics, seconds, batch):
    """Steps, time, rate and loss at start and end (None for a 0-step run: a random-init export)."""
    losses = [x["loss"] for x in metrics]
    mean = lambda xs: float(np.mean(xs)) if xs else None
    return dict(steps=len(losses), seconds=seconds, imgPerSec=len(losses) * batch / seconds if losses else None,
                lossFirst10=mean(losses[:10]), lossLast10=mean(losses[-10:]), finalLoss=losses[-1] if losses else None)


def calibrate_bn(visual, batches, n):
    """n forward passes in train mode without gradients: BatchNorm running statistics follow the data."""
    visual.train()
    with torch.no_grad():
        for _ in range(n):
            visual(batches.next()[0])


def main(argv=None):
    a = parse_args(argv)
    torch.set_num_threads(a.threads)
    plan = resolve(a.virtex_recipe, a.step, role_sets(a))
    cfg = plan["pretrain"]["config"]
    m, o, t = cfg["model"], cfg["optim"], cfg["train"]
    if a.bn_calibrate and not a.random_init:
        raise SystemExit("--bn-calibrate goes with --random-init")
    if o["schedule"] != "cosine" or t["accumulate"] != 1 or t["percentImages"] != 100 or t["oneCaptionPerImage"]:
        raise SystemExit("the replica covers schedule cosine, accumulate 1, percentImages 100, all captions")
    out = os.path.abspath(a.out)
    os.makedirs(out, exist_ok=True)
    print(f"[replica] {plan['recipe']} step {plan['pretrain']['step']}: {m['visual']} + {m['textual']}, "
          f"{t['steps']} steps of {t['batchSize']} -> {out}", flush=True)
    caps, ids, imgs, inputs = load_data(a, plan)

    torch.manual_seed(t["seed"])
    np.random.seed(t["seed"])
    model = PretrainingModel(m["task"], m["visual"], m["textual"], len(caps.pieces), m["maxLength"], m["dropout"], m["initStd"])
    params, groups = check_layout(model, plan)
    print("[replica] parameters equal virtex's name by name: " + ", ".join(f"{k} {v:,}" for k, v in params.items())
          + "; optimizer groups too: " + ", ".join(f"{k} {v} tensors" for k, v in groups.items()), flush=True)
    batches = D.Batches(imgs, caps, ids, t["batchSize"], D.TrainTransform(cfg["transform"]), t["seed"])
    t0 = time.time()

    def export(folder, metrics):
        """model.json, visual.safetensors, metrics.jsonl and summary.json of the backbone as it is now."""
        os.makedirs(folder, exist_ok=True)
        write_atomic(os.path.join(folder, "metrics.jsonl"), "".join(json.dumps(x) + "\n" for x in metrics))
        write_safetensors(os.path.join(folder, "visual.safetensors"), model.visual.state_dict(), {})
        model_json = dict(task=m["task"], visual=m["visual"], textual=m["textual"], dropout=m["dropout"],
                          maxLength=m["maxLength"], initStd=m["initStd"], vocabSize=len(caps.pieces),
                          numClasses=None, imageSize=cfg["transform"]["size"], tokens=inputs["tokens"])
        write_atomic(os.path.join(folder, "model.json"), json.dumps(model_json, indent=1))
        summary = dict(source="tools/recipe_replica.py (PyTorch)", recipe=plan["recipe"], step=plan["pretrain"]["step"],
                       config=cfg, inputs=inputs, params=params, optimizerGroups=groups, threads=a.threads,
                       torch=torch.__version__, train=train_summary(metrics, time.time() - t0, t["batchSize"]),
                       randomInit=a.random_init, bnCalibrate=a.bn_calibrate if a.random_init else 0)
        write_atomic(os.path.join(folder, "summary.json"), json.dumps(summary, indent=1))
        return summary["train"]

    def snapshot(done, metrics):
        if a.snapshot_every and done % a.snapshot_every == 0 and done < t["steps"]:
            export(os.path.join(out, f"step-{done}"), metrics)
            print(f"[replica] snapshot at step {done}: {os.path.join(out, f'step-{done}')}", flush=True)

    metrics = [] if a.random_init else pretrain(model, batches, o, t["steps"], a.log_every, on_step=snapshot)
    if a.random_init and a.bn_calibrate:
        calibrate_bn(model.visual, batches, a.bn_calibrate)
    train = export(out, metrics)
    if metrics:
        print(f"[replica] loss {train['lossFirst10']:.3f} (first 10 steps) -> {train['lossLast10']:.3f} (last 10), "
              f"{train['imgPerSec']:.1f} img/s, {train['seconds']:.0f} s", flush=True)
    print(f"[replica] wrote {out}", flush=True)


if __name__ == "__main__":
    sys.exit(main())
