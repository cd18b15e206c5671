/** `virtex cache ls|show|verify|gc|refs|unref`: inspect and maintain the artifact cache. */
import { Cache } from "../pipeline/cache/store.ts";
import { err, formatBytes, out, parseFlags, printJsonSummary, UsageError } from "./common.ts";

/** The `cache --help` text. */
export const CACHE_HELP = `usage: ./virtex cache <subcommand> [options]

The cache lives in $VIRTEX_CACHE (default .virtex-cache/ in the current folder).

subcommands:
  ls                   list artifacts (key, stage, created, size, refs)
  show REF             print an artifact's folder and manifest (REF: key, key prefix, ref, ref:label)
  verify [REF...]      re-hash every file of the given artifacts (default: all); names any corrupted,
                       missing or unlisted file and exits 1
  gc [--dry-run] [--keep REF]... [--work]
                       remove artifacts no ref reaches (refs are written by stage commands and
                       run; inputs of a kept artifact are kept), temp folders of dead builds and
                       stale locks; --work also removes resumable scratch folders
  refs                 list refs (named roots)
  unref NAME           remove a ref (its artifacts become collectable)

options:
  --json               print a final one-line JSON summary`;

function sizeOf(files: { size: number }[]): number {
  return files.reduce((a, f) => a + f.size, 0);
}

/** Runs a cache subcommand; returns the exit code. */
export async function cacheCommand(args: string[]): Promise<number> {
  const { values, positionals } = parseFlags(args, {
    json: { type: "boolean" },
    "dry-run": { type: "boolean" },
    keep: { type: "string", multiple: true },
    work: { type: "boolean" },
    help: { type: "boolean", short: "h" },
  }, "cache");
  const [sub, ...rest] = positionals;
  if (values.help || !sub) {
    out(CACHE_HELP);
    return values.help ? 0 : 2;
  }
  const cache = new Cache();
  switch (sub) {
    case "ls": {
      const refsByKey = new Map<string, string[]>();
      for (const r of cache.refs()) {
        for (const [label, key] of Object.entries(r.keys)) {
          const name = label === r.name ? r.name : `${r.name}:${label}`;
          refsByKey.set(key, [...(refsByKey.get(key) ?? []), name]);
        }
      }
      const list = cache.list();
      if (!values.json) {
        if (!list.length) out(`(no artifacts in ${cache.root})`);
        for (const a of list) {
          out(
            [
              a.key.slice(0, 12),
              a.manifest.stage.padEnd(10),
              a.manifest.created.replace("T", " ").slice(0, 19),
              formatBytes(sizeOf(a.manifest.files)).padStart(8),
              (refsByKey.get(a.key) ?? []).join(","),
            ].join("  ").trimEnd(),
          );
        }
      }
      if (values.json) {
        printJsonSummary({
          stage: "cache ls",
          key: null,
          hit: false,
          summary: {
            artifacts: list.map((a) => ({
              key: a.key,
              stage: a.manifest.stage,
              created: a.manifest.created,
              bytes: sizeOf(a.manifest.files),
              refs: refsByKey.get(a.key) ?? [],
            })),
          },
        });
      }
      return 0;
    }
    case "show": {
      if (rest.length !== 1) throw new UsageError("cache show: expected one REF");
      const a = cache.resolve(rest[0]);
      if (values.json) {
        printJsonSummary({
          stage: "cache show",
          key: a.key,
          hit: true,
          summary: { ...a.manifest },
        });
      } else {
        out(`artifact ${a.key}`);
        out(`folder   ${a.dir}`);
        out(JSON.stringify(a.manifest, null, 2));
      }
      return 0;
    }
    case "verify": {
      const keys = rest.length ? rest.map((r) => cache.resolve(r).key) : undefined;
      const n = keys?.length ?? cache.list().length;
      const problems = await cache.verify(keys);
      for (const p of problems) {
        const stage = (() => {
          try {
            return cache.get(p.key)?.manifest.stage ?? "?";
          } catch {
            return "?";
          }
        })();
        err(`CORRUPT ${p.key.slice(0, 12)} (${stage}): ${p.file}: ${p.problem}`);
        err(`        ${cache.artifactDir(p.key)}/${p.file}`);
      }
      if (values.json) {
        printJsonSummary({
          stage: "cache verify",
          key: null,
          hit: false,
          summary: { artifacts: n, ok: problems.length === 0, problems },
        });
      } else if (!problems.length) out(`ok: ${n} artifact(s) verified`);
      else {
        err(
          `verify: ${problems.length} problem(s) in ${new Set(problems.map((p) => p.key)).size} ` +
            `artifact(s); remove them (cache gc --keep …, or delete the folder) and rebuild`,
        );
      }
      return problems.length ? 1 : 0;
    }
    case "gc": {
      const keep = (values.keep ?? []).map((r) => cache.resolve(r).key);
      const res = cache.gc({ keep, dryRun: values["dry-run"], work: values.work });
      const verb = values["dry-run"] ? "would remove" : "removed";
      if (values.json) {
        printJsonSummary({ stage: "cache gc", key: null, hit: false, summary: { ...res } });
      } else {
        for (const k of res.removed) out(`${verb} artifact ${k.slice(0, 12)}`);
        for (const t of res.tmpRemoved) out(`${verb} temp folder tmp/${t}`);
        for (const w of res.workRemoved) out(`${verb} work folder work/${w.slice(0, 12)}`);
        out(
          `gc: ${verb} ${res.removed.length} artifact(s), ${res.tmpRemoved.length} temp, ` +
            `${res.workRemoved.length} work folder(s), ${res.locksRemoved.length} stale lock(s); ` +
            `${formatBytes(res.freedBytes)}; kept ${res.kept.length}`,
        );
        if (res.workKept.length) {
          const bytes = res.workKept.reduce((a, w) => a + w.bytes, 0);
          out(
            `gc: kept ${res.workKept.length} work folder(s) (${
              formatBytes(bytes)
            }), the scratch of ` +
              `unfinished builds that a rerun resumes from; --work would remove them: ` +
              res.workKept.map((w) => w.key.slice(0, 12)).join(", "),
          );
        }
      }
      return 0;
    }
    case "refs": {
      const refs = cache.refs();
      if (values.json) {
        printJsonSummary({ stage: "cache refs", key: null, hit: false, summary: { refs } });
      } else {
        for (const r of refs) {
          out(`${r.name}  ${r.created.slice(0, 19).replace("T", " ")}`);
          for (const [l, k] of Object.entries(r.keys)) out(`  ${l}: ${k.slice(0, 12)}`);
        }
      }
      return 0;
    }
    case "unref": {
      if (rest.length !== 1) throw new UsageError("cache unref: expected one ref NAME");
      if (!cache.removeRef(rest[0])) throw new UsageError(`cache unref: no ref "${rest[0]}"`);
      out(`removed ref ${rest[0]}`);
      return 0;
    }
    default:
      throw new UsageError(
        `cache: unknown subcommand "${sub}" (ls, show, verify, gc, refs, unref)`,
      );
  }
}
