"""PyTorch CPU reference timings for bench/engine (run by main.ts with Debian's /usr/bin/python3).

Same shapes as the wasm benchmark: matmul 1024^3 (on all threads, and on one in a child process);
conv 3x3 64->64 at 56x56 batch 16 forward and backward (data + filter); one
TransformerDecoderLayer (H 512, 8 heads, FF 2048, GELU, 30 tokens, 49 memory tokens, batch 16)
forward + backward. Prints one JSON object of seconds per iteration (median and min over repeats).

Debian's torch runs matmul in OpenBLAS, whose own thread pool ignores torch.set_num_threads: the
thread count is fixed through the environment before torch loads (measured here: with only
set_num_threads(1), a "1-thread" matmul kept both cores busy).
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time


def parse_args():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--reps", type=int, default=7)
    ap.add_argument("--matmul-only", action="store_true", help="time only the matmul")
    return ap.parse_args()


ARGS = parse_args()
for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[var] = str(ARGS.threads)

import torch  # noqa: E402  (after the thread environment is set)


def timeit(fn, reps, warmup=2):
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return {"median": statistics.median(times), "min": min(times)}


def matmul_one_thread(reps):
    """The matmul timed in a child process limited to one thread."""
    r = subprocess.run(
        [sys.executable, __file__, "--threads", "1", "--reps", str(reps), "--matmul-only"],
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(r.stdout)["matmul"]


def main():
    args = ARGS
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    out = {"torch": torch.__version__, "threads": torch.get_num_threads()}

    a = torch.randn(1024, 1024)
    b = torch.randn(1024, 1024)
    out["matmul"] = timeit(lambda: torch.mm(a, b), args.reps)
    if args.matmul_only:
        print(json.dumps(out))
        return
    if args.threads > 1:
        # Thread scaling on this host: the same product on one thread.
        out["matmul_1t"] = matmul_one_thread(args.reps)

    x = torch.randn(16, 64, 56, 56, requires_grad=True)
    w = torch.randn(64, 64, 3, 3, requires_grad=True)
    dy = torch.randn(16, 64, 56, 56)

    def conv_fwd():
        with torch.no_grad():
            torch.nn.functional.conv2d(x, w, padding=1)

    def conv_fwd_bwd():
        x.grad = None
        w.grad = None
        y = torch.nn.functional.conv2d(x, w, padding=1)
        y.backward(dy)

    out["conv_fwd"] = timeit(conv_fwd, args.reps)
    out["conv_fwd_bwd"] = timeit(conv_fwd_bwd, args.reps)

    layer = torch.nn.TransformerDecoderLayer(
        512, 8, dim_feedforward=2048, dropout=0.1, activation="gelu", batch_first=True
    )
    layer.train()
    tgt = torch.randn(16, 30, 512, requires_grad=True)
    mem = torch.randn(16, 49, 512, requires_grad=True)
    causal = torch.triu(torch.full((30, 30), float("-inf")), diagonal=1)

    def dec():
        layer.zero_grad(set_to_none=True)
        tgt.grad = None
        mem.grad = None
        y = layer(tgt, mem, tgt_mask=causal)
        y.sum().backward()

    out["decoder_fwd_bwd"] = timeit(dec, args.reps)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
