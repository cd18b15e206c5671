/**
 * Debian's SentencePiece (spm_train) as the reference of the BPE parity tests: our specials and
 * normalization (identity rule on already-normalized text), BPE, full character coverage.
 */
import { join } from "node:path";

/** True when spm_train runs here; otherwise says why the caller's parity checks are skipped. */
export function haveSpm(who: string): boolean {
  try {
    new Deno.Command("spm_train", { args: ["--help"], stdout: "null", stderr: "null" })
      .outputSync();
    return true;
  } catch {
    console.log(`${who}: spm_train not found (Debian package sentencepiece); skipping parity`);
    return false;
  }
}

/** Trains spm BPE on `lines` and returns its vocabulary's pieces in id order (specials first). */
export async function spmTrainPieces(lines: string[], vocabSize: number): Promise<string[]> {
  const dir = await Deno.makeTempDir({ prefix: "virtex-spm-" });
  try {
    await Deno.writeTextFile(join(dir, "in.txt"), lines.join("\n") + "\n");
    const out = await new Deno.Command("spm_train", {
      args: [
        `--input=${join(dir, "in.txt")}`,
        `--model_prefix=${join(dir, "m")}`,
        "--model_type=bpe",
        `--vocab_size=${vocabSize}`,
        "--character_coverage=1.0",
        "--normalization_rule_name=identity",
        "--unk_id=0",
        "--bos_id=-1",
        "--eos_id=-1",
        "--user_defined_symbols=[SOS],[EOS],[MASK]",
      ],
      stdout: "null",
      stderr: "null",
    }).output();
    if (!out.success) throw new Error("spm_train failed");
    return (await Deno.readTextFile(join(dir, "m.vocab"))).split("\n").filter((l) => l)
      .map((l) => l.split("\t")[0]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}
