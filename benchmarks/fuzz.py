"""Fuzz every loader and the CLI's number parsing with thousands of generated inputs.

    .venv/bin/python benchmarks/fuzz.py [--examples 2000]

Runs the properties of `tests/test_generated_inputs.py` (valid inputs load and round-trip;
broken ones are an `EdgewiseError`, exit 2 with one line and no file) with fresh random
cases instead of the suite's fixed 200, and prints one row per property: cases, seconds,
result. Exit 1 if any property found a failing case (hypothesis prints it, shrunk).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
from pathlib import Path

from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=2000, help="cases per property")
    options = parser.parse_args()
    env = {**os.environ, "EDGEWISE_FUZZ_EXAMPLES": str(options.examples),
           "EDGEWISE_FUZZ_RANDOM": "1"}  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "fuzz.xml"
        done = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
             "tests/test_generated_inputs.py", f"--junitxml={report}"],
            cwd=ROOT, env=env, capture_output=True, text=True,
        )  # fmt: skip
        cases = ET.parse(report).getroot().iter("testcase")
        table = Table(title=f"edgewise fuzz: {options.examples:,} generated cases per property")
        for col in ("property", "cases", "seconds", "result"):
            table.add_column(col, justify="left" if col in ("property", "result") else "right")
        failed = 0
        for case in cases:
            problem = case.find("failure")
            if problem is None:
                problem = case.find("error")
            failed += problem is not None
            table.add_row(case.get("name", "?"), f"{options.examples:,}",
                          f"{float(case.get('time', 0)):.1f}",
                          "ok" if problem is None else "FAILED")  # fmt: skip
    Console().print(table)
    if failed:
        print(done.stdout[-6000:])
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
