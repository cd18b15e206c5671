/**
 * The SVM kernel against Debian's liblinear-train (same solver: -s 1, bias -B 1, weights
 * -w1 2 -w-1 1, -e 1e-4) on a small problem: decision values must agree. Skips without
 * liblinear-tools. Also checks the solver's own optimality conditions, which needs no tool.
 */
import { assert, assertEquals } from "../pipeline/eval/_assert.ts";
import { SvmKernel } from "../../kernels/svm.ts";

const LIBLINEAR = "/usr/bin/liblinear-train";
const hasLiblinear = (() => {
  try {
    return Deno.statSync(LIBLINEAR).isFile;
  } catch {
    return false;
  }
})();
if (!hasLiblinear) console.warn(`svm_test: ${LIBLINEAR} absent (liblinear-tools); skipping parity`);

/** Deterministic problem: L2-normalized rows [n, d], labels ±1 from a noisy linear rule. */
function problem(n: number, d: number, seed: number) {
  let s = seed >>> 0;
  const rand = () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
  const gauss = () => Math.sqrt(-2 * Math.log(rand() + 1e-12)) * Math.cos(2 * Math.PI * rand());
  const dir = Array.from({ length: d }, gauss);
  const x = new Float32Array(n * d);
  const y = new Int8Array(n);
  for (let i = 0; i < n; i++) {
    let norm = 0;
    for (let j = 0; j < d; j++) {
      const v = gauss() + (j % 3 === 0 ? 0.5 : 0);
      x[i * d + j] = v;
      norm += v * v;
    }
    let score = 0;
    for (let j = 0; j < d; j++) {
      x[i * d + j] /= Math.sqrt(norm);
      score += x[i * d + j] * dir[j];
    }
    y[i] = score + 0.3 * gauss() > 0.4 ? 1 : -1;
  }
  return { x, y };
}

/** Trains liblinear-train on the problem; returns decision values for every row. */
async function liblinearDecisions(
  x: Float32Array,
  y: Int8Array,
  n: number,
  d: number,
  c: number,
): Promise<Float64Array> {
  const dir = await Deno.makeTempDir({ prefix: "virtex-svm-" });
  try {
    const lines: string[] = [];
    for (let i = 0; i < n; i++) {
      const feats = [];
      for (let j = 0; j < d; j++) feats.push(`${j + 1}:${x[i * d + j].toPrecision(9)}`);
      lines.push(`${y[i] > 0 ? "+1" : "-1"} ${feats.join(" ")}`);
    }
    await Deno.writeTextFile(`${dir}/train.txt`, lines.join("\n") + "\n");
    const args = ["-s", "1", "-B", "1", "-e", "0.0001", "-w1", "2", "-w-1", "1", "-c", `${c}`];
    const out = await new Deno.Command(LIBLINEAR, {
      args: ["-q", ...args, `${dir}/train.txt`, `${dir}/model`],
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert(out.success, new TextDecoder().decode(out.stderr));
    const model = (await Deno.readTextFile(`${dir}/model`)).split("\n");
    const labels = model.find((l) => l.startsWith("label "))!.split(/\s+/).slice(1).map(Number);
    const wStart = model.indexOf("w") + 1;
    const w = model.slice(wStart, wStart + d + 1).map((l) => Number(l.trim()));
    assertEquals(w.length, d + 1);
    const sign = labels[0] === 1 ? 1 : -1; // w scores label[0]
    const dec = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      let s = w[d];
      for (let j = 0; j < d; j++) s += w[j] * x[i * d + j];
      dec[i] = sign * s;
    }
    return dec;
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test({
  name: "svm kernel matches liblinear-train -s 1 -B 1 -w1 2 -w-1 1 -e 1e-4",
  ignore: !hasLiblinear,
  async fn() {
    const n = 300, d = 37;
    const { x, y } = problem(n, d, 7);
    const kernel = await SvmKernel.load();
    const m = kernel.upload(x, n, d);
    const rows = Uint32Array.from({ length: n }, (_, i) => i);
    for (const c of [0.1, 1, 10]) {
      const model = kernel.train(m, rows, y, {
        cPos: 2 * c,
        cNeg: c,
        eps: 1e-4,
        maxIter: 2000,
        seed: 1,
      });
      const ours = kernel.decision(m, rows, model);
      const ref = await liblinearDecisions(x, y, n, d, c);
      let maxDiff = 0, maxAbs = 0;
      for (let i = 0; i < n; i++) {
        maxDiff = Math.max(maxDiff, Math.abs(ours[i] - ref[i]));
        maxAbs = Math.max(maxAbs, Math.abs(ref[i]));
      }
      console.log(
        `C=${c}: max |Δdecision| ${maxDiff.toExponential(2)} (max |ref| ${maxAbs.toFixed(3)})`,
      );
      assert(maxDiff < 5e-4 * Math.max(1, maxAbs), `C=${c}: decisions differ by ${maxDiff}`);
    }
    kernel.release(m);
  },
});

Deno.test("svm kernel solution satisfies the primal optimality condition", async () => {
  // Primal: min 0.5|w|² + Σ C_i max(0, 1 − y_i w·x_i)²; gradient w − Σ 2 C_i ξ_i y_i x_i = 0.
  const n = 200, d = 16;
  const { x, y } = problem(n, d, 3);
  const kernel = await SvmKernel.load();
  const m = kernel.upload(x, n, d);
  const rows = Uint32Array.from({ length: n }, (_, i) => i);
  const c = 1;
  const model = kernel.train(m, rows, y, {
    cPos: 2 * c,
    cNeg: c,
    eps: 1e-6,
    maxIter: 5000,
    seed: 5,
  });
  assert(model.iterations < 5000, "did not converge");
  const dec = kernel.decision(m, rows, model);
  const grad = new Float64Array(d + 1);
  for (let j = 0; j < d; j++) grad[j] = model.w[j];
  grad[d] = model.bias;
  for (let i = 0; i < n; i++) {
    const ci = y[i] > 0 ? 2 * c : c;
    const slack = Math.max(0, 1 - y[i] * dec[i]);
    for (let j = 0; j < d; j++) grad[j] -= 2 * ci * slack * y[i] * x[i * d + j];
    grad[d] -= 2 * ci * slack * y[i];
  }
  const gnorm = Math.hypot(...grad);
  assert(gnorm < 1e-3, `primal gradient norm ${gnorm}`);
  // A subset of rows trains a different model than all rows.
  const half = kernel.train(m, rows.subarray(0, n / 2), y, {
    cPos: 2,
    cNeg: 1,
    eps: 1e-4,
    maxIter: 2000,
    seed: 5,
  });
  assert(Math.abs(half.bias - model.bias) > 1e-6);
  kernel.release(m);
});
