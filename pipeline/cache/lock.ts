/**
 * Per-key build locks: a lock file created with O_EXCL holding the owner's pid. A lock whose
 * owner process is gone (killed mid-build) is stale and is broken by the next builder. The lock
 * only avoids duplicate work: correctness of the cache rests on the final atomic rename, which
 * exactly one builder wins.
 */

interface LockInfo {
  pid: number;
  host: string;
  started: string;
}

/** True when a process with this pid exists on this machine. */
export function processAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    Deno.statSync(`/proc/${pid}`);
    return true;
  } catch {
    if (Deno.build.os === "linux") return false;
  }
  try {
    Deno.kill(pid, "SIGCONT");
    return true;
  } catch {
    return false;
  }
}

function readLock(path: string): LockInfo | null {
  try {
    return JSON.parse(Deno.readTextFileSync(path)) as LockInfo;
  } catch {
    return null;
  }
}

/** A held lock; release() removes it. */
export interface HeldLock {
  release(): void;
}

/**
 * Acquires the lock file at `path`, waiting while a live process holds it and breaking it when
 * its owner is dead. `onWait` is called once when we start waiting (with the holder's pid).
 */
export async function acquireLock(
  path: string,
  onWait?: (holderPid: number) => void,
  pollMs = 200,
): Promise<HeldLock> {
  let waited = false;
  while (true) {
    try {
      const f = Deno.openSync(path, { write: true, createNew: true });
      const info: LockInfo = {
        pid: Deno.pid,
        host: Deno.hostname(),
        started: new Date().toISOString(),
      };
      f.writeSync(new TextEncoder().encode(JSON.stringify(info)));
      f.close();
      return {
        release() {
          const cur = readLock(path);
          if (cur?.pid === Deno.pid) {
            try {
              Deno.removeSync(path);
            } catch { /* already gone */ }
          }
        },
      };
    } catch (e) {
      if (!(e instanceof Deno.errors.AlreadyExists)) throw e;
    }
    const holder = readLock(path);
    if (holder && holder.host === Deno.hostname() && !processAlive(holder.pid)) {
      // Stale: move it aside under a unique name (atomic), then retry creating ours.
      const aside = `${path}.stale.${Deno.pid}.${Date.now()}`;
      try {
        Deno.renameSync(path, aside);
        Deno.removeSync(aside);
      } catch { /* someone else broke it first */ }
      continue;
    }
    if (!holder) {
      // Lock file exists but is still being written (or is garbage): give it a moment.
      const st = (() => {
        try {
          return Deno.statSync(path);
        } catch {
          return null;
        }
      })();
      if (st && Date.now() - (st.mtime?.getTime() ?? 0) > 10_000) {
        try {
          Deno.removeSync(path);
        } catch { /* ignore */ }
        continue;
      }
    }
    if (!waited && holder) onWait?.(holder.pid);
    waited = true;
    await new Promise((r) => setTimeout(r, pollMs));
  }
}

/** True when the lock file exists and its owner is alive. */
export function lockHeld(path: string): boolean {
  const holder = readLock(path);
  return holder !== null && processAlive(holder.pid);
}
