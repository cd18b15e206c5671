/**
 * Backbone export: key maps, strict checking, and (when Debian's torch is present) parity of
 * torchvision's ResNet loaded from our export with our own pooled features, via
 * tools/check_export.py.
 */
import { assert, assertEquals, assertRejects, assertThrows } from "../cache/_assert.ts";
import { exportCommand } from "../../../cli/export_command.ts";
import { join } from "node:path";
import * as ops from "../../../engine/ops/index.ts";
import { encodeSafetensors, loadSafetensors } from "../../../engine/safetensors.ts";
import { noGrad } from "../../../engine/scope.ts";
import { tensor } from "../../../engine/tensor.ts";
import { prepareExport, writeExport } from "../../../pipeline/export/export.ts";
import { torchvisionToDetectron2 } from "../../../pipeline/export/names.ts";
import { createBackbone } from "../../../pipeline/model/backbones.ts";
import { backend, perturbedWeights, uniform } from "./_weights.ts";

Deno.test("Detectron2 names follow its ResNet layout", () => {
  assertEquals(torchvisionToDetectron2("conv1.weight"), "stem.conv1.weight");
  assertEquals(torchvisionToDetectron2("bn1.running_var"), "stem.conv1.norm.running_var");
  assertEquals(torchvisionToDetectron2("layer1.0.conv2.weight"), "res2.0.conv2.weight");
  assertEquals(torchvisionToDetectron2("layer4.2.bn3.bias"), "res5.2.conv3.norm.bias");
  assertEquals(torchvisionToDetectron2("layer2.0.downsample.0.weight"), "res3.0.shortcut.weight");
  assertEquals(
    torchvisionToDetectron2("layer3.0.downsample.1.running_mean"),
    "res4.0.shortcut.norm.running_mean",
  );
  assertEquals(torchvisionToDetectron2("layer1.0.bn1.num_batches_tracked"), null);
  assertThrows(() => torchvisionToDetectron2("fc.weight"), Error, "fc.weight");
});

Deno.test("prepareExport keeps every backbone tensor and rejects foreign weights", async () => {
  const be = await backend();
  const w = await perturbedWeights("resnet18");
  const tv = prepareExport(be, { arch: "resnet18", tensors: w }, "torchvision");
  assertEquals([...tv.tensors.keys()].sort(), [...w.keys()].sort());
  assert(!tv.tensors.has("fc.weight"));
  assertEquals(tv.metadata.arch, "resnet18");
  const d2 = prepareExport(be, { arch: "resnet18", tensors: w }, "detectron2");
  const bnCount = [...w.keys()].filter((k) => k.endsWith("num_batches_tracked")).length;
  assertEquals(d2.tensors.size, w.size - bnCount);
  assert(d2.tensors.has("res5.1.conv2.norm.weight"));
  assertThrows(() => prepareExport(be, { arch: "resnet34", tensors: w }, "torchvision"), Error);
});

Deno.test("export command writes torchvision and Detectron2 files from an artifact folder", async () => {
  const w = await perturbedWeights("resnet18");
  const dir = await Deno.makeTempDir({ prefix: "virtex-export-cli-" });
  await Deno.writeFile(join(dir, "visual.safetensors"), encodeSafetensors(w, { arch: "resnet18" }));
  await Deno.writeTextFile(join(dir, "model.json"), JSON.stringify({ visual: "resnet18" }));
  const tv = join(dir, "tv.safetensors"), d2 = join(dir, "d2.safetensors");
  assertEquals(await exportCommand(["--model", dir, "--out", tv]), 0);
  assertEquals(await exportCommand(["--model", dir, "--out", d2, "--names", "detectron2"]), 0);
  const a = await loadSafetensors(tv), b = await loadSafetensors(d2);
  assertEquals(a.metadata.arch, "resnet18");
  assertEquals(a.tensors.get("layer4.1.bn2.weight")!.data, w.get("layer4.1.bn2.weight")!.data);
  assertEquals(b.tensors.get("res5.1.conv2.norm.weight")!.data, w.get("layer4.1.bn2.weight")!.data);
  await assertRejects(() => exportCommand(["--model", dir, "--out", tv, "--names", "caffe"]));
  await Deno.remove(dir, { recursive: true });
});

const python = "/usr/bin/python3";
const hasTorch = await new Deno.Command(python, { args: ["-c", "import torch, torchvision"] })
  .output().then((o) => o.code === 0, () => false);
if (!hasTorch) console.log("export_test: /usr/bin/python3 with torch absent, skipping parity");

Deno.test({
  name: "torchvision ResNet loaded from our export reproduces our pooled features (1e-4)",
  ignore: !hasTorch,
  fn: async () => {
    const arch = "resnet18";
    const be = await backend();
    const w = await perturbedWeights(arch);
    const dir = await Deno.makeTempDir({ prefix: "virtex-export-test-" });
    const weightsPath = join(dir, "resnet18.safetensors");
    await writeExport(weightsPath, prepareExport(be, { arch, tensors: w }, "torchvision"));
    const [B, S] = [2, 64];
    const images = uniform(B * 3 * S * S, 99, -2, 2);
    await Deno.writeFile(
      join(dir, "input.safetensors"),
      encodeSafetensors(new Map([["images", { shape: [B, 3, S, S], data: images }]])),
    );
    const script = new URL("../../../tools/check_export.py", import.meta.url).pathname;
    const res = await new Deno.Command(python, {
      args: [script, weightsPath, join(dir, "input.safetensors"), join(dir, "out.safetensors")],
    }).output();
    assertEquals(res.code, 0, new TextDecoder().decode(res.stderr));
    const theirs = (await loadSafetensors(join(dir, "out.safetensors"))).tensors.get("pooled")!;

    const net = createBackbone(be, arch);
    net.loadStateDict(w, true);
    net.eval();
    const pooled = noGrad(() => ops.globalAvgPool(net.forward(tensor(be, images, [B, 3, S, S]))));
    const ours = await pooled.f32();
    assertEquals(theirs.shape, [B, net.featureSize]);
    let worst = 0;
    for (let i = 0; i < ours.length; i++) {
      const d = Math.abs(ours[i] - theirs.data[i]) / Math.max(1, Math.abs(theirs.data[i]));
      worst = Math.max(worst, d);
    }
    console.log(`export parity: max relative difference ${worst.toExponential(2)}`);
    assert(worst <= 1e-4, `max relative difference ${worst}`);
    assert(ours.some((v) => Math.abs(v) > 1e-3), "features are not all ~0");
    await Deno.remove(dir, { recursive: true });
  },
});
