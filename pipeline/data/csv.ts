/** RFC 4180 CSV parsing with line numbers (quoted fields may hold commas, quotes and newlines). */

/** One CSV record: its fields, the 1-based line it starts on, and a syntax problem if any. */
export interface CsvRecord {
  fields: string[];
  line: number;
  error?: string; // e.g. a stray quote; the record's fields are then unreliable
}

/**
 * Parses CSV text into records. A record with a syntax error (a stray quote, text after a closing
 * quote, a quoted field never closed) carries `error`, and parsing resumes at the line after the
 * one the bad record started on: a broken row is skipped alone, even when its unbalanced quote
 * would otherwise swallow the rows after it; each following line is then read as a record of its
 * own. CRLF and LF line endings are both accepted; blank lines are skipped.
 */
export function* parseCsv(text: string): Generator<CsvRecord> {
  let i = text.charCodeAt(0) === 0xfeff ? 1 : 0;
  let line = 1;
  const n = text.length;
  while (i < n) {
    const startLine = line;
    // blank line
    if (text[i] === "\n" || (text[i] === "\r" && text[i + 1] === "\n")) {
      i += text[i] === "\r" ? 2 : 1;
      line++;
      continue;
    }
    const fields: string[] = [];
    let error: string | undefined;
    let endOfRecord = false;
    // Where parsing resumes after an error: the start of the record's second physical line.
    let nextLine = text.indexOf("\n", i);
    nextLine = nextLine < 0 ? n : nextLine + 1;
    while (!endOfRecord) {
      if (text[i] === '"') {
        // quoted field
        const fieldLine = line;
        let value = "";
        i++;
        let closed = false;
        while (i < n) {
          const c = text[i];
          if (c === '"') {
            if (text[i + 1] === '"') {
              value += '"';
              i += 2;
              continue;
            }
            i++;
            closed = true;
            break;
          }
          if (c === "\n") line++;
          value += c;
          i++;
        }
        if (!closed) {
          error = `unterminated quoted field starting on line ${fieldLine}`;
        } else {
          fields.push(value);
          if (i < n && text[i] !== "," && text[i] !== "\n" && text[i] !== "\r") {
            error = `unexpected character after closing quote in field ${fields.length}`;
          }
        }
      } else {
        let j = i;
        while (j < n && text[j] !== "," && text[j] !== "\n" && text[j] !== "\r") j++;
        const value = text.slice(i, j);
        if (value.includes('"')) {
          error ??= `stray quote in unquoted field ${fields.length + 1}`;
        }
        fields.push(value);
        i = j;
      }
      if (error) {
        // Resynchronise at the line after the record's first line.
        i = nextLine;
        line = startLine + 1;
        break;
      }
      if (i >= n) endOfRecord = true;
      else if (text[i] === ",") i++;
      else if (text[i] === "\r" && text[i + 1] === "\n") {
        i += 2;
        line++;
        endOfRecord = true;
      } else if (text[i] === "\n" || text[i] === "\r") {
        i++;
        line++;
        endOfRecord = true;
      }
      if (!endOfRecord && i >= n) {
        fields.push(""); // trailing comma at end of input
        endOfRecord = true;
      }
    }
    yield error ? { fields, line: startLine, error } : { fields, line: startLine };
  }
}
