/**
 * Textual head names in the reference's string form: `<kind>::L<layers>_H<hidden>_A<heads>_F<ff>`,
 * e.g. `transdec_postnorm::L1_H2048_A32_F8192`. A and F may be left out (A = H/64, F = 4H), so
 * `transdec_postnorm::L1_H512` means L1_H512_A8_F2048. `linear` and `none` take no size.
 */
export type HeadKind = "transdec_postnorm" | "transdec_prenorm" | "linear" | "none";

export interface HeadSpec {
  kind: HeadKind;
  layers: number;
  hidden: number;
  heads: number;
  feedforward: number;
}

const SIZE = /^L(\d+)_H(\d+)(?:_A(\d+))?(?:_F(\d+))?$/;

/** Parses a textual head name; throws naming the bad part. */
export function parseHeadName(name: string): HeadSpec {
  const [kind, size] = name.split("::");
  if (kind === "linear" || kind === "none") {
    if (size) throw new Error(`textual head "${name}": "${kind}" takes no size`);
    return { kind, layers: 0, hidden: 0, heads: 0, feedforward: 0 };
  }
  if (kind !== "transdec_postnorm" && kind !== "transdec_prenorm") {
    throw new Error(
      `textual head "${name}": unknown kind "${kind}" (transdec_postnorm, transdec_prenorm, linear, none)`,
    );
  }
  const m = SIZE.exec(size ?? "");
  if (!m) throw new Error(`textual head "${name}": size must look like L1_H2048_A32_F8192`);
  const layers = Number(m[1]), hidden = Number(m[2]);
  const heads = m[3] ? Number(m[3]) : Math.max(1, hidden / 64);
  const feedforward = m[4] ? Number(m[4]) : 4 * hidden;
  if (!Number.isInteger(heads) || hidden % heads !== 0) {
    throw new Error(`textual head "${name}": hidden ${hidden} is not divisible by ${heads} heads`);
  }
  return { kind, layers, hidden, heads, feedforward };
}

/** The canonical full name of a spec. */
export function headName(s: HeadSpec): string {
  if (s.kind === "linear" || s.kind === "none") return s.kind;
  return `${s.kind}::L${s.layers}_H${s.hidden}_A${s.heads}_F${s.feedforward}`;
}
