#!/usr/bin/env python3
"""gen_paper_pairs.py — makes tests/golden/pairing/pairs_paper.csv, the reference for `--pairing paper`.

The paper's pairing (Staniszewski et al., ICLR 2025, src/prepare_glyph.py of the authors' code), restated here:
one numpy RandomState seeded with 42 for the whole run; for every word file in turn, the pool is the set of
line indices 0..n-1; for each word i in order, draw np.random.choice(list(pool)) until the drawn index is not
i, pair word i with that word, and remove it from the pool.  Files are processed in the order given.

Run with the Debian numpy (python3-numpy) ONLY to regenerate the committed file; tests never need numpy:
    /usr/bin/python3 tools/gen_paper_pairs.py tests/golden/pairing/words_*.txt > tests/golden/pairing/pairs_paper.csv
Also prints nothing else; the CSV has a header line "a,b" and one pair per line.
With --randint it prints instead "high value" lines: RandomState(42).randint(0, high) for a fixed list of
bounds (powers of two, their neighbours, 1 and 2**32 - 1), the raw draws the pairing is built on:
    /usr/bin/python3 tools/gen_paper_pairs.py --randint > tests/golden/pairing/randint42.txt
"""
import csv
import sys

import numpy as np


def main(paths):
    rs = np.random.RandomState(42)
    out = csv.writer(sys.stdout, lineterminator="\n")
    out.writerow(["a", "b"])
    for path in paths:
        with open(path, encoding="utf-8") as f:
            words = [w.strip() for w in f.read().split("\n") if w.strip()]
        pool = set(range(len(words)))
        for i, word in enumerate(words):
            if pool == {i}:
                sys.exit(f"{path}: word {i} is the only one left in the pool; the authors' loop would never end")
            b = rs.choice(list(pool))
            while b == i:
                b = rs.choice(list(pool))
            out.writerow([word, words[b]])
            pool.remove(b)


def randint_table():
    rs = np.random.RandomState(42)
    highs = [1, 2, 3, 4, 5, 7, 8, 9, 10, 100, 255, 256, 257, 1000, 65535, 65536, 65537, 2**31 - 1, 2**31, 2**32 - 1]
    for rep in range(3):
        for h in highs:
            print(h, rs.randint(0, h))


if __name__ == "__main__":
    if sys.argv[1:] == ["--randint"]:
        randint_table()
    else:
        main(sys.argv[1:])
