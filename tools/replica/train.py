"""Optimizer, LR schedule and pretraining loop as pipeline/pretrain/{optimizer,trainer}.ts.

SGD (momentum, weight decay) in three groups — `visual.*` at cnnLr, the head's LayerNorm weights
and biases inside its embedding and transformer at headLr without decay, the rest of the head at
headLr — inside LookAhead(alpha, k); lr = base * factor with factor = step / warmup during warmup
(0 on the first step), then cosine to 0 at train.steps; global gradient norm clipped.
"""
import math
import re
import sys
import time

import torch
import torch.nn as nn

# The reference's `.*textual.(embedding|transformer).*(norm.*|bias)`, on virtex's names.
HEAD_NO_DECAY = re.compile(r"^(backward_)?textual\.(embedding|transformer)\..*(norm|bias)")


def param_groups(model):
    """{group name: [(param name, param)]} by virtex's rules: cnn, head_no_decay, head (first match wins)."""
    groups = {"cnn": [], "head_no_decay": [], "head": []}
    for name, p in model.named_parameters():
        if name.startswith("visual."):
            groups["cnn"].append((name, p))
        elif HEAD_NO_DECAY.match(name):
            groups["head_no_decay"].append((name, p))
        else:
            groups["head"].append((name, p))
    return groups


def build_optimizer(model, optim):
    """SGD over virtex's three groups, wrapped in LookAhead when lookaheadK > 0."""
    g = param_groups(model)
    spec = [("cnn", optim["cnnLr"], optim["weightDecay"]), ("head_no_decay", optim["headLr"], 0.0),
            ("head", optim["headLr"], optim["weightDecay"])]
    sgd = torch.optim.SGD([dict(params=[p for _, p in g[n]], lr=lr, weight_decay=wd, name=n, base_lr=lr)
                           for n, lr, wd in spec if g[n]], lr=optim["headLr"], momentum=optim["momentum"])
    return sgd, (LookAhead(sgd, optim["lookaheadAlpha"], optim["lookaheadK"]) if optim["lookaheadK"] > 0 else sgd)


class LookAhead:
    """Every k inner steps: slow += alpha * (fast - slow); fast = slow (momentum untouched)."""

    def __init__(self, inner, alpha=0.5, k=5):
        self.inner, self.alpha, self.k, self.counter = inner, alpha, k, 0
        self.params = [p for g in inner.param_groups for p in g["params"]]
        self.slow = [p.detach().clone() for p in self.params]

    def step(self):
        self.inner.step()
        self.counter += 1
        if self.counter % self.k == 0:
            with torch.no_grad():
                for p, s in zip(self.params, self.slow):
                    s.add_(p - s, alpha=self.alpha)
                    p.copy_(s)


def lr_factor(step, warmup, total):
    """virtex's lrFactor for the cosine schedule (step 0-based, the step about to be taken)."""
    if step < warmup:
        return step / warmup
    t = min(1.0, (step - warmup) / max(1, total - warmup))
    return 0.5 * (1 + math.cos(math.pi * t))


def pretrain(model, batches, optim, steps, log_every=10, log=print, on_step=None):
    """Trains `steps` steps; returns per-step metrics [{step, loss, parts, lr, gradNorm, imgPerSec}].
    `on_step(steps done, metrics so far)` runs after each step (snapshots)."""
    sgd, opt = build_optimizer(model, optim)
    params = [p for g in sgd.param_groups for p in g["params"]]
    model.train()
    metrics, t_start = [], time.time()
    for step in range(steps):
        t0 = time.time()
        f = lr_factor(step, optim["warmupSteps"], steps)
        for g in sgd.param_groups:
            g["lr"] = g["base_lr"] * f
        images, tokens, lengths = batches.next()
        loss, parts = model.loss(images, tokens, lengths)
        sgd.zero_grad(set_to_none=True)
        loss.backward()
        norm = float(nn.utils.clip_grad_norm_(params, optim["clipGradNorm"]))
        if not math.isfinite(loss.item()) or not math.isfinite(norm):
            raise SystemExit(f"non-finite loss/gradient norm at step {step} ({loss.item()}, {norm}); stopped")
        opt.step()
        m = dict(step=step + 1, loss=loss.item(), parts=parts, lr={g["name"]: g["lr"] for g in sgd.param_groups},
                 gradNorm=norm, imgPerSec=len(lengths) / (time.time() - t0))
        metrics.append(m)
        if (step + 1) % log_every == 0 or step + 1 == steps:
            el = time.time() - t_start
            eta = el / (step + 1) * (steps - step - 1)
            log(f"[replica] step {step + 1}/{steps} loss {m['loss']:.4f} grad {norm:.2f} "
                f"{(step + 1) * len(lengths) / el:.1f} img/s elapsed {el:.0f}s eta {eta:.0f}s")
            sys.stdout.flush()
        if on_step:
            on_step(step + 1, metrics)
    return metrics
