/** The content-addressed cache: store, keys, hashing. */
export { Cache, computeKey, defaultCacheRoot } from "./store.ts";
export type { GcResult, KeyParts, Ref, VerifyProblem } from "./store.ts";
export { canonicalJson, FileHashMemo, hashFile, hashPath, listFiles, sha256Hex } from "./hash.ts";
