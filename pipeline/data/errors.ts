/** Errors for bad dataset input, and the skip-and-count policy behind `--skip-bad`. */
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
  bad(source: SourceLocation, reason: string): void {
    if (!this.skipBad) throw new DataError(source, reason);
    this.skipped.push({ source, reason });
  }
}
