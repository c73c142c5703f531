#!/usr/bin/env python3
"""split.py: cuts handwritten.jsonl into a development part and a blind part, by a hash of the text.

Why by hash: the blind part must not depend on the order of the file or on which lines were added
later, and nobody should pick it. A line is blind when the first 8 hex digits of the SHA-256 of its
text, read as a number, are divisible by 4 (about 25% of the lines). Heads and detector changes are
chosen on the development part; the blind part only measures them.

Usage: python3 split.py OUTDIR   (writes OUTDIR/handwritten-dev.jsonl and OUTDIR/handwritten-blind.jsonl)
"""
import hashlib
import json
import os
import sys


def is_blind(text):
    return int(hashlib.sha256(text.encode("utf-8")).hexdigest()[:8], 16) % 4 == 0


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: split.py OUTDIR")
    here = os.path.dirname(os.path.abspath(__file__))
    parts = {"dev": [], "blind": []}
    with open(os.path.join(here, "handwritten.jsonl"), encoding="utf-8") as f:
        for line in f:
            if line.strip():
                parts["blind" if is_blind(json.loads(line)["text"]) else "dev"].append(line)
    os.makedirs(sys.argv[1], exist_ok=True)
    for name, lines in parts.items():
        with open(os.path.join(sys.argv[1], "handwritten-%s.jsonl" % name), "w", encoding="utf-8") as out:
            out.writelines(lines)
        positives = sum(json.loads(l)["sensitive"] for l in lines)
        print("%-5s %4d lines, %3d sensitive" % (name, len(lines), positives))


if __name__ == "__main__":
    main()
