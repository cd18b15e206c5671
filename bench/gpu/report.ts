/**
 * Merges what bench/gpu/device_check.sh left in DIR (adapter.json, tests.log, ours_*.json,
 * torch_*.json, nvidia-smi.txt, parts.tsv) into DIR/report.json and DIR/report.md with
 * ours / PyTorch ratios, the per-kernel profile before (legacy kernels) and after (current) and
 * the adapter's full feature list. Missing or broken inputs become "n/a" rows, never a failure.
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
const oursProfile = await readJson("ours_profile.json");
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
    (x.case ?? 0) === (o.case ?? 0) && x.batch === o.batch && x.amp === o.amp
  );
  pretrain.push({
    case: o.case ?? 0,
    label: o.label ?? null,
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
  if (
    !pretrain.some((p) => p.case === (t.case ?? 0) && p.batch === t.batch && p.amp === t.amp)
  ) {
    pretrain.push({
      case: t.case ?? 0,
      label: t.label ?? null,
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
  pretrainCases: oursPre?.cases ?? torchPre?.cases ?? null,
  pretrain,
  profile: oursProfile,
};
await Deno.mkdir(dir, { recursive: true });
await Deno.writeTextFile(`${dir}/report.json.tmp`, JSON.stringify(report, null, 2) + "\n");
await Deno.rename(`${dir}/report.json.tmp`, `${dir}/report.json`);

const lines = [
  "# bench/gpu: webgpu backend vs PyTorch, same machine, same run",
  "",
  `- adapter: ${adapter?.name ?? "none"} (vendor ${adapter?.vendor ?? "?"}, fallback ${
    adapter?.isFallbackAdapter ?? "?"
  }, shader-f16 ${adapter?.shaderF16 ?? "?"}, DENO_WEBGPU_BACKEND ${
    adapter?.env?.DENO_WEBGPU_BACKEND ?? "unset"
  })`,
  `- subgroups ${adapter?.subgroups ?? "?"} (size ${adapter?.subgroupMinSize ?? "?"}..${
    adapter?.subgroupMaxSize ?? "?"
  }; batch norm uses subgroupAdd: ${oursMicro?.subgroups?.used ?? "?"}${
    oursMicro?.subgroups?.note ? ` — ${oursMicro.subgroups.note}` : ""
  }), timestamp-query ${adapter?.features?.includes("timestamp-query") ?? "?"}, ` +
  `cooperative matrix (tensor cores) ${adapter?.cooperativeMatrix ?? "?"}: ${
    coopLine(oursMicro?.coop)
  }`,
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
  "## Pretraining step (img/s), bicaptioning",
  "",
  "AMP: ours autocasts matrix products to f16 (f32 accumulation), PyTorch uses torch.autocast f16;",
  "neither uses loss scaling here. Our losses are read back one step late (as the trainer does).",
  "",
  "| case | batch | precision | ours img/s | PyTorch img/s | ours / PyTorch | ours warmup s | ours submits / dispatches per step | note |",
  "|---|---|---|---|---|---|---|---|---|",
  ...pretrain.map((p) =>
    `| ${p.label ?? p.case} | ${p.batch} | ${p.amp ? "AMP f16" : "f32"} | ${
      f(p.oursImgPerSec, 2)
    } | ${f(p.torchImgPerSec, 2)} | ${f(p.ratio, 3)} | ${
      (p.oursWarmupSeconds ?? []).map((x: number) => x.toFixed(1)).join(", ")
    } | ${f(p.oursSubmitsPerStep, 0)} / ${f(p.oursDispatchesPerStep, 0)} | ${p.error ?? ""} |`
  ),
  "",
];
lines.push(...profileLines(oursProfile));
if (adapter?.features) {
  lines.push("## Adapter features", "", (adapter.features as string[]).join(", ") || "(none)", "");
}
if (smi) lines.push("## nvidia-smi", "", "```", smi.trim(), "```", "");
await Deno.writeTextFile(`${dir}/report.md.tmp`, lines.join("\n"));
await Deno.rename(`${dir}/report.md.tmp`, `${dir}/report.md`);
console.log(lines.join("\n"));
console.log(`wrote ${dir}/report.json and ${dir}/report.md`);

/** The per-kernel profile section: GPU ms per op kind, legacy (before) vs current (after). */
function profileLines(prof: Json): string[] {
  const rs = (prof?.results ?? []) as Json[];
  if (rs.length === 0) return [];
  const before = rs.find((r) => r.kernels === "legacy" && !r.error);
  const after = rs.find((r) => r.kernels === "current" && !r.error);
  const out = [
    `## Per-kernel profile of one training step: ${prof.label}, batch ${
      (after ?? before)?.batch ?? "?"
    }`,
    "",
    "GPU time of each dispatch from timestamp queries (one compute pass per dispatch), grouped by",
    "the Backend method that issued it; before = legacy kernels, after = current kernels, same run.",
    "Buffer copies (uploads, the optimizer's gradient gather) are not dispatches and not included.",
    "",
  ];
  for (const r of rs.filter((r) => r.error)) out.push(`- ${r.kernels}: ${r.error}`);
  const tot = (r: Json, k: string, d = 1) => (r ? f(r[k], d) : "n/a");
  out.push(
    "| | before | after | after / before |",
    "|---|---|---|---|",
    `| GPU ms per step (sum of dispatches) | ${tot(before, "gpuMs")} | ${tot(after, "gpuMs")} | ${
      before && after ? f(after.gpuMs / before.gpuMs, 3) : "n/a"
    } |`,
    `| dispatches per step | ${tot(before, "dispatches", 0)} | ${tot(after, "dispatches", 0)} | ${
      before && after ? f(after.dispatches / before.dispatches, 3) : "n/a"
    } |`,
    `| wall s per step (unprofiled) | ${tot(before, "stepSeconds", 3)} | ${
      tot(after, "stepSeconds", 3)
    } | ${before && after ? f(after.stepSeconds / before.stepSeconds, 3) : "n/a"} |`,
    `| img/s (unprofiled) | ${tot(before, "imgPerSec", 2)} | ${tot(after, "imgPerSec", 2)} | ${
      before && after ? f(after.imgPerSec / before.imgPerSec, 3) : "n/a"
    } |`,
    "",
    "| op kind | before GPU ms | after GPU ms | before dispatches | after dispatches | after GFLOP/s |",
    "|---|---|---|---|---|---|",
  );
  const ops = new Set<string>([...(before?.byOp ?? []), ...(after?.byOp ?? [])].map((r) => r.name));
  const row = (r: Json | undefined, name: string) =>
    (r?.byOp as Json[] | undefined)?.find((x) => x.name === name);
  const sorted = [...ops].sort((a, b) =>
    (row(after, b)?.ms ?? row(before, b)?.ms ?? 0) - (row(after, a)?.ms ?? row(before, a)?.ms ?? 0)
  );
  for (const name of sorted) {
    const b = row(before, name), a = row(after, name);
    const gfs = a?.gflop ? f(a.gflop / (a.ms / 1000), 0) : "";
    out.push(
      `| ${name} | ${f(b?.ms, 2)} | ${f(a?.ms, 2)} | ${b?.dispatches ?? ""} | ${
        a?.dispatches ?? ""
      } | ${gfs} |`,
    );
  }
  if (after?.byShape?.length) {
    out.push(
      "",
      "Largest op shapes after (current kernels):",
      "",
      "| op and shape | GPU ms | dispatches | GFLOP/s |",
      "|---|---|---|---|",
      ...(after.byShape as Json[]).slice(0, 15).map((r) =>
        `| ${r.name} | ${f(r.ms, 2)} | ${r.dispatches} | ${
          r.gflop ? f(r.gflop / (r.ms / 1000), 0) : ""
        } |`
      ),
    );
  }
  out.push("");
  return out;
}

/** What the tensor-core self-test of the backend found (ours_micro.json "coop"). */
function coopLine(coop: Json): string {
  if (!coop) return "not used (feature absent or no f16)";
  const vs = ((coop.variants ?? []) as Json[]).map((v) =>
    `${v.T}×${v.T}·${v.RT}² ${v.trans.join("/")}`
  );
  return vs.length
    ? `AMP products use ${vs.join(", ")} (subgroup ${coop.workgroup})`
    : `no variant passed its self-test: ${((coop.notes ?? []) as string[]).slice(0, 3).join("; ")}`;
}
