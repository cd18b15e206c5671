#!/usr/bin/python3
"""Reference experiment: a PyTorch replica of the `make demo` VirTex recipe on the synthetic scenes.

Pretrains a ResNet-18-style backbone (optionally narrower) by bicaptioning (forward + backward
post-norm Transformer decoders sharing a tied embedding) or by token classification (linear head
on GAP, KL to the bag-of-tokens distribution), then scores the frozen backbone with per-class
linear SVMs on GAP'ed, L2-normalised layer4 features (VOC07 11-point mAP), against a random-init
backbone with the same seed. Captions come from the tokenize artifact (BPE, vocab 400).

Usage:  /usr/bin/python3 tools/demo_recipe.py --sweep NAME [--out results.jsonl]
        /usr/bin/python3 tools/demo_recipe.py --table results.jsonl   # markdown table
Runs on one CPU thread (torch.set_num_threads(1)).
"""
import argparse
import glob
import json
import math
import os
import sys
import time
import xml.etree.ElementTree as ET

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision.transforms as T
import torchvision.transforms.functional as TF
from PIL import Image
from sklearn.svm import LinearSVC

from replica.train import LookAhead  # tools/replica: the same LookAhead as the recipe replica

torch.set_num_threads(1)
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CACHE = os.path.join(REPO, ".virtex-cache", "artifacts")
DATA = os.path.join(CACHE, "72aaf8f4bf9e87f627cc2be84997f84602acd44b49a4d85eeb4177261b3d41af", "data")
TOK = glob.glob(os.path.join(CACHE, "867c9bf8541f*"))[0]
PAD, SOS, EOS = 0, 1, 2
LEFT, RIGHT = 60, 55  # "▁left" / "▁right" pieces, swapped under horizontal flip
MEAN = torch.tensor([0.485, 0.456, 0.406]).view(3, 1, 1)
STD = torch.tensor([0.229, 0.224, 0.225]).view(3, 1, 1)


# ---------------------------------------------------------------- data
def load_png(path):
    return torch.from_numpy(np.asarray(Image.open(path).convert("RGB")).copy()).permute(2, 0, 1)


def load_captions():
    """Images [N,3,64,64] uint8 and per-image lists of token rows ([SOS] … [EOS])."""
    idx = json.load(open(os.path.join(TOK, "index.json")))
    tokens = np.fromfile(os.path.join(TOK, "tokens.i32"), dtype="<i4")
    offs = np.fromfile(os.path.join(TOK, "offsets.u32"), dtype="<u4")
    vocab = len(json.load(open(os.path.join(TOK, "vocab.json")))["pieces"])
    imgs, caps = [], []
    for im in idx["images"]:
        imgs.append(load_png(im["file"]))
        caps.append([tokens[offs[r]:offs[r + 1]].astype(np.int64) for r in range(im["first"], im["first"] + im["count"])])
    inst = json.load(open(os.path.join(DATA, "captions", "annotations", "instances_train2017.json")))
    shapes = {}  # image id -> 8-way multi-hot of shape categories (for the supervised upper bound)
    for a in inst["annotations"]:
        shapes.setdefault(str(a["image_id"]), torch.zeros(len(inst["categories"])))[a["category_id"] - 1] = 1
    sup = torch.stack([shapes.get(im["id"], torch.zeros(len(inst["categories"]))) for im in idx["images"]])
    return torch.stack(imgs), caps, vocab, idx["maxLength"], sup


def load_voc(name, split, classes):
    root = os.path.join(DATA, name, "VOC2007")
    ids = [l.split()[0] for l in open(os.path.join(root, "ImageSets", "Main", f"{split}.txt"))]
    lab = np.zeros((len(ids), len(classes)), np.int8)
    for ci, c in enumerate(classes):
        m = {a: int(b) for a, b in (l.split() for l in open(os.path.join(root, "ImageSets", "Main", f"{c}_{split}.txt")))}
        lab[:, ci] = [m[i] for i in ids]
    imgs = torch.stack([load_png(os.path.join(root, "JPEGImages", f"{i}.png")) for i in ids])
    return imgs, lab


def voc_sets():
    cls = json.load(open(os.path.join(DATA, "dataset.json")))["layout"]["vocClasses"]
    out = {}
    for name in ("voc", "voc-shapecolor"):
        root = os.path.join(DATA, name, "VOC2007", "ImageSets", "Main")
        if not os.path.exists(os.path.join(root, "trainval.txt")):
            raise SystemExit(f"missing {root}/trainval.txt")
        out[name] = (cls[name], load_voc(name, "trainval", cls[name]), load_voc(name, "test", cls[name]))
    return out


# ---------------------------------------------------------------- models
class Block(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.c1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.b1 = nn.BatchNorm2d(cout)
        self.c2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.b2 = nn.BatchNorm2d(cout)
        nn.init.zeros_(self.b2.weight)  # zero-init last BN gamma
        self.down = None
        if stride != 1 or cin != cout:
            self.down = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        y = self.b2(self.c2(F.relu(self.b1(self.c1(x)))))
        return F.relu(y + (x if self.down is None else self.down(x)))


class ResNet18(nn.Module):
    """torchvision resnet18 layout (7×7/2 stem + maxpool, [2,2,2,2] basic blocks) with base width w."""

    def __init__(self, w=64, maxpool=True):
        super().__init__()
        pool = [nn.MaxPool2d(3, 2, 1)] if maxpool else []  # without it: layer4 grid S/16, 4x the FLOPs
        self.stem = nn.Sequential(nn.Conv2d(3, w, 7, 2, 3, bias=False), nn.BatchNorm2d(w), nn.ReLU(), *pool)
        layers, cin = [], w
        for i, c in enumerate((w, 2 * w, 4 * w, 8 * w)):
            layers += [Block(cin, c, 1 if i == 0 else 2), Block(c, c, 1)]
            cin = c
        self.layers = nn.Sequential(*layers)
        self.dim = 8 * w
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x):  # [B,3,S,S] -> [B,8w,S/32,S/32]
        return self.layers(self.stem(x))


class Decoder(nn.Module):
    """One direction: post-norm TransformerDecoder over the projected visual grid."""

    def __init__(self, emb, pos, vis, h, layers, heads, ff):
        super().__init__()
        self.emb, self.pos, self.vis = emb, pos, vis
        self.norm = nn.LayerNorm(h)
        self.drop = nn.Dropout(0.1)
        layer = nn.TransformerDecoderLayer(h, heads, ff, 0.1, activation="gelu", batch_first=True, norm_first=False)
        self.dec = nn.TransformerDecoder(layer, layers)

    def forward(self, grid, tok):  # grid [B,C,g,g], tok [B,L] -> logits [B,L,V]
        mem = self.vis(grid.flatten(2).transpose(1, 2))  # [B,g*g,H]
        L = tok.shape[1]
        x = self.drop(self.norm(self.emb(tok) + self.pos.weight[:L]))
        mask = torch.triu(torch.full((L, L), float("-inf")), 1)
        y = self.dec(x, mem, tgt_mask=mask, tgt_key_padding_mask=tok == PAD)
        return y @ self.emb.weight.t()  # tied output


class BiCap(nn.Module):
    def __init__(self, cdim, vocab, maxlen, h=128, layers=1, heads=2, ff=512):
        super().__init__()
        emb = nn.Embedding(vocab, h, padding_idx=PAD)
        nn.init.normal_(emb.weight, std=0.02)
        pos = nn.Embedding(maxlen, h)
        nn.init.normal_(pos.weight, std=0.02)
        vis = nn.Linear(cdim, h)
        self.fwd = Decoder(emb, pos, vis, h, layers, heads, ff)
        self.bwd = Decoder(emb, pos, vis, h, layers, heads, ff)

    def loss(self, grid, tok, lens):  # tok [B,L] padded [SOS] … [EOS]
        lf = self.fwd(grid, tok[:, :-1])
        l1 = F.cross_entropy(lf.flatten(0, 1), tok[:, 1:].flatten(), ignore_index=PAD)
        rev = torch.zeros_like(tok)  # [EOS] … [SOS] reversed per row
        for i, n in enumerate(lens):
            rev[i, :n] = tok[i, :n].flip(0)
        lb = self.bwd(grid, rev[:, :-1])
        l2 = F.cross_entropy(lb.flatten(0, 1), rev[:, 1:].flatten(), ignore_index=PAD)
        return l1 + l2

    @torch.no_grad()
    def greedy(self, grid, maxlen=20):
        tok = torch.full((grid.shape[0], 1), SOS, dtype=torch.long)
        for _ in range(maxlen):
            nxt = self.fwd(grid, tok)[:, -1].argmax(-1, keepdim=True)
            tok = torch.cat([tok, nxt], 1)
        return tok


class TokCls(nn.Module):
    def __init__(self, cdim, vocab):
        super().__init__()
        self.fc = nn.Linear(cdim, vocab)
        self.vocab = vocab

    def loss(self, grid, tok, lens):
        target = torch.zeros(tok.shape[0], self.vocab)
        target.scatter_add_(1, tok, torch.ones_like(tok, dtype=torch.float))
        target[:, [PAD, SOS, EOS]] = 0
        target = target / target.sum(1, keepdim=True)
        logp = F.log_softmax(self.fc(grid.mean((2, 3))), -1)
        return F.kl_div(logp, target, reduction="batchmean")


class Supervised(nn.Module):
    """Upper bound: linear head on GAP, BCE on the caption images' shape categories (instances json)."""

    def __init__(self, cdim, sup):
        super().__init__()
        self.fc = nn.Linear(cdim, sup.shape[1])
        self.sup = sup

    def loss(self, grid, tok, lens, ids):
        return F.binary_cross_entropy_with_logits(self.fc(grid.mean((2, 3))), self.sup[ids])


# ---------------------------------------------------------------- train / eval
def augment(imgs, size, scale, jitter, hue):
    cj = T.ColorJitter(jitter, jitter, jitter, hue)
    rrc = T.RandomResizedCrop(size, scale=scale, antialias=True) if "antialias" in T.RandomResizedCrop.__init__.__code__.co_varnames else T.RandomResizedCrop(size, scale=scale)
    out, flips = [], []
    for im in imgs:
        x = rrc(im.float() / 255)
        f = bool(torch.rand(()) < 0.5)
        if f:
            x = TF.hflip(x)
        if jitter > 0 and torch.rand(()) < 0.8:
            x = cj(x)
        out.append((x - MEAN) / STD)
        flips.append(f)
    return torch.stack(out), flips


def batch_tokens(caps, ids, flips, g):
    rows = []
    for i, f in zip(ids, flips):
        c = caps[i][int(g.integers(len(caps[i])))].copy()
        if f:
            l, r = c == LEFT, c == RIGHT
            c[l], c[r] = RIGHT, LEFT
        rows.append(torch.from_numpy(c))
    lens = [len(r) for r in rows]
    return nn.utils.rnn.pad_sequence(rows, batch_first=True, padding_value=PAD), lens


def pretrain(cfg, cnn, imgs, caps, vocab, maxlen, sup):
    torch.manual_seed(cfg["seed"] + 1)
    g = np.random.default_rng(cfg["seed"])
    if cfg["task"] == "bicap":
        head = BiCap(cnn.dim, vocab, maxlen, cfg["h"], cfg["layers"])
    elif cfg["task"] == "sup":
        head = Supervised(cnn.dim, sup)
    else:
        head = TokCls(cnn.dim, vocab)
    steps = cfg["images"] // cfg["batch"]
    groups = [{"params": list(cnn.parameters()), "lr": cfg["cnn_lr"]}, {"params": list(head.parameters()), "lr": cfg["head_lr"]}]
    base = [cfg["cnn_lr"], cfg["head_lr"]]
    if cfg["opt"] == "adamw":  # lrs read as AdamW lrs
        sgd = torch.optim.AdamW(groups, weight_decay=1e-2)
    else:
        sgd = torch.optim.SGD(groups, momentum=0.9, weight_decay=1e-4)
    opt = LookAhead(sgd) if cfg["lookahead"] else sgd
    warm = min(cfg["warmup"], steps // 4)
    cnn.train(); head.train()
    losses = []
    for s in range(steps):
        f = (s + 1) / warm if s < warm else 0.5 * (1 + math.cos(math.pi * (s - warm) / max(1, steps - warm)))
        for gr, b in zip(sgd.param_groups, base):
            gr["lr"] = b * f
        ids = g.integers(len(imgs), size=cfg["batch"])
        x, flips = augment(imgs[ids], cfg["size"], (cfg["scale"], 1.0), cfg["jitter"], cfg["hue"])
        tok, lens = batch_tokens(caps, ids, flips, g)
        loss = head.loss(cnn(x), tok, lens, ids) if cfg["task"] == "sup" else head.loss(cnn(x), tok, lens)
        sgd.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(list(cnn.parameters()) + list(head.parameters()), 10.0)
        opt.step()
        losses.append(loss.item())
    return head, float(np.mean(losses[:10])), float(np.mean(losses[-10:]))


@torch.no_grad()
def features(cnn, imgs, size):
    cnn.eval()
    out = []
    for i in range(0, len(imgs), 100):
        x = imgs[i:i + 100].float() / 255
        if x.shape[-1] != size:
            x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
        out.append(F.normalize(cnn((x - MEAN) / STD).mean((2, 3)), dim=1))
    return torch.cat(out).numpy()


def ap11(scores, labels):
    keep = labels != 0
    s, y = scores[keep], labels[keep] > 0
    order = np.argsort(-s)
    tp = np.cumsum(y[order]); fp = np.cumsum(~y[order])
    rec = tp / max(1, y.sum()); prec = tp / np.maximum(1, tp + fp)
    return float(np.mean([prec[rec >= t].max() if (rec >= t).any() else 0 for t in np.arange(0, 1.1, 0.1)]))


def svm_map(ftr, ltr, fte, lte, costs=(1.0,)):
    """Mean VOC07 AP11 (%) of per-class LinearSVCs; C chosen by 3-fold CV AP when several costs."""
    aps = []
    for c in range(ltr.shape[1]):
        y = np.where(ltr[:, c] > 0, 1, -1)  # difficult -> negative in training
        fold = np.arange(len(y)) % 3
        best, bc = -1, costs[0]
        for C in costs if len(costs) > 1 else ():
            cv = []
            for k in range(3):
                tr, va = fold != k, fold == k
                if len(set(y[tr])) < 2 or (y[va] > 0).sum() == 0:
                    continue
                m = LinearSVC(C=C, class_weight={1: 2, -1: 1}, dual=True, max_iter=2000).fit(ftr[tr], y[tr])
                cv.append(ap11(m.decision_function(ftr[va]), y[va]))
            if cv and np.mean(cv) > best:
                best, bc = np.mean(cv), C
        m = LinearSVC(C=bc, class_weight={1: 2, -1: 1}, dual=True, max_iter=2000).fit(ftr, y)
        aps.append(ap11(m.decision_function(fte), lte[:, c]))
    return 100 * float(np.mean(aps))


def evaluate(cnn, size, vocs):
    res = {}
    for name, (_, (itr, ltr), (ite, lte)) in vocs.items():
        res[name] = svm_map(features(cnn, itr, size), ltr, features(cnn, ite, size), lte)
    return res


DEFAULT = dict(task="bicap", images=4800, batch=32, cnn_lr=0.1, head_lr=0.05, scale=0.2, jitter=0.4, hue=0.1,
               size=64, width=64, maxpool=True, opt="sgd", h=128, layers=1, lookahead=True, warmup=20, seed=0)


def run(cfg, data, vocs, out):
    cfg = {**DEFAULT, **cfg}
    torch.manual_seed(cfg["seed"])
    cnn = ResNet18(cfg["width"], cfg["maxpool"])
    t0 = time.time()
    rec = dict(cfg)
    if cfg["task"] != "random":
        imgs, caps, vocab, maxlen, sup = data
        head, l0, l1 = pretrain(cfg, cnn, imgs, caps, vocab, maxlen, sup)
        rec.update(loss_first=round(l0, 3), loss_last=round(l1, 3))
        if cfg["task"] == "bicap":  # how many distinct greedy captions on 20 train images
            cnn.eval(); head.eval()
            x = (TF.resize(imgs[:20].float() / 255, [cfg["size"]], antialias=True) - MEAN) / STD
            rec["distinct_captions"] = len({tuple(r.tolist()) for r in head.greedy(cnn(x))})
    rec["train_s"] = round(time.time() - t0, 1)
    t1 = time.time()
    rec.update({f"map_{k}": round(v, 2) for k, v in evaluate(cnn, cfg["size"], vocs).items()})
    rec["eval_s"] = round(time.time() - t1, 1)
    print(json.dumps(rec), flush=True)
    with open(out, "a") as f:
        f.write(json.dumps(rec) + "\n")


SWEEPS = {
    "stage4": [dict(task="random", width=16, maxpool=False, seed=1), dict(width=16, maxpool=False, seed=1),
               dict(task="sup", width=16, maxpool=False),
               dict(width=16, maxpool=False, opt="adamw", cnn_lr=2e-3, head_lr=2e-3, lookahead=False),
               dict(task="tokcls", width=16, maxpool=False)],
    "stage3": [dict(task="sup", width=16, images=19200), dict(task="sup", width=32),dict(width=32, opt="adamw", cnn_lr=2e-3, head_lr=2e-3, lookahead=False),
               dict(width=16, opt="adamw", cnn_lr=2e-3, head_lr=2e-3, lookahead=False, images=19200)],
    "stage2": [dict(width=32, images=19200), dict(task="random", width=32, seed=1),
               dict(task="random", width=16), dict(width=16, images=19200), dict(task="tokcls", width=16, images=19200),
               dict(task="random", width=16, maxpool=False), dict(width=16, maxpool=False),
               dict(task="tokcls", width=32, images=19200), dict(width=16, maxpool=False, images=19200)],
    "stage1": [dict(task="random", width=32), dict(width=32), dict(task="tokcls", width=32),
               dict(width=32, head_lr=0.2), dict(width=32, scale=0.6, hue=0.0), dict(width=32, cnn_lr=0.2),
               dict(task="random"), dict(), dict(task="tokcls"),
               dict(width=32, head_lr=1e-3), dict(width=32, scale=0.6), dict(width=32, hue=0.0),
               dict(width=32, lookahead=False), dict(width=32, batch=64), dict(width=32, batch=16),
               dict(task="random", width=32, size=32), dict(width=32, size=32)],
    # the demo's current setting, then single-knob changes at 4,800 images
    "base": [dict(task="random"), dict(task="bicap"), dict(task="tokcls")],
    "knobs": [dict(head_lr=0.2), dict(head_lr=1e-3), dict(cnn_lr=0.2), dict(scale=0.6), dict(hue=0.0),
              dict(scale=0.6, hue=0.0), dict(lookahead=False)],
    "small": [dict(task="random", width=32), dict(width=32), dict(task="tokcls", width=32),
              dict(task="random", size=32), dict(size=32), dict(task="random", width=32, size=32), dict(width=32, size=32)],
}


def table(path):
    rows = [json.loads(l) for l in open(path)]
    keys = ["task", "images", "batch", "cnn_lr", "head_lr", "scale", "hue", "size", "width", "maxpool", "opt", "lookahead", "seed"]
    print("| " + " | ".join(keys + ["shape mAP", "shape×colour mAP", "loss first→last", "distinct caps/20", "train s", "eval s"]) + " |")
    print("|" + "---|" * (len(keys) + 6))
    for r in rows:
        r = {**DEFAULT, **r}
        loss = f"{r['loss_first']}→{r['loss_last']}" if "loss_first" in r else "-"
        print("| " + " | ".join(str(r[k]) for k in keys) +
              f" | {r['map_voc']} | {r['map_voc-shapecolor']} | {loss} | {r.get('distinct_captions', '-')} | {r['train_s']} | {r['eval_s']} |")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sweep")
    ap.add_argument("--config", help="JSON overrides for one run")
    ap.add_argument("--out", default="/tmp/demo_recipe.jsonl")
    ap.add_argument("--table")
    a = ap.parse_args()
    if a.table:
        return table(a.table)
    data, vocs = load_captions(), voc_sets()
    cfgs = SWEEPS[a.sweep] if a.sweep else [json.loads(a.config)]
    for c in cfgs:
        run(c, data, vocs, a.out)


if __name__ == "__main__":
    sys.exit(main())
