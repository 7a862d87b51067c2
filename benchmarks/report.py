"""`edgewise report` against `edgewise simulate` alone, whole process, and the file's size.

    .venv/bin/python benchmarks/report.py [--model sd15-unet] [--repeat 3]

The target (issue 14): the report of sd15-unet in at most 2x the time of `simulate`, the
HTML at most 10 MB. Each command runs `--repeat` times, alternating, in a fresh process;
the table gives the median and the min-max spread.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

EDGEWISE = [sys.executable, "-m", "edgewise.cli.main"]


def timed(args: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run([*EDGEWISE, *args], check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="sd15-unet")
    parser.add_argument("--hw", default="snapdragon-8gen3")
    parser.add_argument("--repeat", type=int, default=3)
    a = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "report.html"
        runs: dict[str, list[float]] = {"simulate": [], "report": []}
        for _ in range(a.repeat):
            runs["simulate"].append(timed(["simulate", a.model, "--hw", a.hw]))
            runs["report"].append(timed(["report", a.model, "--hw", a.hw, "-o", str(out)]))
        size = out.stat().st_size
    med = {k: statistics.median(v) for k, v in runs.items()}
    print(f"| command ({a.model} on {a.hw}) | median s | min-max s |")
    print("|---|---:|---:|")
    for name, values in runs.items():
        print(f"| {name} | {med[name]:.2f} | {min(values):.2f}-{max(values):.2f} |")
    ratio = med["report"] / med["simulate"]
    print(f"\nreport / simulate: {ratio:.2f}x (target at most 2x); HTML {size / 1e6:.2f} MB "
          "(target at most 10 MB)")  # fmt: skip


if __name__ == "__main__":
    main()
