import { cosineLr, top1Accuracy, trainLinearProbe } from "../../../pipeline/eval/linear_probe.ts";
import { assert, assertClose, assertEquals, assertThrows } from "./_assert.ts";

const torchFixture = JSON.parse(
  await Deno.readTextFile(new URL("./fixtures/torch_probe_fixture.json", import.meta.url)),
);

/** Gaussian blobs: class c centred on a random unit direction; returns [rows, dim] + labels. */
function blobs(rows: number, dim: number, classes: number, seed: number, spread: number) {
  let s = seed >>> 0;
  const rand = () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
  const gauss = () => Math.sqrt(-2 * Math.log(rand() + 1e-12)) * Math.cos(2 * Math.PI * rand());
  const centres = Array.from({ length: classes * dim }, gauss);
  const features = new Float32Array(rows * dim);
  const labels = new Int32Array(rows);
  for (let r = 0; r < rows; r++) {
    const c = r % classes;
    labels[r] = c;
    for (let j = 0; j < dim; j++) features[r * dim + j] = centres[c * dim + j] + spread * gauss();
  }
  return { features, labels, rows, dim };
}

Deno.test("linear probe replays PyTorch SGD(momentum) + cosine LR steps", () => {
  const f = torchFixture;
  const { model, epochLoss } = trainLinearProbe(
    {
      features: Float32Array.from(f.x),
      labels: Int32Array.from(f.y),
      rows: f.rows,
      dim: f.dim,
    },
    f.classes,
    { epochs: f.steps, batchSize: f.rows, lr: f.lr, momentum: 0.9 },
    undefined,
    { weight: Float32Array.from(f.w0), bias: Float32Array.from(f.b0) },
  );
  for (let i = 0; i < f.w.length; i++) assertClose(model.weight[i], f.w[i], 1e-5, `w[${i}]`);
  for (let k = 0; k < f.b.length; k++) assertClose(model.bias[k], f.b[k], 1e-5, `b[${k}]`);
  // Full batch: each epoch's mean loss is the loss of that step.
  for (let s = 0; s < f.steps; s++) assertClose(epochLoss[s], f.losses[s], 1e-5, `loss ${s}`);
});

Deno.test("linear probe learns separable blobs; top-1 on held-out rows", () => {
  const all = blobs(900, 16, 5, 1, 0.6);
  const train = {
    ...all,
    features: all.features.subarray(0, 600 * 16),
    labels: all.labels.subarray(0, 600),
    rows: 600,
  };
  const test = {
    ...all,
    features: all.features.subarray(600 * 16),
    labels: all.labels.subarray(600),
    rows: 300,
  };
  const { model, epochLoss } = trainLinearProbe(train, 5, { epochs: 10, batchSize: 64 });
  assert(epochLoss[9] < epochLoss[0] / 2, `loss ${epochLoss[0]} → ${epochLoss[9]}`);
  const acc = top1Accuracy(model, test);
  assert(acc > 0.9, `top-1 ${acc}`);
  // Chance-level labels give chance-level accuracy on fresh data.
  const shuffled = { ...test, labels: test.labels.map((_, i) => (i * 7 + 3) % 5) };
  assert(top1Accuracy(model, shuffled) < 0.5);
});

Deno.test("cosine LR schedule and input checks", () => {
  assertEquals(cosineLr(0.3, 0, 100), 0.3);
  assertClose(cosineLr(0.3, 50, 100), 0.15, 1e-12);
  assertClose(cosineLr(0.3, 100, 100), 0, 1e-12);
  const bad = blobs(10, 4, 2, 3, 1);
  bad.labels[3] = 7;
  assertThrows(() => trainLinearProbe(bad, 2), "train.labels[3] = 7");
});
