"""PyTorch reference for bench/gpu (run by device_check.sh): the same shapes as main.ts, on CUDA
when torch sees a GPU, else on the CPU (the local dry run).

  python3 bench/gpu/torch_cuda.py --part micro|pretrain [--profile full|local] [--out DIR]
                                  [--budget S] [--reserve S] [--ours DIR/ours_pretrain.json]

micro:    matmul N^3 f32 (strict: TF32 off for matmul and cuDNN) and f16 (CUDA only), conv 3x3
          forward and forward + backward, one TransformerDecoderLayer forward + backward; each
          time-boxed (two rounds of microSeconds/2, best kept), synchronised.
pretrain: the bicaptioning step of bench/pretrain/torch_ref.py (same model, optimizer and
          synthetic batches) for each case of the profile, in img/s, f32 and, on CUDA,
          torch.autocast f16 without a GradScaler (as ours: autocast matrix products, no loss
          scaling). Batches per case: those ours measured (--ours), else the profile's.
Writes DIR/torch_<part>.json after every measurement.
"""
import argparse
import contextlib
import importlib.util
import json
import os
import time

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
T0 = time.perf_counter()


def log(msg):
    print(f"[torch {time.perf_counter() - T0:.1f}s] {msg}", flush=True)


def write_json(out_dir, name, value):
    os.makedirs(out_dir, exist_ok=True)
    path = os.path.join(out_dir, name)
    with open(path + ".tmp", "w") as f:
        json.dump(value, f, indent=2)
        f.write("\n")
    os.replace(path + ".tmp", path)


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def time_box(fn, device, seconds):
    """Seconds per call: best of two rounds of about seconds/2 each (after a first call)."""
    t0 = time.perf_counter()
    fn()
    sync(device)
    first = time.perf_counter() - t0
    t0 = time.perf_counter()
    fn()
    sync(device)
    est = max(1e-6, time.perf_counter() - t0)
    reps = max(1, min(5000, round(seconds / 2 / est)))
    best, iters = float("inf"), []
    for _ in range(2):
        t0 = time.perf_counter()
        for _ in range(reps):
            fn()
        sync(device)
        best = min(best, (time.perf_counter() - t0) / reps)
        iters.append(reps)
    return {"secondsPerIter": best, "iters": iters, "firstSeconds": first}


def decoder_gflop(d):
    """Same count as main.ts decoderGflop: forward GEMMs x 3 (backward = 2x forward)."""
    B, T, S, H, F = d["B"], d["T"], d["S"], d["H"], d["F"]
    proj = 2 * B * T * H * H
    self_ = 4 * proj + 2 * 2 * B * T * T * H
    cross = 2 * proj + 2 * 2 * B * S * H * H + 2 * 2 * B * T * S * H
    ff = 2 * 2 * B * T * H * F
    return 3 * (self_ + cross + ff) / 1e9


def part_micro(p, device, args, meta):
    rows = []

    def save():
        write_json(args.out, "torch_micro.json", {**meta, "results": rows})

    def attempt(key, label, gflop, fn):
        if time.perf_counter() - T0 > args.budget:
            row = {"key": key, "label": label, "gflop": gflop, "error": "skipped: budget spent"}
        else:
            try:
                row = {"key": key, "label": label, "gflop": gflop, **fn()}
                row["gflops"] = gflop / row["secondsPerIter"]
            except Exception as e:  # noqa: BLE001 - recorded in the report
                row = {"key": key, "label": label, "gflop": gflop, "error": repr(e)}
        rows.append(row)
        if "error" in row:
            log(f"{label}: FAILED {row['error']}")
        else:
            log(
                f"{label}: {row['gflops']:.1f} GFLOP/s ({row['secondsPerIter'] * 1e3:.3f} ms/iter,"
                f" first call {row['firstSeconds']:.2f} s)"
            )
        save()

    secs = p["microSeconds"]
    g = torch.Generator().manual_seed(0)
    for n in p["matmul"]:
        dtypes = [torch.float32] + ([torch.float16] if device.type == "cuda" else [])
        for dt in dtypes:
            half = dt == torch.float16
            key = f"matmul{n}_{'f16' if half else 'f32'}"
            label = f"matmul {n}³ {'f16' if half else 'f32'}"

            def run(n=n, dt=dt):
                a = (torch.rand(n, n, generator=g) - 0.5).to(device, dt)
                b = (torch.rand(n, n, generator=g) - 0.5).to(device, dt)
                return time_box(lambda: torch.mm(a, b), device, secs)

            attempt(key, label, 2 * n**3 / 1e9, run)

    c = p["conv"]
    conv_label = f"conv3x3 {c['C']}->{c['O']} {c['H']}x{c['W']} b{c['N']}"
    fwd_gflop = 2 * c["N"] * c["O"] * c["H"] * c["W"] * c["C"] * 9 / 1e9
    x = torch.randn(c["N"], c["C"], c["H"], c["W"], device=device, requires_grad=True)
    w = torch.randn(c["O"], c["C"], 3, 3, device=device, requires_grad=True)
    dy = torch.randn(c["N"], c["O"], c["H"], c["W"], device=device)

    def conv_fwd():
        with torch.no_grad():
            torch.nn.functional.conv2d(x, w, padding=1)

    def conv_fwd_bwd():
        x.grad = None
        w.grad = None
        torch.nn.functional.conv2d(x, w, padding=1).backward(dy)

    attempt("conv_fwd", f"{conv_label} fwd", fwd_gflop, lambda: time_box(conv_fwd, device, secs))
    attempt(
        "conv_fwd_bwd",
        f"{conv_label} fwd+bwd",
        3 * fwd_gflop,
        lambda: time_box(conv_fwd_bwd, device, secs),
    )

    d = p["decoder"]
    layer = torch.nn.TransformerDecoderLayer(
        d["H"], d["heads"], dim_feedforward=d["F"], dropout=0.1, activation="gelu",
        batch_first=True,
    ).to(device)
    layer.train()
    tgt = torch.randn(d["B"], d["T"], d["H"], device=device, requires_grad=True)
    mem = torch.randn(d["B"], d["S"], d["H"], device=device, requires_grad=True)
    causal = torch.triu(torch.full((d["T"], d["T"]), float("-inf"), device=device), diagonal=1)

    def dec():
        layer.zero_grad(set_to_none=True)
        tgt.grad = None
        mem.grad = None
        layer(tgt, mem, tgt_mask=causal).sum().backward()

    label = f"decoder H{d['H']} A{d['heads']} T{d['T']} S{d['S']} b{d['B']} fwd+bwd"
    attempt("decoder_fwd_bwd", label, decoder_gflop(d), lambda: time_box(dec, device, secs))


def load_torch_ref():
    path = os.path.join(HERE, "..", "pretrain", "torch_ref.py")
    spec = importlib.util.spec_from_file_location("virtex_pretrain_torch_ref", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def case_label(c):
    return f"{c['visual']} {c['size']} px + {c['textual']}, vocab {c['vocab']}"


def part_pretrain(p, device, args, meta):
    ref = load_torch_ref()
    cases = p["pretrain"]
    measured = {}
    if args.ours and os.path.exists(args.ours):
        with open(args.ours) as f:
            for r in json.load(f).get("results", []):
                if "imgPerSec" in r:
                    measured.setdefault(r.get("case", 0), set()).add(r["batch"])
    rows = []

    def save():
        write_json(args.out, "torch_pretrain.json", {**meta, "cases": cases, "results": rows})

    for ci, case in enumerate(cases):
        batches = sorted(measured.get(ci, {case["batch"]}), reverse=True)
        for batch in batches:
            for amp in [False, True] if device.type == "cuda" else [False]:
                row = {"case": ci, "label": case_label(case), "batch": batch, "amp": amp}
                rows.append(row)
                if len(rows) > 1 and time.perf_counter() - T0 > args.budget:
                    log(f"case {ci} batch {batch} amp {amp}: skipped, budget spent")
                    row["error"] = "skipped: budget spent"
                    save()
                    continue
                log(
                    f"pretrain {row['label']}, batch {batch},"
                    f" {'AMP (autocast f16, no GradScaler)' if amp else 'f32'} on {device}"
                )
                try:
                    row.update(pretrain_once(ref, case, batch, amp, device, p, args))
                    log(
                        f"  {row['imgPerSec']:.2f} img/s over {len(row['stepSeconds'])} steps,"
                        " losses " + " ".join(f"{x:.3f}" for x in row["losses"])
                    )
                except Exception as e:  # noqa: BLE001 - recorded in the report
                    row["error"] = repr(e)
                    log(f"  FAILED {row['error']}")
                if device.type == "cuda":
                    row["maxMemoryGiB"] = torch.cuda.max_memory_allocated() / 2**30
                    torch.cuda.empty_cache()
                    torch.cuda.reset_peak_memory_stats()
                save()


def pretrain_once(ref, case, batch, amp, device, p, args):
    torch.manual_seed(0)
    ns = argparse.Namespace(
        batch=batch, size=case["size"], max_length=case["maxLength"], vocab=case["vocab"]
    )
    host = [ref.synthetic_batch(ns, s) for s in range(3)]  # CPU generator, then to device
    data = [tuple(t.to(device) for t in b) for b in host]
    model = ref.BicaptioningModel(
        case["visual"], case["textual"], case["vocab"], case["maxLength"]
    ).to(device)
    model.train()
    opt, nparams = ref.build_optimizer(model)
    autocast = (
        (lambda: torch.autocast(device_type=device.type, dtype=torch.float16))
        if amp
        else contextlib.nullcontext
    )

    def step(s):
        for g in opt.param_groups:
            g["lr"] = g["base_lr"] * (s / 10000)
        with autocast():
            loss = model(*data[s % 3])
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 10.0)
        opt.step()
        opt.zero_grad()
        return loss.item()

    losses, warm = [], []
    for s in range(p["pretrainWarmup"]):
        t0 = time.perf_counter()
        losses.append(step(s))
        warm.append(time.perf_counter() - t0)
    s = p["pretrainWarmup"]
    times = []
    t_start = time.perf_counter()
    while len(times) < p["pretrainMinSteps"] or (
        time.perf_counter() - t_start < p["pretrainSeconds"]
        and time.perf_counter() - T0 < args.budget
    ):
        t0 = time.perf_counter()
        losses.append(step(s))
        times.append(time.perf_counter() - t0)
        s += 1
    sync(device)
    total = time.perf_counter() - t_start
    del model, opt, data
    return {
        "parameters": nparams,
        "warmupSeconds": warm,
        "stepSeconds": times,
        "imgPerSec": batch * len(times) / total,
        "losses": losses,
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--part", required=True, choices=["micro", "pretrain"])
    ap.add_argument("--profile", default="full")
    ap.add_argument("--out", default=os.environ.get("OUT") or os.path.join(HERE, "..", "out", "gpu"))
    ap.add_argument("--budget", type=float, default=1e9, help="seconds before skipping the rest")
    ap.add_argument(
        "--reserve",
        type=float,
        default=0.0,
        help="with GPU_CHECK_PART_END (epoch s, from device_check.sh): stop this much earlier",
    )
    ap.add_argument("--ours", help="ours_pretrain.json: measure the batches ours measured")
    args = ap.parse_args()
    part_end = os.environ.get("GPU_CHECK_PART_END")
    if part_end:
        left = float(part_end) - time.time()
        # never reserve more than half: a part cut short by the global deadline still measures
        args.budget = min(args.budget, max(left - args.reserve, left / 2))
    with open(os.path.join(HERE, "shapes.json")) as f:
        shapes = json.load(f)
    if args.profile not in shapes:
        raise SystemExit(f"{HERE}/shapes.json: no profile {args.profile!r}")
    p = shapes[args.profile]
    torch.manual_seed(0)
    if torch.cuda.is_available():
        device = torch.device("cuda")
        torch.backends.cuda.matmul.allow_tf32 = False  # strict f32, like our WGSL kernels
        torch.backends.cudnn.allow_tf32 = False
        torch.backends.cudnn.benchmark = True
        name = torch.cuda.get_device_name(0)
    else:
        device = torch.device("cpu")
        name = "cpu"
    meta = {
        "torch": torch.__version__,
        "device": name,
        "cuda": torch.version.cuda,
        "threads": torch.get_num_threads(),
        "profile": args.profile,
        "tf32": False,
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    log(f"torch {torch.__version__} on {name} (CUDA {torch.version.cuda}), part {args.part}")
    (part_micro if args.part == "micro" else part_pretrain)(p, device, args, meta)


if __name__ == "__main__":
    main()
