#!/usr/bin/env python3
"""Rebuilds crates/types/src/address/words.txt from the EFF long word list.

The EFF list (CC BY 3.0 US, Electronic Frontier Foundation, 2016) ships inside the
`xkcdpass` package on PyPI as xkcdpass/static/eff-long (sha256 6d557f06...bc522).

    pip download --no-deps -d /tmp/xk xkcdpass && cd /tmp/xk && unzip -q xkcdpass-*.whl
    python3 scripts/make-wordlist.py /tmp/xk/xkcdpass/static/eff-long

Rules (ARCHITECTURE §3): 4096 lowercase ASCII words, unique in their first five
letters, none a prefix of another. Per five-letter prefix we keep the shortest word,
then keep the 4096 shortest of those (ties alphabetical) and sort the result.
"""
import re
import sys

source = sys.argv[1]
words = [line.split()[-1] for line in open(source, encoding="ascii") if line.strip()]
words = [w for w in words if re.fullmatch("[a-z]+", w)]
best = {}
for w in words:
    p = w[:5]
    if p not in best or (len(w), w) < (len(best[p]), best[p]):
        best[p] = w
chosen = sorted(sorted(best.values(), key=lambda w: (len(w), w))[:4096])
assert len(chosen) == 4096
assert len({w[:5] for w in chosen}) == 4096
assert not any(a != b and b.startswith(a) for a in chosen for b in chosen if b[:1] == a[:1])
with open("crates/types/src/address/words.txt", "w", encoding="ascii") as out:
    out.write("\n".join(chosen) + "\n")
