/** Errors for bad dataset input, and the skip-and-count policy behind `--skip-bad`. */
import { join } from "node:path";
import type { BadRecord, SourceLocation } from "./types.ts";

/** Formats a location as `file:line` / `file: field` / `file:line: field`. */
export function formatLocation(loc: SourceLocation): string {
  let s = loc.file;
  if (loc.line !== undefined) s += `:${loc.line}`;
  if (loc.field !== undefined) s += ` (${loc.field})`;
  return s;
}

/** Bad input in a dataset file; the message starts with the file and line/field. */
export class DataError extends Error {
  override name = "DataError";
  constructor(readonly source: SourceLocation, readonly reason: string) {
    super(`${formatLocation(source)}: ${reason}`);
  }
}

/** Reader options shared by every dataset reader. */
export interface BadInputOptions {
  /** Skip bad records and count them instead of failing on the first one. */
  skipBad?: boolean;
}

/**
 * Collects bad records: `bad()` throws a DataError unless skipBad is set, in which case it records
 * the problem and returns so the caller can skip the record.
 */
export class BadInputPolicy {
  readonly skipped: BadRecord[] = [];
  constructor(readonly skipBad = false) {}
  bad(source: SourceLocation, reason: string, kind?: "image"): void {
    if (!this.skipBad) throw new DataError(source, reason);
    this.skipped.push(kind ? { source, reason, kind } : { source, reason });
  }

  /** Skipped caption / label records (image entries not counted). */
  get skippedRecords(): number {
    return this.skipped.filter((s) => s.kind !== "image").length;
  }
}

/**
 * Writes `skipped.jsonl` (one skipped record per line: source file, line or field, reason) into
 * an artifact folder when anything was skipped; returns how many caption records and image
 * entries were skipped.
 */
export async function writeSkippedList(
  dir: string,
  skipped: BadRecord[],
  log: (m: string) => void,
): Promise<{ skipped: number; skippedImages: number }> {
  const images = skipped.filter((s) => s.kind === "image").length;
  if (skipped.length) {
    const text = skipped.map((s) => JSON.stringify(s)).join("\n") + "\n";
    await Deno.writeTextFile(join(dir, "skipped.jsonl"), text);
    log(`skipped ${skipped.length} bad record(s); see skipped.jsonl`);
  }
  return { skipped: skipped.length - images, skippedImages: images };
}
