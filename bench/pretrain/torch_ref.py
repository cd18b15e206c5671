"""PyTorch CPU reference for bench/pretrain (run by main.ts with Debian's /usr/bin/python3).

Builds the same bicaptioning model as pipeline/model/tasks.ts: a torchvision ResNet without its
pool and classifier (zero-init last BN of each block), and two VirTex textual heads (forward and
backward decoder sharing one word + positional embedding, visual projection and output bias):
visual projection Linear, embedding with LayerNorm (eps 1e-8) and dropout 0.1, nn.TransformerDecoder of post-norm GELU layers, output
layer tied to the word embedding with its own bias; cross-entropy with ignore_index 0 on both
directions, summed. One step = forward + backward, clip_grad_norm_(10), SGD (momentum 0.9,
weight decay 1e-4 except head LayerNorm/bias; CNN lr 0.2, head 1e-3, linear warmup) wrapped in
LookAhead(0.5, 5), zero_grad, loss.item().

After --warmup steps it times at least --min-steps steps and at least --seconds of wall time.
Prints one JSON object: per-step seconds of the timed steps, images/s, process CPU seconds per
step, parameter count.
"""
import argparse
import json
import re
import time

import torch
import torch.nn.functional as F
import torchvision
from torch import nn


def parse_head(name):
    m = re.fullmatch(r"transdec_(postnorm|prenorm)::L(\d+)_H(\d+)(?:_A(\d+))?(?:_F(\d+))?", name)
    if not m:
        raise SystemExit(f"torch_ref.py: unsupported textual head {name!r}")
    hidden = int(m.group(3))
    return {
        "norm_first": m.group(1) == "prenorm",
        "layers": int(m.group(2)),
        "hidden": hidden,
        "heads": int(m.group(4)) if m.group(4) else max(1, hidden // 64),
        "ff": int(m.group(5)) if m.group(5) else 4 * hidden,
    }


class WordAndPositionalEmbedding(nn.Module):
    def __init__(self, vocab, hidden, max_length, dropout):
        super().__init__()
        self.words = nn.Embedding(vocab, hidden, padding_idx=0)
        self.positions = nn.Embedding(max_length, hidden)
        self.layer_norm = nn.LayerNorm(hidden, eps=1e-8)
        self.dropout = nn.Dropout(dropout)

    def forward(self, tokens):  # [B, T] -> [B, T, H]
        pos = torch.arange(tokens.shape[1], device=tokens.device)
        x = self.words(tokens) + self.positions(pos)[None]
        return self.dropout(self.layer_norm(x))


class TransformerTextualHead(nn.Module):
    def __init__(self, spec, visual_size, vocab, max_length, dropout, embedding=None):
        super().__init__()
        H = spec["hidden"]
        self.visual_projection = nn.Linear(visual_size, H)
        self.embedding = embedding or WordAndPositionalEmbedding(vocab, H, max_length, dropout)
        layer = nn.TransformerDecoderLayer(
            H,
            spec["heads"],
            dim_feedforward=spec["ff"],
            dropout=dropout,
            activation="gelu",
            batch_first=True,
            norm_first=spec["norm_first"],
        )
        self.transformer = nn.TransformerDecoder(layer, spec["layers"])
        self.output_bias = nn.Parameter(torch.zeros(vocab))
        self.apply(self._init)

    @staticmethod
    def _init(m):
        if isinstance(m, nn.Linear):
            m.weight.data.normal_(0.0, 0.02)
            if m.bias is not None:
                m.bias.data.zero_()
        elif isinstance(m, nn.MultiheadAttention):
            m.in_proj_weight.data.normal_(0.0, 0.02)
            m.out_proj.weight.data.normal_(0.0, 0.02)
        elif isinstance(m, nn.Embedding):
            m.weight.data.normal_(0.0, 0.02)
            if m.padding_idx is not None:
                m.weight.data[m.padding_idx].zero_()

    def forward(self, grid, tokens, lengths):
        # grid [B, C, h, w] -> memory [B, hw, H]; tokens [B, T] -> logits [B, T, V]
        memory = self.visual_projection(grid.flatten(2).transpose(1, 2))
        T = tokens.shape[1]
        dev = tokens.device  # masks on the model's device (bench/gpu runs this on CUDA)
        causal = torch.triu(torch.full((T, T), float("-inf"), device=dev), diagonal=1)
        pad = torch.arange(T, device=dev)[None, :] >= lengths[:, None]
        x = self.embedding(tokens)
        x = self.transformer(x, memory, tgt_mask=causal, tgt_key_padding_mask=pad)
        return F.linear(x, self.embedding.words.weight, self.output_bias)


class BicaptioningModel(nn.Module):
    def __init__(self, visual, textual, vocab, max_length=30, dropout=0.1):
        super().__init__()
        net = getattr(torchvision.models, visual)(zero_init_residual=True)
        self.visual = nn.Sequential(*list(net.children())[:-2])
        feat = 512 if visual in ("resnet18", "resnet34") else 2048
        spec = parse_head(textual)
        self.textual = TransformerTextualHead(spec, feat, vocab, max_length, dropout)
        self.backward_textual = TransformerTextualHead(
            spec, feat, vocab, max_length, dropout, embedding=self.textual.embedding
        )
        # The backward decoder starts as a copy of the forward one, then shares its visual
        # projection and output bias (as the reference and pipeline/model/tasks.ts).
        own = {k: v for k, v in self.textual.state_dict().items() if not k.startswith("embedding.")}
        self.backward_textual.load_state_dict(own, strict=False)
        self.backward_textual.visual_projection = self.textual.visual_projection
        self.backward_textual.output_bias = self.textual.output_bias

    @staticmethod
    def caption_loss(head, grid, tokens, lengths):
        logits = head(grid, tokens[:, :-1], (lengths - 1).clamp(min=1))
        return F.cross_entropy(
            logits.reshape(-1, logits.shape[-1]), tokens[:, 1:].reshape(-1), ignore_index=0
        )

    def forward(self, images, tokens, reversed_tokens, lengths):
        grid = self.visual(images)
        fwd = self.caption_loss(self.textual, grid, tokens, lengths)
        bwd = self.caption_loss(self.backward_textual, grid, reversed_tokens, lengths)
        return fwd + bwd


class LookAhead:
    """Every k inner steps: slow += alpha * (fast - slow); fast = slow."""

    def __init__(self, inner, alpha=0.5, k=5):
        self.inner, self.alpha, self.k, self.counter = inner, alpha, k, 0
        self.slow = [
            [p.detach().clone() for p in g["params"]] for g in inner.param_groups
        ]

    @property
    def param_groups(self):
        return self.inner.param_groups

    @torch.no_grad()
    def step(self):
        self.inner.step()
        self.counter += 1
        if self.counter % self.k == 0:
            for g, slow in zip(self.inner.param_groups, self.slow):
                for p, s in zip(g["params"], slow):
                    s.add_(p - s, alpha=self.alpha)
                    p.copy_(s)

    def zero_grad(self):
        self.inner.zero_grad(set_to_none=True)


def build_optimizer(model):
    no_decay = re.compile(r"^(backward_)?textual\.(embedding|transformer)\..*(norm|bias)")
    groups = {"cnn": [], "head": [], "head_no_decay": []}
    seen = {}
    for name, p in model.named_parameters():  # each shared tensor once
        if id(p) in seen:
            continue
        seen[id(p)] = p
        if name.startswith("visual."):
            groups["cnn"].append(p)
        elif no_decay.match(name):
            groups["head_no_decay"].append(p)
        else:
            groups["head"].append(p)
    sgd = torch.optim.SGD(
        [
            {"params": groups["cnn"], "lr": 0.2, "weight_decay": 1e-4},
            {"params": groups["head"], "lr": 1e-3, "weight_decay": 1e-4},
            {"params": groups["head_no_decay"], "lr": 1e-3, "weight_decay": 0.0},
        ],
        lr=1e-3,
        momentum=0.9,
    )
    for g in sgd.param_groups:
        g["base_lr"] = g["lr"]
    return LookAhead(sgd, 0.5, 5), sum(p.numel() for p in seen.values())


def caption_length(b, s):
    """Same formula as step.ts: 18..24 tokens with [SOS] and [EOS]."""
    return 18 + (b * 7 + s * 3) % 7


def synthetic_batch(args, s):
    g = torch.Generator().manual_seed(s)
    B, T = args.batch, args.max_length
    images = (torch.rand(B, 3, args.size, args.size, generator=g) - 0.5) * 3.4
    tokens = torch.zeros(B, T, dtype=torch.long)
    rev = torch.zeros(B, T, dtype=torch.long)
    lengths = torch.tensor([caption_length(b, s) for b in range(B)])
    for b in range(B):
        L = int(lengths[b])
        tokens[b, 0] = 1
        tokens[b, 1 : L - 1] = torch.randint(4, args.vocab, (L - 2,), generator=g)
        tokens[b, L - 1] = 2
        rev[b, :L] = tokens[b, :L].flip(0)
    return images, tokens, rev, lengths


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--visual", required=True)
    ap.add_argument("--textual", required=True)
    ap.add_argument("--size", type=int, required=True)
    ap.add_argument("--batch", type=int, required=True)
    ap.add_argument("--vocab", type=int, default=10000)
    ap.add_argument("--max-length", type=int, default=30)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--min-steps", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=0.0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--params-only", action="store_true", help="print the parameter count, no steps")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    model = BicaptioningModel(args.visual, args.textual, args.vocab, args.max_length)
    model.train()
    opt, nparams = build_optimizer(model)
    if args.params_only:
        print(json.dumps({"parameters": nparams}))
        return
    batches = [synthetic_batch(args, s) for s in range(3)]

    def step(s):
        for g in opt.param_groups:
            g["lr"] = g["base_lr"] * (s / 10000)  # linear warmup, as the trainer's schedule
        loss = model(*batches[s % 3])
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 10.0)
        opt.step()
        opt.zero_grad()
        return loss.item()

    for s in range(args.warmup):
        step(s)
    # Timed steps: at least --min-steps and at least --seconds of wall time.
    times, loss, s = [], None, args.warmup
    cpu0, t_start = time.process_time(), time.perf_counter()
    while len(times) < args.min_steps or time.perf_counter() - t_start < args.seconds:
        t0 = time.perf_counter()
        loss = step(s)
        times.append(time.perf_counter() - t0)
        s += 1
    cpu = time.process_time() - cpu0
    print(
        json.dumps(
            {
                "torch": torch.__version__,
                "threads": torch.get_num_threads(),
                "parameters": nparams,
                "stepSeconds": times,
                "cpuSecondsPerStep": cpu / len(times),
                "imgPerSec": args.batch * len(times) / sum(times),
                "lastLoss": loss,
            }
        )
    )


if __name__ == "__main__":
    main()
