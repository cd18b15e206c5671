/**
 * Zero-shot prompts: each class gets one sentence per template ("a photo of a {class}." by
 * default, `{class}` replaced by the class's display name) plus any sentences the user gives for
 * it; every sentence is tokenized with the model's vocabulary as [SOS] … [EOS].
 */
import type { Tokenizer } from "../tokenize/tokenizer.ts";

/** The template of the zero-shot protocol (CLIP's, with the caption grammar's full stop). */
export const DEFAULT_TEMPLATES = ["a photo of a {class}."];

/** Display names of PASCAL VOC classes whose label joins words. */
const VOC_DISPLAY: Record<string, string> = {
  diningtable: "dining table",
  pottedplant: "potted plant",
  tvmonitor: "tv monitor",
};

/** A class's name in prompts: `names[c]`, else VOC's spelled-out names, else `_` → space. */
export function displayName(c: string, names: Record<string, string> = {}): string {
  return names[c] ?? VOC_DISPLAY[c] ?? c.replaceAll("_", " ");
}

/** One prompt: its text, class index and token ids ([SOS] … [EOS]). */
export interface Prompt {
  text: string;
  classIndex: number;
  ids: number[];
}

/** What buildPrompts reads. */
export interface PromptOptions {
  classes: string[];
  /** Sentences with `{class}` (each class gets one per template). */
  templates: string[];
  /** Extra sentences per class (by class label). */
  extra: Record<string, string[]>;
  /** Display names by class label. */
  names: Record<string, string>;
}

/** The prompt texts of every class, in class order (see module doc). */
export function promptTexts(o: PromptOptions): { text: string; classIndex: number }[] {
  for (const c of Object.keys(o.extra)) {
    if (!o.classes.includes(c)) {
      throw new Error(
        `zeroshot.prompts: "${c}" is not a class of the dataset (${o.classes.join(", ")})`,
      );
    }
  }
  for (const t of o.templates) {
    if (!t.includes("{class}")) {
      throw new Error(`zeroshot.templates: "${t}" has no {class} placeholder`);
    }
  }
  const out: { text: string; classIndex: number }[] = [];
  o.classes.forEach((c, k) => {
    const name = displayName(c, o.names);
    const texts = [...o.templates.map((t) => t.replaceAll("{class}", name)), ...(o.extra[c] ?? [])];
    if (texts.length === 0) {
      throw new Error(`zeroshot: class "${c}" has no prompt (no templates and no prompts.${c})`);
    }
    for (const text of new Set(texts)) out.push({ text, classIndex: k });
  });
  return out;
}

/**
 * Tokenizes the prompts as [SOS] … [EOS]; a prompt longer than `maxLength` ids (the decoder's
 * positional table) is an error naming it.
 */
export function encodePrompts(
  tokenizer: Tokenizer,
  texts: { text: string; classIndex: number }[],
  maxLength: number,
  sos: number,
  eos: number,
): Prompt[] {
  return texts.map(({ text, classIndex }) => {
    const ids = [sos, ...tokenizer.encode(text), eos];
    if (ids.length > maxLength) {
      throw new Error(
        `zeroshot: prompt "${text}" is ${ids.length} tokens with [SOS]/[EOS], more than the ` +
          `decoder's ${maxLength}`,
      );
    }
    return { text, classIndex, ids };
  });
}
