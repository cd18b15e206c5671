/**
 * Parallel decoding (`caption --decode parallel`) of a cappa model: one pass over all-[MASK]
 * inputs, each position's most likely generable token, cut at [EOS]; attention rows from the same
 * pass; refused for models trained without the parallel objective.
 */
import { assert, assertEquals } from "../cache/_assert.ts";
import { join } from "node:path";
import { noGrad, tidy } from "../../../engine/scope.ts";
import { tensor } from "../../../engine/tensor.ts";
import { applyEval } from "../../../pipeline/augment/transforms.ts";
import { captionImages, openCaptioner } from "../../../pipeline/caption/captioner.ts";
import { logSoftmaxGenerable, parallelPick } from "../../../pipeline/caption/decoding.ts";
import { parallelLogits } from "../../../pipeline/model/caption_losses.ts";
import { EOS } from "../../../pipeline/model/tasks.ts";
import { encodePng } from "../../../pipeline/image/png.ts";
import { captionCommand } from "../../../cli/caption_command.ts";
import { fakeModelArtifact, scene } from "../_model_artifact.ts";

Deno.test("parallelPick: argmax per position, cut at the first [EOS]", () => {
  const row = (best: number) =>
    Float32Array.from({ length: 6 }, (_, v) => (v === best ? -0.1 : -5));
  const d = parallelPick([row(4), row(5), row(EOS), row(4)]);
  assertEquals(d.tokens, [4, 5]);
  assert(Math.abs(d.logprob - -0.3) < 1e-6);
  assertEquals(parallelPick([row(4), row(4)]).tokens, [4, 4]); // no [EOS]: every position
});

Deno.test("parallel captions of a cappa model: one pass, argmax per position", async () => {
  const { root, modelDir } = await fakeModelArtifact({ task: "cappa", seed: 9, captionLength: 12 });
  try {
    const c = await openCaptioner(modelDir, { device: "wasm" });
    assertEquals(c.captionLength, 12);
    const imgs = [scene(0), scene(2)];
    const ours = await captionImages(c, imgs, "parallel", { attention: true });
    // By hand: the same memory, 11 [MASK] positions, the generable argmax of each.
    const S = c.transform.size, batch = new Float32Array(2 * 3 * S * S);
    imgs.forEach((im, b) => applyEval(c.kernel, im, c.transform, batch, b * 3 * S * S));
    const logits = noGrad(() =>
      tidy(() => {
        const grid = c.model.visual.forward(tensor(c.backend, batch, [2, 3, S, S]));
        return parallelLogits(c.model.textual!, c.model.textual!.projectVisual(grid), 11);
      })
    );
    const data = await logits.f32();
    logits.dispose();
    const V = c.vocab.size;
    for (let b = 0; b < 2; b++) {
      const want = parallelPick(
        Array.from(
          { length: 11 },
          (_, i) => logSoftmaxGenerable(data.subarray((b * 11 + i) * V, (b * 11 + i + 1) * V)),
        ),
      );
      assertEquals(ours[b].tokens, want.tokens);
      assert(Math.abs(ours[b].logprob - want.logprob) < 1e-4);
      assertEquals(ours[b].text, c.vocab.decode(want.tokens));
      assertEquals(ours[b].grid, [2, 2]);
      assertEquals(ours[b].attention!.length, Math.min(ours[b].tokens.length + 1, 11));
      for (const r of ours[b].attention!) {
        assert(Math.abs(r.reduce((a, x) => a + x, 0) - 1) < 1e-4);
      }
    }
    const short = await captionImages(c, imgs, "parallel", { maxSteps: 2 });
    for (const r of short) assert(r.tokens.length <= 2);
    // The command line: --decode parallel.
    const file = join(root, "1.png");
    await Deno.writeFile(file, encodePng(scene(1)));
    const code = await captionCommand(
      ["--model", modelDir, "--device", "wasm", "--decode", "parallel", "--json", file],
    );
    assertEquals(code, 0);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("parallel decoding refuses a model trained without it", async () => {
  const { root, modelDir } = await fakeModelArtifact({ task: "captioning", seed: 2 });
  try {
    const c = await openCaptioner(modelDir, { device: "wasm" });
    let message = "";
    try {
      await captionImages(c, [scene(0)], "parallel");
    } catch (e) {
      message = (e as Error).message;
    }
    assert(/needs a model trained with task cappa/.test(message), message);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});
