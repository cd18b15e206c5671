/**
 * Lifetime and grad-mode bookkeeping: `tidy(fn)` scopes free every tensor created inside except
 * the ones returned and the ones marked `keep` (parameters, buffers, gradients, optimizer state);
 * `noGrad(fn)` runs without recording the tape.
 */

/** What a scope needs to know about a tensor. */
export interface Disposable {
  keep: boolean;
  readonly disposed: boolean;
  dispose(): void;
}

const scopes: Set<Disposable>[] = [];
let gradEnabled = true;

/** Registers a freshly created tensor in the innermost open scope (if any). */
export function track(t: Disposable): void {
  if (scopes.length > 0) scopes[scopes.length - 1].add(t);
}

/** Removes a tensor from every open scope (it then lives until disposed explicitly). */
export function untrack(t: Disposable): void {
  for (const s of scopes) s.delete(t);
}

function collect(value: unknown, out: Set<Disposable>, depth = 0): void {
  if (value === null || typeof value !== "object" || depth > 3) return;
  if ("dispose" in value && "keep" in value) {
    out.add(value as Disposable);
    return;
  }
  if (Array.isArray(value)) { for (const v of value) collect(v, out, depth + 1); }
  else if (value.constructor === Object) {
    for (const v of Object.values(value)) collect(v, out, depth + 1);
  }
}

/**
 * Runs `fn` in a scope; afterwards disposes every tensor created inside it except the ones in its
 * result (a tensor, or arrays / plain objects holding tensors), which move to the enclosing scope,
 * and `keep` tensors. Async functions are supported: the scope closes when the promise settles.
 */
export function tidy<T>(fn: () => T): T {
  const scope = new Set<Disposable>();
  scopes.push(scope);
  let result: T;
  try {
    result = fn();
  } catch (e) {
    closeScope(scope, undefined);
    throw e;
  }
  if (result instanceof Promise) {
    throw new Error("tidy: use tidyAsync for async functions");
  }
  closeScope(scope, result);
  return result;
}

/** Async variant of `tidy`; do not interleave two async scopes concurrently. */
export async function tidyAsync<T>(fn: () => Promise<T>): Promise<T> {
  const scope = new Set<Disposable>();
  scopes.push(scope);
  let result: T;
  try {
    result = await fn();
  } catch (e) {
    closeScope(scope, undefined);
    throw e;
  }
  closeScope(scope, result);
  return result;
}

function closeScope(scope: Set<Disposable>, result: unknown): void {
  const idx = scopes.lastIndexOf(scope);
  if (idx >= 0) scopes.splice(idx, 1);
  const kept = new Set<Disposable>();
  collect(result, kept);
  const parent = scopes.length > 0 ? scopes[scopes.length - 1] : null;
  for (const t of scope) {
    if (kept.has(t)) parent?.add(t);
    else if (!t.keep && !t.disposed) t.dispose();
  }
}

/** Number of currently open scopes (diagnostics). */
export function scopeDepth(): number {
  return scopes.length;
}

/** True unless inside `noGrad`. */
export function isGradEnabled(): boolean {
  return gradEnabled;
}

/** Runs `fn` without recording operations on the autograd tape. */
export function noGrad<T>(fn: () => T): T {
  const prev = gradEnabled;
  gradEnabled = false;
  try {
    return fn();
  } finally {
    gradEnabled = prev;
  }
}

/** Sets grad mode explicitly; returns the previous value. */
export function setGradEnabled(on: boolean): boolean {
  const prev = gradEnabled;
  gradEnabled = on;
  return prev;
}
