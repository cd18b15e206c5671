"""Recipes for the replica: a virtex pipeline file resolved by virtex itself (tools/replica_plan.ts),
or a default pipeline (virtex's pretrain defaults on the Flickr8k train split) changed by flags;
plus the virtex command that builds the tokenize and augment artifacts it reads."""
import json
import os
import subprocess
import tempfile

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DENO = os.path.join(REPO, "node_modules", ".bin", "deno")
DATA = os.path.join(os.path.dirname(REPO), "shared", "data")
FLICKR = os.path.join(DATA, "flickr8k")


def default_pipeline():
    """The pipeline replayed without --virtex-recipe: virtex's defaults on Flickr8k's train split
    (flags override any key)."""
    caps, splits = os.path.join(FLICKR, "captions.txt"), os.path.join(FLICKR, "splits")
    return {"stages": [
        {"name": "tok", "stage": "tokenize",
         "config": {"captions": caps, "vocabSplit": os.path.join(splits, "train.txt")}},
        {"name": "shards", "stage": "augment", "config": {"captions": caps}},
        {"name": "pretrain", "stage": "pretrain", "inputs": {"tokens": "tok", "shards": "shards"},
         "config": {"trainSplit": os.path.join(splits, "train.txt")}},
    ]}


def _run(cmd, what):
    r = subprocess.run(cmd, capture_output=True, text=True)  # relative paths: the caller's folder, as ./virtex
    if r.returncode != 0:
        raise SystemExit(f"{what} failed (exit {r.returncode}): {' '.join(cmd)}\n{r.stderr.strip()[-2000:]}")
    return r.stdout


def resolve(recipe, step, sets):
    """virtex's resolution of the recipe (dict, see tools/replica_plan.ts); recipe None: default_pipeline()."""
    with tempfile.TemporaryDirectory() as tmp:
        if recipe is None:
            recipe = os.path.join(tmp, "default-pipeline.json")
            json.dump(default_pipeline(), open(recipe, "w"))
        cmd = [DENO, "run", "-A", os.path.join(REPO, "tools", "replica_plan.ts"), "--recipe", recipe]
        cmd += ["--step", step] if step else []
        for s in sets:
            cmd += ["--set", s]
        return json.loads(_run(cmd, "tools/replica_plan.ts").strip().splitlines()[-1])


def cache_root():
    return os.path.abspath(os.environ.get("VIRTEX_CACHE", os.path.join(REPO, ".virtex-cache")))


def build_artifact(stage, config):
    """Runs `./virtex STAGE --config` (a cache hit when built before) and returns the artifact folder."""
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump(config, f)
    try:
        out = _run([os.path.join(REPO, "virtex"), stage, "--config", f.name, "--json"], f"virtex {stage}")
    finally:
        os.unlink(f.name)
    key = json.loads(out.strip().splitlines()[-1])["key"]
    return os.path.join(cache_root(), "artifacts", key)
