/**
 * Merges what bench/gpu/device_check.sh left in DIR (adapter.json, tests.log, ours_*.json,
 * torch_*.json, nvidia-smi.txt, parts.tsv) into DIR/report.json and DIR/report.md with
 * ours / PyTorch ratios. Missing or broken inputs become "n/a" rows, never a failure.
 *
 *   deno run -A bench/gpu/report.ts [DIR]
 */

const dir = Deno.args[0] ?? Deno.env.get("OUT") ?? new URL("../out/gpu", import.meta.url).pathname;

// deno-lint-ignore no-explicit-any
type Json = any;

async function readJson(name: string): Promise<Json | null> {
  try {
    return JSON.parse(await Deno.readTextFile(`${dir}/${name}`));
  } catch {
    return null;
  }
}

async function readText(name: string): Promise<string | null> {
  try {
    return await Deno.readTextFile(`${dir}/${name}`);
  } catch {
    return null;
  }
}

/** The summary line of a `deno test` log ("ok | 43 passed (63 steps) | 0 failed | …"). */
function testSummary(log: string | null): Json {
  if (log === null) return { ran: false };
  // deno-lint-ignore no-control-regex
  const plain = log.replace(/\x1b\[[0-9;]*m/g, "");
  const m =
    /^(ok|FAILED) \| (\d+) passed(?: \((\d+) steps\))? \| (\d+) failed(?: \((\d+) steps\))?(?: \| (\d+) ignored)?/m
      .exec(plain);
  const failures = [...plain.matchAll(/^(.+?) \.\.\. FAILED/gm)].map((x) => x[1].trim());
  const skipped = [...plain.matchAll(/^(.*(?:skipped|ignored).*)$/gm)]
    .map((x) => x[1].trim()).filter((l) => !l.includes(" ... ")).slice(0, 10);
  return m
    ? {
      ran: true,
      ok: m[1] === "ok",
      passed: Number(m[2]),
      failed: Number(m[4]),
      ignored: Number(m[6] ?? 0),
      failures,
      notes: skipped,
    }
    : { ran: true, ok: false, summary: "no summary line (killed by its timeout?)", failures };
}

const adapter = await readJson("adapter.json");
const tests = testSummary(await readText("tests.log"));
const oursMicro = await readJson("ours_micro.json");
const torchMicro = await readJson("torch_micro.json");
const oursPre = await readJson("ours_pretrain.json");
const torchPre = await readJson("torch_pretrain.json");
const smi = await readText("nvidia-smi.txt");
const parts = (await readText("parts.tsv") ?? "").trim().split("\n").filter(Boolean)
  .map((l) => {
    const [part, rc, seconds] = l.split("\t");
    return { part, rc: Number(rc), seconds: Number(seconds) };
  });

const f = (
  v: unknown,
  d = 1,
) => (typeof v === "number" && Number.isFinite(v) ? v.toFixed(d) : "n/a");

/** Micro rows keyed alike on both sides; the torch f16 matmul pairs with our f16 operands. */
const micro = ((oursMicro?.results ?? []) as Json[]).map((o) => {
  const t = ((torchMicro?.results ?? []) as Json[]).find((x) => x.key === o.key) ?? null;
  const ratio = o.gflops && t?.gflops ? o.gflops / t.gflops : null;
  return {
    key: o.key,
    label: o.label,
    gflop: o.gflop,
    oursGflops: o.gflops ?? null,
    torchGflops: t?.gflops ?? null,
    ratio,
    oursMs: o.secondsPerIter ? o.secondsPerIter * 1e3 : null,
    torchMs: t?.secondsPerIter ? t.secondsPerIter * 1e3 : null,
    oursFirstCallSeconds: o.firstSeconds ?? null,
    spotRelError: o.relError ?? null,
    error: [o.error, t?.error].filter(Boolean).join("; ") || null,
  };
});
for (const t of (torchMicro?.results ?? []) as Json[]) {
  if (!micro.some((m) => m.key === t.key)) {
    micro.push({
      key: t.key,
      label: t.label,
      gflop: t.gflop,
      oursGflops: null,
      torchGflops: t.gflops ?? null,
      ratio: null,
      oursMs: null,
      torchMs: t.secondsPerIter ? t.secondsPerIter * 1e3 : null,
      oursFirstCallSeconds: null,
      spotRelError: null,
      error: t.error ?? "ours: not measured",
    });
  }
}

const pretrain: Json[] = [];
for (const o of (oursPre?.results ?? []) as Json[]) {
  const t = ((torchPre?.results ?? []) as Json[]).find((x) =>
    x.batch === o.batch && x.amp === o.amp
  );
  pretrain.push({
    batch: o.batch,
    amp: o.amp,
    oursImgPerSec: o.imgPerSec ?? null,
    torchImgPerSec: t?.imgPerSec ?? null,
    ratio: o.imgPerSec && t?.imgPerSec ? o.imgPerSec / t.imgPerSec : null,
    oursWarmupSeconds: o.warmupSeconds ?? null,
    oursLosses: o.losses ?? null,
    torchLosses: t?.losses ?? null,
    oursSubmitsPerStep: o.submitsPerStep ?? null,
    oursDispatchesPerStep: o.dispatchesPerStep ?? null,
    parameters: [o.parameters ?? null, t?.parameters ?? null],
    torchMaxMemoryGiB: t?.maxMemoryGiB ?? null,
    error: [o.error, t?.error].filter(Boolean).join("; ") || null,
  });
}
for (const t of (torchPre?.results ?? []) as Json[]) {
  if (!pretrain.some((p) => p.batch === t.batch && p.amp === t.amp)) {
    pretrain.push({
      batch: t.batch,
      amp: t.amp,
      oursImgPerSec: null,
      torchImgPerSec: t.imgPerSec ?? null,
      ratio: null,
      torchLosses: t.losses ?? null,
      error: t.error ?? "ours: not measured",
    });
  }
}

const report = {
  bench: "gpu",
  date: new Date().toISOString(),
  adapter,
  torch: torchMicro
    ? { version: torchMicro.torch, device: torchMicro.device, cuda: torchMicro.cuda, tf32: false }
    : torchPre
    ? { version: torchPre.torch, device: torchPre.device, cuda: torchPre.cuda, tf32: false }
    : null,
  nvidiaSmi: smi?.trim() ?? null,
  tests,
  parts,
  micro,
  pretrainCase: oursPre?.case ?? torchPre?.case ?? null,
  pretrain,
};
await Deno.mkdir(dir, { recursive: true });
await Deno.writeTextFile(`${dir}/report.json.tmp`, JSON.stringify(report, null, 2) + "\n");
await Deno.rename(`${dir}/report.json.tmp`, `${dir}/report.json`);

const pc = report.pretrainCase;
const lines = [
  "# bench/gpu: webgpu backend vs PyTorch, same machine, same run",
  "",
  `- adapter: ${adapter?.name ?? "none"} (vendor ${adapter?.vendor ?? "?"}, fallback ${
    adapter?.isFallbackAdapter ?? "?"
  }, shader-f16 ${adapter?.shaderF16 ?? "?"}, DENO_WEBGPU_BACKEND ${
    adapter?.env?.DENO_WEBGPU_BACKEND ?? "unset"
  })`,
  `- PyTorch: ${report.torch?.version ?? "not run"} on ${report.torch?.device ?? "?"} (CUDA ${
    report.torch?.cuda ?? "none"
  }; f32 is strict: TF32 off for matmul and cuDNN)`,
  `- tests (webgpu on this adapter): ${
    tests.ran
      ? tests.summary ??
        `${
          tests.ok ? "ok" : "FAILED"
        }: ${tests.passed} passed, ${tests.failed} failed, ${tests.ignored} ignored`
      : "not run"
  }${tests.failures?.length ? ` — failures: ${tests.failures.join("; ")}` : ""}`,
  `- parts (exit code, seconds): ${
    parts.map((p) => `${p.part} ${p.rc} ${f(p.seconds, 0)}s`).join(", ") || "n/a"
  }`,
  "",
  "## Kernels (GFLOP/s, best of two time-boxed rounds, iterations batched per submit)",
  "",
  "| benchmark | ours GFLOP/s | PyTorch GFLOP/s | ours / PyTorch | ours ms | PyTorch ms | ours first call s | spot rel. error | note |",
  "|---|---|---|---|---|---|---|---|---|",
  ...micro.map((m) =>
    `| ${m.label} | ${f(m.oursGflops)} | ${f(m.torchGflops)} | ${f(m.ratio, 3)} | ${
      f(m.oursMs, 3)
    } | ${f(m.torchMs, 3)} | ${f(m.oursFirstCallSeconds, 2)} | ${
      m.spotRelError === null ? "" : m.spotRelError.toExponential(1)
    } | ${m.error ?? ""} |`
  ),
  "",
  `## Pretraining step (img/s): ${
    pc ? `${pc.visual} ${pc.size} px + ${pc.textual}, vocab ${pc.vocab}, bicaptioning` : "n/a"
  }`,
  "",
  "AMP: ours autocasts matrix products to f16 (f32 accumulation), PyTorch uses torch.autocast f16;",
  "neither uses loss scaling here.",
  "",
  "| batch | precision | ours img/s | PyTorch img/s | ours / PyTorch | ours warmup s | ours submits / dispatches per step | note |",
  "|---|---|---|---|---|---|---|---|",
  ...pretrain.map((p) =>
    `| ${p.batch} | ${p.amp ? "AMP f16" : "f32"} | ${f(p.oursImgPerSec, 2)} | ${
      f(p.torchImgPerSec, 2)
    } | ${f(p.ratio, 3)} | ${
      (p.oursWarmupSeconds ?? []).map((x: number) => x.toFixed(1)).join(", ")
    } | ${f(p.oursSubmitsPerStep, 0)} / ${f(p.oursDispatchesPerStep, 0)} | ${p.error ?? ""} |`
  ),
  "",
];
if (smi) lines.push("## nvidia-smi", "", "```", smi.trim(), "```", "");
await Deno.writeTextFile(`${dir}/report.md.tmp`, lines.join("\n"));
await Deno.rename(`${dir}/report.md.tmp`, `${dir}/report.md`);
console.log(lines.join("\n"));
console.log(`wrote ${dir}/report.json and ${dir}/report.md`);
