/**
 * The committed parity fixtures are what tools/torch_fixtures.py produces: regenerate them with
 * Debian's torch into a temp dir and compare. Skipped when /usr/bin/python3 has no torch.
 */
import assert from "node:assert";
import { loadSafetensors } from "../../engine/safetensors.ts";
import { assertClose } from "./suite_util.ts";
import { FIXTURE_DIR } from "./torch_parity_suite.ts";

const python = "/usr/bin/python3";
const hasTorch = await new Deno.Command(python, { args: ["-c", "import torch, torchvision"] })
  .output().then((o) => o.code === 0, () => false);
if (!hasTorch) console.log("skipping fixture regeneration: /usr/bin/python3 with torch absent");

Deno.test({
  name: "tools/torch_fixtures.py regenerates the committed fixtures",
  ignore: !hasTorch,
  fn: async () => {
    const dir = await Deno.makeTempDir();
    try {
      const script = new URL("../../tools/torch_fixtures.py", import.meta.url).pathname;
      const out = await new Deno.Command(python, { args: [script, "--out", dir] }).output();
      assert.strictEqual(out.code, 0, new TextDecoder().decode(out.stderr));
      for (const f of ["bottleneck", "decoder_postnorm", "decoder_prenorm"]) {
        const fresh = await loadSafetensors(`${dir}/${f}.safetensors`);
        const kept = await loadSafetensors(new URL(`${f}.safetensors`, FIXTURE_DIR).pathname);
        assert.deepStrictEqual([...fresh.tensors.keys()].sort(), [...kept.tensors.keys()].sort());
        for (const [name, t] of kept.tensors) {
          assert.deepStrictEqual(fresh.tensors.get(name)!.shape, t.shape, `${f} ${name}`);
          assertClose(`${f} ${name}`, fresh.tensors.get(name)!.data, t.data, 1e-6);
        }
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
