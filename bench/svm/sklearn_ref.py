#!/usr/bin/python3
"""Reference side of bench/svm: VirTex's clf_voc07 protocol with scikit-learn's LinearSVC
(liblinear inside), on the .npy features bench/svm/main.ts wrote.

Per class: C in {0.01, 0.1, 1, 10} by the mean of cross_val_score(cv=3, scoring=AP), strictly
better wins; refit on all train rows; difficult (0) labels are negatives in training and excluded
at test. Classes run in a multiprocessing pool of --workers processes, as clf_voc07.py does.

Usage: /usr/bin/python3 bench/svm/sklearn_ref.py DIR --workers N  (prints one JSON line)
"""
import argparse
import json
import multiprocessing as mp
import os
import time
import warnings

import numpy as np

COSTS = [0.01, 0.1, 1.0, 10.0]


def solve_class(args):
    warnings.filterwarnings("ignore")
    from sklearn.metrics import average_precision_score
    from sklearn.model_selection import cross_val_score
    from sklearn.svm import LinearSVC

    xtr, ytr, xte, yte, c = args
    y = np.where(ytr == 1, 1, -1)
    best_ap, best_cost, best_clf, cv = 0.0, None, None, []
    for cost in COSTS:
        clf = LinearSVC(C=cost, class_weight={1: 2, -1: 1}, penalty="l2",
                        loss="squared_hinge", max_iter=2000, tol=1e-4)
        scores = cross_val_score(clf, xtr, y, cv=3, scoring="average_precision")
        clf.fit(xtr, y)
        cv.append(float(scores.mean()))
        if scores.mean() > best_ap:
            best_ap, best_cost, best_clf = scores.mean(), cost, clf
    keep = yte != 0
    ap = average_precision_score(yte[keep] > 0, best_clf.decision_function(xte[keep]))
    return {"classIndex": c, "ap": float(ap), "bestCost": best_cost, "cvAp": cv}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("dir")
    p.add_argument("--workers", type=int, default=os.cpu_count())
    a = p.parse_args()
    xtr = np.load(os.path.join(a.dir, "train_x.npy"))
    ytr = np.load(os.path.join(a.dir, "train_y.npy"))
    xte = np.load(os.path.join(a.dir, "test_x.npy"))
    yte = np.load(os.path.join(a.dir, "test_y.npy"))
    k = ytr.shape[1]
    tasks = [(xtr, ytr[:, c], xte, yte[:, c], c) for c in range(k)]
    t0 = time.perf_counter()
    with mp.Pool(processes=a.workers) as pool:
        results = pool.map(solve_class, tasks, chunksize=1)
    seconds = time.perf_counter() - t0
    import sklearn
    print(json.dumps({
        "sklearn": sklearn.__version__,
        "workers": a.workers,
        "seconds": seconds,
        "mAP": float(np.mean([r["ap"] for r in results])),
        "classes": results,
    }))


if __name__ == "__main__":
    main()
