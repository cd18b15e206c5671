/** A test-only stage: writes its config's text (and an input file's content) to out.txt. */
import { join } from "node:path";
import { z } from "zod";
import type { Stage } from "../../../pipeline/stage.ts";

const schema = z.strictObject({
  text: z.string().default("hello"),
  repeat: z.number().int().min(1).default(1),
  source: z.string().default(""),
  nested: z.strictObject({ lr: z.number().default(0.1) }).default({ lr: 0.1 }),
});
export type EchoConfig = z.infer<typeof schema>;

/** How many times run() was called in this process. */
export const runs = { count: 0 };

/**
 * Writes out.txt = text × repeat (+ source file content). With VIRTEX_TEST_SLOW_MS set (not part of
 * the key), it writes half the output, touches $VIRTEX_TEST_MARKER, and sleeps that long before
 * finishing, so a test can kill it mid-write. A file in workDir from an earlier killed run is
 * reported as `resumed`.
 */
export const echoStage: Stage<EchoConfig> = {
  name: "echo",
  version: "1",
  module: import.meta.url,
  schema,
  artifactInputs: {
    up: { kind: "echo", description: "an upstream echo artifact", needed: () => false },
  },
  inputs(cfg) {
    const files: Record<string, string> = cfg.source ? { source: cfg.source } : {};
    return { artifacts: {}, files };
  },
  async run(ctx) {
    runs.count++;
    const resumed = (() => {
      try {
        Deno.statSync(join(ctx.workDir, "partial"));
        return true;
      } catch {
        return false;
      }
    })();
    Deno.writeTextFileSync(join(ctx.workDir, "partial"), "started");
    let body = ctx.config.text.repeat(ctx.config.repeat);
    if (ctx.inputFiles.source) body += Deno.readTextFileSync(ctx.inputFiles.source);
    for (const [name, a] of Object.entries(ctx.inputs)) {
      body += `\n${name}=${a.key}`;
    }
    const slow = Number(Deno.env.get("VIRTEX_TEST_SLOW_MS") ?? "0");
    if (slow > 0) {
      Deno.writeTextFileSync(join(ctx.outDir, "out.txt"), body.slice(0, body.length >> 1));
      const marker = Deno.env.get("VIRTEX_TEST_MARKER");
      if (marker) Deno.writeTextFileSync(marker, String(Deno.pid));
      await new Promise((r) => setTimeout(r, slow));
    }
    Deno.writeTextFileSync(join(ctx.outDir, "out.txt"), body);
    Deno.mkdirSync(join(ctx.outDir, "sub"), { recursive: true });
    Deno.writeTextFileSync(join(ctx.outDir, "sub", "len.txt"), String(body.length));
    return { length: body.length, resumed };
  },
};
