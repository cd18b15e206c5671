/** Checking that the image a record names exists (or decodes), under the bad-input policy. */
import { decodeImage } from "./image.ts";
import type { BadInputPolicy } from "./errors.ts";
import type { SourceLocation } from "./types.ts";

/** How thoroughly readers check the images records name. */
export type ImageCheck = "none" | "exists" | "decode";

/**
 * Checks `file` per `mode`; on a problem reports it to `policy` (throws without skipBad) and
 * returns false so the caller skips the record.
 */
export async function checkImage(
  file: string,
  mode: ImageCheck,
  policy: BadInputPolicy,
  source: SourceLocation,
  kind?: "image",
): Promise<boolean> {
  if (mode === "none") return true;
  try {
    const st = Deno.statSync(file);
    if (!st.isFile) throw new Error("not a file");
  } catch {
    policy.bad(source, `image not found: ${file}`, kind);
    return false;
  }
  if (mode === "decode") {
    try {
      await decodeImage(file);
    } catch (e) {
      policy.bad(source, `bad image ${file}: ${(e as Error).message}`, kind);
      return false;
    }
  }
  return true;
}
