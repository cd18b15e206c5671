/** Minimal assertions for the eval tests (node:assert's types need @types/node, absent here). */

/** Throws with `message` unless `cond` holds. */
export function assert(cond: unknown, message = "assertion failed"): asserts cond {
  if (!cond) throw new Error(message);
}

/** Strict equality of primitives, or JSON equality of arrays/objects. */
export function assertEquals(actual: unknown, expected: unknown, message = ""): void {
  const a = typeof actual === "object" ? JSON.stringify(actual) : actual;
  const e = typeof expected === "object" ? JSON.stringify(expected) : expected;
  if (!Object.is(a, e)) {
    throw new Error(`${message ? message + ": " : ""}expected ${String(e)}, got ${String(a)}`);
  }
}

/** |actual − expected| ≤ tol. */
export function assertClose(actual: number, expected: number, tol: number, message = ""): void {
  if (!(Math.abs(actual - expected) <= tol)) {
    throw new Error(
      `${message ? message + ": " : ""}expected ${expected} ± ${tol}, got ${actual}`,
    );
  }
}

/** Awaits `fn` and checks that it rejects with a message containing `includes`. */
export async function assertRejects(fn: () => Promise<unknown>, includes: string): Promise<void> {
  try {
    await fn();
  } catch (e) {
    const msg = (e as Error).message;
    if (!msg.includes(includes)) throw new Error(`error "${msg}" does not mention "${includes}"`);
    return;
  }
  throw new Error(`expected a rejection mentioning "${includes}"`);
}

/** Checks that `fn` throws with a message containing `includes`. */
export function assertThrows(fn: () => unknown, includes: string): void {
  try {
    fn();
  } catch (e) {
    const msg = (e as Error).message;
    if (!msg.includes(includes)) throw new Error(`error "${msg}" does not mention "${includes}"`);
    return;
  }
  throw new Error(`expected an error mentioning "${includes}"`);
}
