"""Summarise a py-spy profile (``py-spy record --format raw``, collapsed stacks) as the heaviest frames.

    .venv/bin/py-spy record -p PID -d 40 -r 100 --format raw -o var/profile/rasa.txt
    .venv/bin/python bench/profile_summary.py var/profile/rasa.txt [--top 25] [--match deskmate]

Prints, for the ``--top`` frames with the most samples *inclusive* (the frame
or anything it called), their share of all samples and of the samples'
self time; ``--match`` keeps only frames whose text contains it (e.g. a
package or module name). Idle samples are not recorded by py-spy by default,
so the shares are of time spent running Python.
"""
from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path
from typing import List, Optional


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("profile", type=Path)
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--match", default="")
    args = parser.parse_args(argv)
    inclusive: Counter = Counter()
    own: Counter = Counter()
    total = 0
    for line in args.profile.read_text(errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        total += count
        frames = stack.split(";")
        for frame in set(frames):
            inclusive[frame] += count
        own[frames[-1]] += count
    print(f"{args.profile}: {total} samples")
    print(f"{'incl %':>7} {'self %':>7}  frame")
    shown = 0
    for frame, count in inclusive.most_common():
        if args.match and args.match not in frame:
            continue
        print(f"{100 * count / total:7.1f} {100 * own[frame] / total:7.1f}  {frame[:150]}")
        shown += 1
        if shown >= args.top:
            break
    return 0


if __name__ == "__main__":
    sys.exit(main())
