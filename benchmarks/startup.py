"""Whole-process start-up and capture times, side by side with torch's FlopCounterMode.

Run on demand: `.venv/bin/python benchmarks/startup.py [--runs N]`. Each command is
started N times (default 5) in turn with the others, so a drift of the machine's speed
spreads over all of them; the table gives median, min and max wall seconds.

- `--help`, `hw list`, `zoo`: the start-up (targets: at most 0.3 s).
- `profile sd15-unet`, first: a fresh graph cache each run, so it captures.
- `profile sd15-unet`, cached: the graph read back from the cache.
- FlopCounterMode: torch's own counter on the same U-Net, built on the meta device
  (no weights), one forward: import, build and count, as a user would run it.
Targets: cached at most 0.35x FlopCounterMode's time, first capture at most 0.9x.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EDGEWISE = [sys.executable, "-m", "edgewise.cli.main"]
FLOP_COUNTER = """
import torch
from diffusers import UNet2DConditionModel
from torch.utils.flop_counter import FlopCounterMode
from edgewise.capture.zoo_configs import SD15_UNET
with torch.device("meta"):
    unet = UNet2DConditionModel(**SD15_UNET).eval()
    args = (torch.empty(1, 4, 64, 64), torch.tensor(10), torch.empty(1, 77, 768))
with torch.no_grad(), FlopCounterMode(display=False) as counter:
    unet(*args)
print(counter.get_total_flops())
"""


def commands(cache: Path) -> dict[str, tuple[list[str], dict[str, str]]]:
    env = {**os.environ, "EDGEWISE_CACHE_DIR": str(cache)}
    fresh = {**env, "EDGEWISE_NO_CACHE": "1"}
    return {
        "edgewise --help": ([*EDGEWISE, "--help"], env),
        "edgewise hw list": ([*EDGEWISE, "hw", "list"], env),
        "edgewise zoo": ([*EDGEWISE, "zoo"], env),
        "profile sd15-unet (first: capture)": ([*EDGEWISE, "profile", "sd15-unet"], fresh),
        "profile sd15-unet (cached)": ([*EDGEWISE, "profile", "sd15-unet"], env),
        "FlopCounterMode, sd15-unet on meta": ([sys.executable, "-c", FLOP_COUNTER], env),
    }


def wall(cmd: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, env=env, cwd=ROOT, check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)  # fmt: skip
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    runs = parser.parse_args().runs
    with tempfile.TemporaryDirectory() as tmp:
        table = commands(Path(tmp))
        wall(*table["profile sd15-unet (cached)"])  # fill the cache; warm the disk cache
        times: dict[str, list[float]] = {name: [] for name in table}
        for _ in range(runs):
            for name, (cmd, env) in table.items():
                times[name].append(wall(cmd, env))
    peer = statistics.median(times["FlopCounterMode, sd15-unet on meta"])
    print(f"{'command':40s} {'median s':>9s} {'min':>7s} {'max':>7s} {'x FlopCounterMode':>18s}")
    for name, values in times.items():
        median = statistics.median(values)
        print(f"{name:40s} {median:9.2f} {min(values):7.2f} {max(values):7.2f} "
              f"{median / peer:18.2f}")  # fmt: skip


if __name__ == "__main__":
    main()
