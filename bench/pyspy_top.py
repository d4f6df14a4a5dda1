"""Summarize a `py-spy record --format raw` file: where the sampled time went, by function.

    python -m bench.pyspy_top profile.txt [--top 25] [--under 'GroupWriter._run']

Flame graphs are hard to quote in a report; this prints inclusive and self shares per function
(line numbers folded away) as a share of all samples, so findings can be stated as numbers.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections import Counter
from collections.abc import Iterable, Sequence

_LINE_RE = re.compile(r"^(?P<stack>.*) (?P<count>\d+)$")
_FRAME_RE = re.compile(r"^(?P<func>.*?) \((?P<file>[^():]+)(?::\d+)?\)$")


def _fold(frame: str) -> str:
    """`func (path/file.py:123)` → `path/file.py:func`, so every line of a function adds up."""
    m = _FRAME_RE.match(frame.strip())
    return f"{m.group('file')}:{m.group('func')}" if m else frame.strip()


def read_stacks(lines: Iterable[str]) -> list[tuple[list[str], int]]:
    out: list[tuple[list[str], int]] = []
    for line in lines:
        m = _LINE_RE.match(line.rstrip("\n"))
        if m:
            out.append(([_fold(f) for f in m.group("stack").split(";")], int(m.group("count"))))
    return out


def summarize(stacks: list[tuple[list[str], int]], top: int, under: str | None) -> str:
    if under:
        stacks = [
            (s[next(i for i, f in enumerate(s) if under in f) :], n)
            for s, n in stacks
            if any(under in f for f in s)
        ]
    total = sum(n for _, n in stacks) or 1
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    for frames, n in stacks:
        for f in set(frames):
            inclusive[f] += n
        own[frames[-1]] += n
    rows = [f"{total} samples{' under ' + under if under else ''}", "", "inclusive  function"]
    rows += [f"{100 * n / total:8.1f}%  {f}" for f, n in inclusive.most_common(top)]
    rows += ["", "     self  function"]
    rows += [f"{100 * n / total:8.1f}%  {f}" for f, n in own.most_common(top)]
    return "\n".join(rows)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.pyspy_top", description=__doc__.splitlines()[0])
    p.add_argument("file", help="output of py-spy record --format raw")
    p.add_argument("--top", type=int, default=25)
    p.add_argument("--under", help="only stacks through a frame containing this text, rooted there")
    args = p.parse_args(argv)
    with open(args.file) as fh:
        print(summarize(read_stacks(fh), args.top, args.under))
    return 0


if __name__ == "__main__":
    sys.exit(main())
