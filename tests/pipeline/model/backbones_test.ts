import nodeAssert from "node:assert";
import { createRefBackend } from "../../../engine/backends/ref.ts";
import { createBackbone, parseBackboneName } from "../../../pipeline/model/backbones.ts";
import { tensor } from "../../../engine/tensor.ts";

Deno.test("backbones: a _wN suffix scales every stage's width", async () => {
  const be = await createRefBackend();
  const full = createBackbone(be, "resnet18");
  const slim = createBackbone(be, "resnet18_w16");
  nodeAssert.strictEqual(full.featureSize, 512);
  nodeAssert.strictEqual(slim.featureSize, 128);
  const shapes = new Map(slim.namedParameters().map(([n, t]) => [n, t.shape]));
  nodeAssert.deepStrictEqual(shapes.get("conv1.weight"), [16, 3, 7, 7]);
  nodeAssert.deepStrictEqual(shapes.get("layer4.1.conv2.weight"), [128, 128, 3, 3]);
  // Same parameter names as the full-width net (torchvision layout).
  nodeAssert.deepStrictEqual(
    slim.namedParameters().map(([n]) => n),
    full.namedParameters().map(([n]) => n),
  );
  const grid = slim.forward(
    tensor(be, new Float32Array(2 * 3 * 32 * 32).fill(0.5), [2, 3, 32, 32]),
  );
  nodeAssert.deepStrictEqual(grid.shape, [2, 128, 1, 1]);
  nodeAssert.strictEqual(parseBackboneName("resnet50").width, 64);
  // _os16: no stem max pool, so the grid is twice as fine.
  const os16 = createBackbone(be, "resnet18_w16_os16");
  const g16 = os16.forward(tensor(be, new Float32Array(3 * 32 * 32).fill(0.5), [1, 3, 32, 32]));
  nodeAssert.deepStrictEqual(g16.shape, [1, 128, 2, 2]);
  nodeAssert.throws(() => parseBackboneName("resnet18_os16_w16"), /unknown visual backbone/);
  nodeAssert.throws(() => parseBackboneName("resnet18_wide"), /unknown visual backbone/);
  nodeAssert.throws(() => parseBackboneName("vgg16"), /unknown visual backbone/);
});
