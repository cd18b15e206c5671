/** Minimal assertions for the augment tests (no @std here). */

export function assert(cond: unknown, msg = "assertion failed"): asserts cond {
  if (!cond) throw new Error(msg);
}

/** Deep equality through JSON (typed arrays compared as plain arrays). */
export function assertEquals(actual: unknown, expected: unknown, msg = ""): void {
  const norm = (v: unknown) =>
    JSON.stringify(v, (_k, x) => (ArrayBuffer.isView(x) ? Array.from(x as Uint8Array) : x));
  const a = norm(actual), e = norm(expected);
  if (a !== e) throw new Error(`${msg ? msg + ": " : ""}expected ${e}, got ${a}`);
}

export function assertThrows(fn: () => unknown, includes?: string): Error {
  try {
    fn();
  } catch (e) {
    const err = e as Error;
    if (includes && !err.message.includes(includes)) {
      throw new Error(`error message "${err.message}" does not include "${includes}"`);
    }
    return err;
  }
  throw new Error("expected an exception");
}

export async function assertRejects(fn: () => Promise<unknown>, includes?: string): Promise<Error> {
  try {
    await fn();
  } catch (e) {
    const err = e as Error;
    if (includes && !err.message.includes(includes)) {
      throw new Error(`error message "${err.message}" does not include "${includes}"`);
    }
    return err;
  }
  throw new Error("expected a rejection");
}
