"""Reading py-spy's collapsed stacks (`--format raw`): where the sampled time went."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

OUR_CODE = ("kz_jupyter/", "server_ext/", "engines/", "magics/")


def read_stacks(folder: Path) -> Counter:
    """Every stack of every profile in folder, with its sample count."""
    stacks: Counter = Counter()
    for path in sorted(folder.glob("server-*.txt")):
        for line in path.read_text().splitlines():
            stack, _, count = line.rpartition(" ")
            if stack and count.isdigit():
                stacks[stack] += int(count)
    return stacks


def frame_name(frame: str) -> str:
    """`function (file:line)` without the line, so samples of one function add up."""
    return frame.rsplit(":", 1)[0] + ")" if frame.endswith(")") and ":" in frame else frame


def summary(folder: Path, top: int = 12) -> list[str]:
    """The functions holding the most samples by themselves (leaf), and those of kz-jupyter's
    own code holding the most samples in total (anywhere on the stack)."""
    stacks = read_stacks(folder)
    total = sum(stacks.values())
    if not total:
        return ["no samples (is py-spy installed?)"]
    own, ours = Counter(), Counter()
    for stack, count in stacks.items():
        frames = [frame_name(f) for f in stack.split(";")]
        own[frames[-1]] += count
        for frame in {f for f in frames if any(p in f for p in OUR_CODE)}:
            ours[frame] += count
    lines = [f"{total} samples; by themselves:"]
    lines += [f"  {100 * c / total:5.1f}%  {f}" for f, c in own.most_common(top)]
    lines.append("kz-jupyter's own functions, in total:")
    lines += [f"  {100 * c / total:5.1f}%  {f}" for f, c in ours.most_common(top)]
    return lines
