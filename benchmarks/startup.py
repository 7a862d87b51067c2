"""Whole-process start-up and capture times, side by side with torch's FlopCounterMode.

Run on demand: `.venv/bin/python benchmarks/startup.py [--runs N]`. Each command is
started N times (default 5) in turn with the others, so a drift of the machine's speed
spreads over all of them; the table gives median, min and max wall seconds.

- `--help`, `hw list`, `zoo`: the start-up (targets: at most 0.3 s).
- `profile sd15-unet`, first: a fresh graph cache each run, so it captures.
- `profile sd15-unet`, cached: the graph read back from the cache.
- FlopCounterMode: torch's own counter on the same U-Net, built on the meta device
  (no weights), one forward: import, build and count, as a user would run it.
- Two floors, what the libraries alone cost a process, to read the others against:
  typer, rich, pydantic and yaml imported and an empty table printed (what `hw list`
  cannot go below), and torch plus diffusers' U-Net imported (what neither a capture nor
  FlopCounterMode can go below).
Targets: cached at most 0.35x FlopCounterMode's time, first capture at most 0.9x.

edgewise's own modules are byte-compiled first, as `pip install` does for a wheel and as
any run does where bytecode may be written: with PYTHONDONTWRITEBYTECODE set (as on the
development machines) an editable install would otherwise compile its sources at every
start, 50-200 ms that no installed user pays, while the peer's packages are compiled.
"""

from __future__ import annotations

import argparse
import compileall
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

CLI_FLOOR = """
import pydantic, rich.console, rich.table, typer, yaml
class Spec(pydantic.BaseModel):
    sram_bytes: int
Spec(sram_bytes=1)
rich.console.Console().print(rich.table.Table("preset", "SRAM"))
"""
IMPORT_FLOOR = "import torch\nfrom diffusers import UNet2DConditionModel"


def commands(cache: Path) -> dict[str, tuple[list[str], dict[str, str]]]:
    env = {**os.environ, "EDGEWISE_CACHE_DIR": str(cache)}
    fresh = {**env, "EDGEWISE_NO_CACHE": "1"}
    plugins_off = {**env, "PYDANTIC_DISABLE_PLUGINS": "__all__"}  # as edgewise sets it
    return {
        "edgewise --help": ([*EDGEWISE, "--help"], env),
        "edgewise hw list": ([*EDGEWISE, "hw", "list"], env),
        "edgewise zoo": ([*EDGEWISE, "zoo"], env),
        "floor: typer, rich, pydantic, yaml": ([sys.executable, "-c", CLI_FLOOR], plugins_off),
        "profile sd15-unet (first: capture)": ([*EDGEWISE, "profile", "sd15-unet"], fresh),
        "profile sd15-unet (cached)": ([*EDGEWISE, "profile", "sd15-unet"], env),
        "FlopCounterMode, sd15-unet on meta": ([sys.executable, "-c", FLOP_COUNTER], env),
        "floor: import torch, diffusers": ([sys.executable, "-c", IMPORT_FLOOR], env),
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
    compileall.compile_dir(ROOT / "src" / "edgewise", quiet=1)
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
