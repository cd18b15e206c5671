/**
 * Cross-validation splits identical to scikit-learn's StratifiedKFold(n_splits, shuffle=False),
 * which is what cross_val_score(classifier, …, cv=k) uses.
 *
 * sklearn's rule: encode classes by order of first appearance; sort the encoded labels and deal
 * them round-robin into the k folds, which fixes how many samples of each class each fold gets;
 * then walk each class's samples in data order, giving the first `count[0]` to fold 0, the next
 * `count[1]` to fold 1, and so on.
 */

/** Test-fold index (0..k−1) of every sample. */
export function stratifiedKFold(labels: ArrayLike<number>, k: number): Uint8Array {
  const n = labels.length;
  if (!Number.isInteger(k) || k < 2 || k > 255) {
    throw new Error(`stratifiedKFold: n_splits must be an integer in [2, 255], got ${k}`);
  }
  // Classes by order of first appearance.
  const code = new Map<number, number>();
  const encoded = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const l = labels[i];
    let c = code.get(l);
    if (c === undefined) {
      c = code.size;
      code.set(l, c);
    }
    encoded[i] = c;
  }
  const classes = code.size;
  const counts = new Int32Array(classes);
  for (let i = 0; i < n; i++) counts[encoded[i]]++;
  if (counts.every((c) => c < k)) {
    throw new Error(
      `stratifiedKFold: n_splits=${k} is greater than the number of members in every class`,
    );
  }
  // allocation[f][c]: how many samples of class c fold f receives. In the sorted label list
  // class c occupies positions [start_c, start_c + counts[c]); fold f takes positions ≡ f mod k.
  const allocation: Int32Array[] = Array.from({ length: k }, () => new Int32Array(classes));
  let start = 0;
  for (let c = 0; c < classes; c++) {
    for (let p = start; p < start + counts[c]; p++) allocation[p % k][c]++;
    start += counts[c];
  }
  const fold = new Uint8Array(n);
  const nextFold = new Int32Array(classes); // current fold per class
  const usedInFold = new Int32Array(classes); // samples already given to that fold
  for (let i = 0; i < n; i++) {
    const c = encoded[i];
    while (usedInFold[c] >= allocation[nextFold[c]][c]) {
      nextFold[c]++;
      usedInFold[c] = 0;
    }
    fold[i] = nextFold[c];
    usedInFold[c]++;
  }
  return fold;
}

/** Train and test row ids (ascending, as sklearn yields them) for fold `f`. */
export function foldRows(fold: Uint8Array, f: number): { train: Uint32Array; test: Uint32Array } {
  const train: number[] = [];
  const test: number[] = [];
  for (let i = 0; i < fold.length; i++) (fold[i] === f ? test : train).push(i);
  return { train: Uint32Array.from(train), test: Uint32Array.from(test) };
}
