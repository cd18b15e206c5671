/**
 * Detectron2 handoff: tools/detectron2_handoff.py turns a `--names detectron2` export into a
 * Detectron2 checkpoint (.pkl) and configs, and tools/check_detectron2.py loads that checkpoint
 * strictly into a ResNet laid out and named as Detectron2's (built from the config's
 * MODEL.RESNETS) and reproduces our backbone's res5 output; tools/detectron2_train.py registers
 * the paper's C4 head and runs train_net.py's main (against a stand-in of Detectron2's API, which
 * cannot be installed here). Skipped without /usr/bin/python3 with torch and yaml.
 */
import { assert, assertEquals } from "../pipeline/cache/_assert.ts";
import { join } from "node:path";
import { encodeSafetensors, loadSafetensors } from "../../engine/safetensors.ts";
import { noGrad } from "../../engine/scope.ts";
import { tensor } from "../../engine/tensor.ts";
import { prepareExport, writeExport } from "../../pipeline/export/export.ts";
import { createBackbone } from "../../pipeline/model/backbones.ts";
import { backend, perturbedWeights, uniform } from "../pipeline/export/_weights.ts";

const python = "/usr/bin/python3";
const hasTorch = await new Deno.Command(python, { args: ["-c", "import torch, yaml, numpy"] })
  .output().then((o) => o.code === 0, () => false);
if (!hasTorch) {
  console.log("detectron2 handoff: /usr/bin/python3 with torch + yaml absent, skipping");
}

const tool = (name: string) => new URL(`../../tools/${name}`, import.meta.url).pathname;

async function py(args: string[], env: Record<string, string> = {}) {
  const o = await new Deno.Command(python, { args, env }).output();
  return {
    code: o.code,
    out: new TextDecoder().decode(o.stdout),
    err: new TextDecoder().decode(o.stderr),
  };
}

/** Exports perturbed random weights of `arch` with Detectron2 names (and a mean/std). */
async function d2Export(
  dir: string,
  arch: string,
  names: "detectron2" | "torchvision" = "detectron2",
) {
  const be = await backend();
  const w = await perturbedWeights(arch);
  const path = join(dir, `${arch}.${names}.safetensors`);
  const normalization = { mean: [0.5, 0.4, 0.3], std: [0.2, 0.25, 0.3] };
  await writeExport(path, prepareExport(be, { arch, tensors: w, normalization }, names));
  return { path, weights: w };
}

for (const arch of ["resnet50_w8", "resnet18"]) {
  Deno.test({
    name: `Detectron2 handoff of ${arch}: checkpoint + configs load by Detectron2 names, same res5`,
    ignore: !hasTorch,
    fn: async () => {
      const dir = await Deno.makeTempDir({ prefix: "virtex-d2-test-" });
      try {
        const { path, weights } = await d2Export(dir, arch);
        const out = join(dir, "d2");
        const r = await py([tool("detectron2_handoff.py"), path, "--out", out, "--name", "w"]);
        assertEquals(r.code, 0, r.err);
        const pkl = join(out, "w.pkl");
        const fpn = await Deno.readTextFile(join(out, "mask_rcnn_FPN_coco.yaml"));
        const bottleneck = arch.startsWith("resnet50");
        for (
          const line of [
            `WEIGHTS: "${pkl}"`,
            "PIXEL_MEAN: [127.500, 102.000, 76.500]",
            "PIXEL_STD: [51.000, 63.750, 76.500]",
            `DEPTH: ${bottleneck ? 50 : 18}`,
            `STEM_OUT_CHANNELS: ${bottleneck ? 8 : 64}`,
            `RES2_OUT_CHANNELS: ${bottleneck ? 32 : 64}`,
            "STRIDE_IN_1X1: False",
            'NORM: "SyncBN"',
            "FREEZE_AT: 0",
            'NAME: "build_resnet_fpn_backbone"',
            "MASK_ON: True",
            'TRAIN: ("coco_2017_train",)',
          ]
        ) assert(fpn.includes(line), `FPN config lacks ${line}`);
        const c4File = join(out, "faster_rcnn_C4_voc.yaml");
        if (bottleneck) {
          const c4 = await Deno.readTextFile(c4File);
          for (
            const line of [
              'NAME: "Res5ROIHeadsExtraNorm"',
              'NAME: "build_resnet_backbone"',
              'TRAIN: ("voc_2007_trainval", "voc_2012_trainval")',
              "NUM_CLASSES: 20",
              "MAX_ITER: 24000",
            ]
          ) assert(c4.includes(line), `C4 config lacks ${line}`);
        } else {
          assert(r.err.includes("no C4 config"), r.err);
          assertEquals(await Deno.stat(c4File).then(() => true, () => false), false);
        }
        // Load by Detectron2 names into its layout, run, compare with our backbone.
        const [B, S] = [2, 64];
        const images = uniform(B * 3 * S * S, 7, -2, 2);
        await Deno.writeFile(
          join(dir, "input.safetensors"),
          encodeSafetensors(new Map([["images", { shape: [B, 3, S, S], data: images }]])),
        );
        const cfg = bottleneck ? c4File : join(out, "mask_rcnn_FPN_coco.yaml");
        const c = await py([
          tool("check_detectron2.py"),
          pkl,
          cfg,
          join(dir, "input.safetensors"),
          join(dir, "out.safetensors"),
        ]);
        assertEquals(c.code, 0, c.err);
        const theirs = (await loadSafetensors(join(dir, "out.safetensors"))).tensors.get("res5")!;
        const be = await backend();
        const net = createBackbone(be, arch);
        net.loadStateDict(weights, true);
        net.eval();
        const grid = noGrad(() => net.forward(tensor(be, images, [B, 3, S, S])));
        assertEquals(theirs.shape, grid.shape);
        const ours = await grid.f32();
        let worst = 0;
        for (let i = 0; i < ours.length; i++) {
          worst = Math.max(
            worst,
            Math.abs(ours[i] - theirs.data[i]) / Math.max(1, Math.abs(ours[i])),
          );
        }
        assert(worst <= 1e-4, `res5 max relative difference ${worst}`);
        assert(ours.some((v) => Math.abs(v) > 1e-3));
        grid.dispose();
        net.dispose();
      } finally {
        await Deno.remove(dir, { recursive: true });
      }
    },
  });
}

Deno.test({
  name: "Detectron2 handoff refuses what Detectron2 cannot build, and the checker a wrong layout",
  ignore: !hasTorch,
  fn: async () => {
    const dir = await Deno.makeTempDir({ prefix: "virtex-d2-test-" });
    try {
      const tv = await d2Export(dir, "resnet18_w8", "torchvision");
      let r = await py([tool("detectron2_handoff.py"), tv.path, "--out", join(dir, "a")]);
      assertEquals(r.code, 1);
      assert(r.err.includes("not detectron2"), r.err);
      const narrow = await d2Export(dir, "resnet18_w8");
      r = await py([tool("detectron2_handoff.py"), narrow.path, "--out", join(dir, "b")]);
      assertEquals(r.code, 1);
      assert(r.err.includes("only at width 64"), r.err);
      const os16 = await d2Export(dir, "resnet50_w8_os16");
      r = await py([tool("detectron2_handoff.py"), os16.path, "--out", join(dir, "c")]);
      assertEquals(r.code, 1);
      assert(r.err.includes("max pool"), r.err);
      // A checkpoint whose config says another width does not load.
      const ok = await d2Export(dir, "resnet50_w8");
      r = await py([tool("detectron2_handoff.py"), ok.path, "--out", join(dir, "d")]);
      assertEquals(r.code, 0, r.err);
      const cfg = join(dir, "d", "mask_rcnn_FPN_coco.yaml");
      const wrong = join(dir, "wrong.yaml");
      await Deno.writeTextFile(
        wrong,
        (await Deno.readTextFile(cfg)).replace("WIDTH_PER_GROUP: 8", "WIDTH_PER_GROUP: 16"),
      );
      await Deno.writeFile(
        join(dir, "in.safetensors"),
        encodeSafetensors(
          new Map([["images", { shape: [1, 3, 32, 32], data: uniform(3072, 1, 0, 1) }]]),
        ),
      );
      r = await py([
        tool("check_detectron2.py"),
        join(dir, "d", "virtex_backbone.pkl"),
        wrong,
        join(dir, "in.safetensors"),
        join(dir, "o.safetensors"),
      ]);
      assertEquals(r.code, 1);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

/** A stand-in for the parts of Detectron2's API that tools/detectron2_train.py uses. */
const FAKE_D2: Record<string, string> = {
  "detectron2/__init__.py": "",
  "detectron2/layers/__init__.py": "def get_norm(norm, channels):\n    return (norm, channels)\n",
  "detectron2/modeling/__init__.py": "",
  "detectron2/modeling/roi_heads/__init__.py": `
class Registry(dict):
    def register(self):
        def deco(cls):
            self[cls.__name__] = cls
            return cls
        return deco

ROI_HEADS_REGISTRY = Registry()

class Blocks:
    def __init__(self):
        self.children = []
    def add_module(self, name, module):
        self.children.append((name, module))

class Res5ROIHeads:
    @classmethod
    def _build_res5_block(cls, cfg):
        return Blocks(), 2048
`,
  "detectron2/engine/__init__.py": `
import argparse

def default_argument_parser():
    p = argparse.ArgumentParser()
    p.add_argument("--config-file", default="")
    p.add_argument("--num-gpus", type=int, default=1)
    p.add_argument("--num-machines", type=int, default=1)
    p.add_argument("--machine-rank", type=int, default=0)
    p.add_argument("--dist-url", default="auto")
    p.add_argument("opts", nargs=argparse.REMAINDER)
    return p

def launch(main_func, num_gpus, num_machines=1, machine_rank=0, dist_url=None, args=()):
    main_func(*args)
`,
  "train_net.py": `
from types import SimpleNamespace
from detectron2.modeling.roi_heads import ROI_HEADS_REGISTRY

def main(args):
    head = ROI_HEADS_REGISTRY["Res5ROIHeadsExtraNorm"]
    cfg = SimpleNamespace(MODEL=SimpleNamespace(RESNETS=SimpleNamespace(NORM="SyncBN")))
    blocks, channels = head._build_res5_block(cfg)
    print("res5", blocks.children, channels, args.config_file, args.opts)

if __name__ == "__main__":
    raise SystemExit("train_net.py's __main__ must not run")
`,
};

Deno.test({
  name: "detectron2_train.py registers Res5ROIHeadsExtraNorm and runs train_net's main",
  ignore: !hasTorch,
  fn: async () => {
    const dir = await Deno.makeTempDir({ prefix: "virtex-d2-fake-" });
    try {
      for (const [rel, text] of Object.entries(FAKE_D2)) {
        await Deno.mkdir(join(dir, rel, ".."), { recursive: true });
        await Deno.writeTextFile(join(dir, rel), text);
      }
      const r = await py(
        [
          tool("detectron2_train.py"),
          join(dir, "train_net.py"),
          "--config-file",
          "c4.yaml",
          "SOLVER.MAX_ITER",
          "10",
        ],
        { PYTHONPATH: dir },
      );
      assertEquals(r.code, 0, r.err);
      assert(
        r.out.includes("res5 [('norm', ('SyncBN', 2048))] 2048 c4.yaml ['SOLVER.MAX_ITER', '10']"),
        r.out,
      );
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
