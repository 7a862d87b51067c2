"""The `edgewise` command: outputs, files, and one-line errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from edgewise.cli.main import app

ROOT = Path(__file__).resolve().parents[1]
runner = CliRunner()


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "edgewise.cli.main", *args],
        capture_output=True, text=True, cwd=ROOT, timeout=300,
    )  # fmt: skip


def test_profile_json_csv_and_plot_from_module(tmp_path: Path) -> None:
    js, cs, png = tmp_path / "p.json", tmp_path / "p.csv", tmp_path / "p.png"
    result = runner.invoke(app, ["profile", "--module", "tests.models:tiny_cnn", "--json", str(js),
                                 "--csv", str(cs), "--plot", str(png)])  # fmt: skip
    assert result.exit_code == 0, result.output
    data = json.loads(js.read_text())
    assert {"model", "convention", "totals", "rows", "uncounted"} <= set(data)
    assert {"params", "macs", "vector_ops", "flops", "activation_bytes"} <= set(data["totals"])
    # TinyCNN: stem 3->8 conv 3x3 (+bias) on 16x16, body 8->8 3x3 no bias, head 8->10
    stem = 16 * 16 * 8 * 3 * 9
    body = 16 * 16 * 8 * 8 * 9
    head = 8 * 10
    assert data["totals"]["macs"] == stem + body + head
    assert data["totals"]["params"] == (8 * 3 * 9 + 8) + (8 + 8) + 8 * 8 * 9 + (8 * 10 + 10)
    assert data["totals"]["flops"] == 2 * data["totals"]["macs"] + data["totals"]["vector_ops"]
    assert sum(r["macs"] for r in data["rows"]) == data["totals"]["macs"]
    lines = cs.read_text().splitlines()
    assert lines[0].startswith("name,") and len(lines) == len(data["rows"]) + 2
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_capture_then_profile_the_saved_graph(tmp_path: Path) -> None:
    graph_file = tmp_path / "g.json"
    result = runner.invoke(app, ["capture", "--module", "tests.models:tiny_cnn_with_kwargs", "-o",
                                 str(graph_file)])  # fmt: skip
    assert result.exit_code == 0, result.output
    result = runner.invoke(app, ["profile", str(graph_file), "--by", "block", "--depth", "1",
                                 "--json", "-"])  # fmt: skip
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["by"] == "block"
    assert [r["name"] for r in data["rows"]] == ["stem", "bn", "act", "body", "pool", "", "head"]


def test_conventions_differ_as_documented() -> None:
    totals = {}
    for conv in ("default", "torch", "fvcore", "thop"):
        result = runner.invoke(app, ["profile", "--module", "tests.models:tiny_cnn",
                                     "--convention", conv, "--json", "-"])  # fmt: skip
        assert result.exit_code == 0, result.output
        totals[conv] = json.loads(result.stdout)["totals"]
    macs = totals["default"]["macs"]
    assert totals["torch"]["flops"] == 2 * macs  # FlopCounterMode: 2 per MAC, nothing else
    assert totals["torch"]["vector_ops"] == 0
    # fvcore: 1 per MAC + BN eval 2 per element (affine) + adaptive pool 1 per input element
    assert totals["fvcore"]["flops"] == macs + 2 * 8 * 16 * 16 + 8 * 16 * 16
    # thop: 1 per MAC + BN 4 per element (affine) + adaptive pool (256 + 1) per output
    assert totals["thop"]["flops"] == macs + 4 * 8 * 16 * 16 + (256 + 1) * 8


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["profile", "no-such-model"], "unknown model 'no-such-model': known models are"),
        (["profile", "--module", "nowhere.at_all:f"], "cannot import 'nowhere.at_all'"),
        (["profile", "--module", "tests.models:not_a_model"], "must return (model, example_args)"),
        (["profile", "--module", "tests.models:broken"], "module 'inner.1'"),
        (
            ["profile", "--module", "tests.models:tiny_cnn", "--convention", "x"],
            "unknown convention 'x'",
        ),
        (
            ["profile", "--module", "tests.models:tiny_cnn", "--by", "row"],
            "--by must be op, layer or block",
        ),
    ],
)
def test_bad_input_is_one_line_nonzero(args: list[str], message: str) -> None:
    done = _cli(*args)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in done.stderr
    assert message in lines[0]


def test_debug_shows_the_traceback() -> None:
    done = _cli("--debug", "profile", "--module", "tests.models:broken")
    assert done.returncode != 0
    assert "Traceback" in done.stderr


def test_no_half_written_output_on_failure(tmp_path: Path) -> None:
    out = tmp_path / "g.json"
    done = _cli("capture", "--module", "tests.models:broken", "-o", str(out))
    assert done.returncode == 2
    assert list(tmp_path.iterdir()) == []
