#!/usr/bin/env python3
"""evaluate.py: the sensitivity verdict of a head on labelled lines, overall and per group.

Why: `junction route --eval` gives precision, recall and AUC over a whole file; choosing a head for
generality also needs to know *where* it errs (which hard negatives it flags, which kinds of
positives it misses). This runs `junction route --scores` (the same scoring as the daemon: detectors,
forcing kinds, the head) and breaks the verdict (score >= the head's threshold) down by the lines'
"group" field.

Usage: python3 evaluate.py JUNCTION HEAD.json|default FILE.jsonl [--threshold X] [--show-errors]
"""
import argparse
import json
import os
import subprocess
import sys


def auc(scores, labels):
    pos = [s for s, y in zip(scores, labels) if y]
    neg = [s for s, y in zip(scores, labels) if not y]
    if not pos or not neg:
        return float("nan")
    wins = sum((p > n) + 0.5 * (p == n) for p in pos for n in neg)
    return wins / (len(pos) * len(neg))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("junction")
    ap.add_argument("head", help="a head file, or 'default' for the one built into junction (the build's\n"
                    "classifier/heads/sensitivity.json: its threshold is read from there)")
    ap.add_argument("data")
    ap.add_argument("--threshold", type=float, help="default: the head's own")
    ap.add_argument("--show-errors", action="store_true")
    a = ap.parse_args()
    cmd = [a.junction, "route", "--scores", a.data]
    head = a.head
    if head == "default":   # the build embeds classifier/heads/sensitivity.json
        head = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "classifier", "heads",
                            "sensitivity.json")
    else:
        cmd[2:2] = ["--sensitivity-head", head]
    threshold = a.threshold
    if threshold is None:
        with open(head, encoding="utf-8") as f:
            threshold = json.load(f).get("threshold", 0.5)
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.splitlines()
    with open(a.data, encoding="utf-8") as f:
        rows = [json.loads(l) for l in f if l.strip()]
    if len(out) != len(rows):
        sys.exit("junction printed %d scores for %d lines" % (len(out), len(rows)))
    scores = [json.loads(l)["sensitivity"] for l in out]
    labels = [r["sensitive"] for r in rows]
    flag = [s >= threshold for s in scores]
    tp = sum(f and y for f, y in zip(flag, labels))
    fp = sum(f and not y for f, y in zip(flag, labels))
    fn = sum(not f and y for f, y in zip(flag, labels))
    print("n=%d threshold=%.3g auc=%.4f precision=%.4f recall=%.4f (tp %d, fp %d, fn %d)" % (
        len(rows), threshold, auc(scores, labels), tp / max(tp + fp, 1), tp / max(tp + fn, 1), tp, fp, fn))
    groups = sorted({r.get("group", "-") for r in rows})
    for g in groups:
        idx = [i for i, r in enumerate(rows) if r.get("group", "-") == g]
        y = labels[idx[0]] if len({labels[i] for i in idx}) == 1 else None
        flagged = sum(flag[i] for i in idx)
        what = "recall" if y == 1 else "flagged (false positives)" if y == 0 else "flagged"
        print("  %-20s %4d lines  %s %d (%.0f%%)" % (g, len(idx), what, flagged, 100.0 * flagged / len(idx)))
    if a.show_errors:
        for i, r in enumerate(rows):
            if flag[i] != bool(labels[i]):
                print("%s %.3f [%s] %s" % ("FN" if labels[i] else "FP", scores[i], r.get("group", "-"),
                                          r["text"][:150].replace("\n", " ")))


if __name__ == "__main__":
    main()
