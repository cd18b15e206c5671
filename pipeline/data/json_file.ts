/** Reading JSON dataset files with errors naming file:line:column. */
import { DataError } from "./errors.ts";
import { locateJsonError } from "./json_location.ts";

/** Reads and parses a JSON file; malformed JSON throws a DataError naming file and line. */
export function readJsonFile(path: string): unknown {
  let text: string;
  try {
    text = Deno.readTextFileSync(path);
  } catch (e) {
    throw new DataError({ file: path }, `cannot read (${(e as Error).message})`);
  }
  try {
    return JSON.parse(text);
  } catch (e) {
    const at = locateJsonError(text);
    throw new DataError(
      { file: path, line: at?.line },
      `malformed JSON${at ? ` at column ${at.column}` : ""} (${
        (e as Error).message.split("\n")[0]
      })`,
    );
  }
}
