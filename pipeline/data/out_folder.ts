/** Writing a whole output folder atomically (a temp folder renamed into place at the end). */
import { DataError } from "./errors.ts";

/**
 * Fills a fresh temp folder beside `outDir` with `fill(tmp)` and renames it to `outDir`. An
 * existing `outDir` is an error unless `force` (then it is replaced only once the new one is
 * complete); on failure the temp folder is removed and `outDir` is left as it was.
 */
export async function writeFolderAtomically<T>(
  outDir: string,
  force: boolean | undefined,
  fill: (tmp: string) => Promise<T>,
): Promise<T> {
  let exists = false;
  try {
    Deno.statSync(outDir);
    exists = true;
  } catch { /* absent */ }
  if (exists && !force) {
    throw new DataError({ file: outDir }, "output folder exists (use --force to replace it)");
  }
  const tmp = `${outDir}.tmp-${Deno.pid}-${Date.now()}`;
  try {
    await Deno.mkdir(tmp, { recursive: true });
    const result = await fill(tmp);
    if (exists) await Deno.remove(outDir, { recursive: true });
    await Deno.rename(tmp, outDir);
    return result;
  } catch (e) {
    await Deno.remove(tmp, { recursive: true }).catch(() => {});
    throw e;
  }
}
