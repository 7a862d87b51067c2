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


def test_memory_json_csv_plot_and_measure(tmp_path: Path) -> None:
    js, cs, png = tmp_path / "m.json", tmp_path / "m.csv", tmp_path / "m.png"
    args = ["memory", "--module", "tests.models:tiny_cnn", "--measure", "--json", str(js),
            "--csv", str(cs), "--plot", str(png), "--long-lived", "2"]  # fmt: skip
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    data = json.loads(js.read_text())
    assert {"peak_bytes", "peak_op", "timeline", "long_lived", "measured_peak_bytes"} <= set(data)
    assert data["peak_bytes"] == max(row["live"] for row in data["timeline"])
    # the eager prediction is exactly the tensors a real run holds between ops; kernel
    # scratch (here the im2col columns of CPU convolution) comes on top
    assert data["predicted_eager_peak_bytes"] == data["measured_peak_bytes"]
    assert data["measured_with_scratch_bytes"] > data["measured_peak_bytes"] >= data["peak_bytes"]
    assert len(cs.read_text().splitlines()) == len(data["timeline"]) + 1
    assert png.read_bytes()[:4] == b"\x89PNG"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--long-lived", "0"], "'--long-lived': 0 is outside [1, 1,000,000,000]"),
        (["--dtype", "fp64"], "unknown dtype 'fp64'"),
        (["--measure", "--dtype", "int8"], "--measure runs in fp32, fp16, bf16"),
        (["--measure", "--device", "tpu"], "--device must be cpu or cuda"),
    ],
)
def test_memory_bad_input(args: list[str], message: str) -> None:
    done = _cli("memory", "--module", "tests.models:tiny_cnn", *args)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0]


def test_memory_measure_needs_the_model(tmp_path: Path) -> None:
    graph_file = tmp_path / "g.json"
    assert runner.invoke(app, ["capture", "--module", "tests.models:tiny_cnn", "-o",
                               str(graph_file)]).exit_code == 0  # fmt: skip
    done = _cli("memory", str(graph_file), "--measure")
    assert done.returncode == 2
    assert "needs the model itself, not a saved graph" in done.stderr


def test_version_and_short_help() -> None:
    from importlib.metadata import version

    out = CliRunner().invoke(app, ["--version"])
    assert out.exit_code == 0 and out.stdout.strip() == f"edgewise {version('edgewise')}"
    for args in (["-h"], ["profile", "-h"], ["sweep", "-h"]):
        out = CliRunner().invoke(app, args)
        assert out.exit_code == 0 and "Usage: " in out.stdout and "[OPTIONS]" in out.stdout, args


def test_progress_goes_to_stderr_and_quiet_silences_it() -> None:
    from tests.test_hostile import cli

    code, out, err = cli("run", "--module", "tests.models:mlp", "--repeat", "2")
    assert code == 0 and "running tests.models:mlp on cpu" in err and "running" not in out
    code, out, err = cli("run", "--module", "tests.models:mlp", "--repeat", "2", "--quiet")
    assert code == 0 and err == "" and "eager model" in out


def test_start_up_imports_no_torch(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """--help, hw list, hw show, zoo and a cached profile run without importing torch,
    and those that read no spec without pydantic: typer's coercion of values that need
    none is skipped (checked in a fresh interpreter via sys.modules)."""
    import os
    import subprocess
    import sys

    env = {**os.environ, "EDGEWISE_CACHE_DIR": str(tmp_path)}
    warm = [sys.executable, "-m", "edgewise.cli.main", "profile", "resnet18", "--json", "-"]
    subprocess.run(warm, env=env, check=True, capture_output=True)  # fills the cache
    for args in (["--help"], ["hw", "list"], ["hw", "show", "generic-npu"], ["zoo"],
                 ["profile", "resnet18", "--json", "-"]):  # fmt: skip
        probe = (
            "import sys, io, contextlib\n"
            f"sys.argv = ['edgewise', *{args!r}]\n"
            "from edgewise.cli.main import main\n"
            "with contextlib.redirect_stdout(io.StringIO()):\n"
            "    try:\n        main()\n    except SystemExit:\n        pass\n"
            "print(sorted(m for m in sys.modules if m == 'torch' or m.startswith('torch.')))\n"
            "print('pydantic' in sys.modules)"
        )
        run = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True,
                             text=True, check=True)  # fmt: skip
        torch_modules, pydantic = run.stdout.strip().splitlines()[-2:]
        assert torch_modules == "[]", (args, run.stdout[-300:])
        assert pydantic == str(args[0] == "hw"), args  # a spec is a pydantic model
