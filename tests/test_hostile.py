"""Hostile input: every case the issue found, by name, each an exit 2 with one line and
no file left behind; then generated inputs (hypothesis) over every loader."""

from __future__ import annotations

import io
import json
import math
import struct
import sys
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path
from typing import Any

import pytest
import torch

from edgewise.cli.main import main

DEEP = "[" * 5000 + "]" * 5000
LONG_INT = "1" * 5000


def cli(*args: str) -> tuple[int, str, str]:
    """`edgewise ARGS` in this process, through `main` (the one-line error printer)."""
    out, err = io.StringIO(), io.StringIO()
    saved = sys.argv
    sys.argv = ["edgewise", *args]
    code: Any = 0
    try:
        with redirect_stdout(out), redirect_stderr(err):
            main()
    except SystemExit as e:
        code = e.code
    finally:
        sys.argv = saved
    return int(code or 0), out.getvalue(), err.getvalue()


def refused(*args: str, needle: str = "") -> str:
    """The command must fail as a user mistake: exit 2, one line, naming the problem."""
    code, _, err = cli(*args)
    lines = err.strip().splitlines()
    assert code == 2, (code, err)
    assert len(lines) == 1 and lines[0].startswith("edgewise: error: "), err
    assert needle.lower() in lines[0].lower(), lines[0]
    return lines[0]


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A captured U-Net with long-lived skips, a plan for it, a sensitivity file."""
    root = tmp_path_factory.mktemp("hostile")
    graph, plan = root / "unet.json", root / "plan.json"
    assert cli("capture", "--module", "tests.models:tiny_unet", "-o", str(graph))[0] == 0
    code, _, err = cli("plan", str(graph), "--hw", "generic-npu", "--set", "sram_bytes=64KiB",
                       "--long-lived", "3", "-o", str(plan))  # fmt: skip
    assert code == 0, err
    sens = root / "sens.json"
    layers = {"conv_in": {"int8": 0.0, "int4": 0.0}, "time_embedding.linear_1": {"int8": 1e-12}}
    sens.write_text(json.dumps({"metric": "mse", "layers": layers}))
    return {"graph": graph, "plan": plan, "sensitivity": sens, "root": root}


def _graph(files: dict[str, Path]) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(files["graph"].read_text())
    return data


def _plan(files: dict[str, Path]) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(files["plan"].read_text())
    return data


def _write(tmp_path: Path, name: str, content: Any) -> str:
    path = tmp_path / name
    path.write_text(content if isinstance(content, str) else json.dumps(content))
    return str(path)


def _no_leftovers(folder: Path, before: set[str]) -> None:
    assert {p.name for p in folder.iterdir()} == before, "a failed command left files behind"


# --- hangs -----------------------------------------------------------------------------------


def test_shuffled_graph_is_refused_not_looped(files: dict[str, Path], tmp_path: Path) -> None:
    data = _graph(files)
    data["ops"] = data["ops"][::-1][:20] + data["ops"][20:]  # a list position is not an index
    refused("memory", _write(tmp_path, "g.json", data), needle="execution order")


def test_reversed_op_order_is_refused(files: dict[str, Path], tmp_path: Path) -> None:
    data = _graph(files)
    for i, op in enumerate(reversed(data["ops"])):
        op["index"] = i
    data["ops"] = data["ops"][::-1]
    refused("profile", _write(tmp_path, "g.json", data), needle="runs later")


def test_run_repeat_has_an_upper_bound() -> None:
    refused("run", "--module", "tests.models:tiny_cnn", "--repeat", "1000000",
            needle="'--repeat': 1000000 is outside [1, 1,000]")  # fmt: skip


# --- input mistakes that were internal errors -------------------------------------------------


def test_long_integers_are_refused_everywhere(files: dict[str, Path], tmp_path: Path) -> None:
    spec = _write(tmp_path, "spec.json", '{"sram_bytes": ' + LONG_INT + "}")
    refused("simulate", str(files["graph"]), "--hw", spec, needle="digits")
    refused("simulate", str(files["graph"]), "--set", f"sram_bytes={LONG_INT}", needle="digits")
    graph = (
        files["graph"]
        .read_text()
        .replace('"version":1', '"version":1,"meta":{"x":' + LONG_INT + "}", 1)
    )
    refused("profile", _write(tmp_path, "g.json", graph), needle="graph file")
    plan = files["plan"].read_text().replace('"op_count"', '"junk": ' + LONG_INT + ', "op_count"')
    refused("simulate", str(files["graph"]), "--set", "sram_bytes=64KiB", "--plan",
            _write(tmp_path, "p.json", plan), needle="plan")  # fmt: skip
    sens = _write(tmp_path, "s.json", '{"layers": {"enc1": {"int8": ' + LONG_INT + "}}}")
    refused("plan", str(files["graph"]), "--allow", "keep,spill,precision", "--sensitivity",
            sens, "--accuracy-budget", "1", needle="sensitivity file")  # fmt: skip
    refused("run", "--module", "tests.models:tiny_cnn", "--weights",
            _safetensors(tmp_path, '{"w": ' + LONG_INT + "}"), needle="safetensors")  # fmt: skip


def _safetensors(tmp_path: Path, header: str) -> str:
    path = tmp_path / "w.safetensors"
    blob = header.encode()
    path.write_bytes(struct.pack("<Q", len(blob)) + blob)
    return str(path)


def test_deep_nesting_is_refused_everywhere(files: dict[str, Path], tmp_path: Path) -> None:
    refused("simulate", str(files["graph"]), "--hw",
            _write(tmp_path, "spec.json", '{"name": ' + DEEP + "}"), needle="nested")  # fmt: skip
    refused("simulate", str(files["graph"]), "--hw",
            _write(tmp_path, "spec.yaml", "name: " + DEEP), needle="nested")  # fmt: skip
    refused("simulate", str(files["graph"]), "--set", f"sram_bytes={DEEP}", needle="nested")
    graph = (
        files["graph"]
        .read_text()
        .replace('"version":1', '"version":1,"meta":{"x":' + DEEP + "}", 1)
    )
    refused("profile", _write(tmp_path, "g.json", graph), needle="graph file")
    plan = files["plan"].read_text().replace('"op_count"', '"junk": ' + DEEP + ', "op_count"')
    refused("simulate", str(files["graph"]), "--plan", _write(tmp_path, "p.json", plan),
            needle="plan")  # fmt: skip
    sens = _write(tmp_path, "s.json", '{"layers": ' + DEEP + "}")
    refused("plan", str(files["graph"]), "--allow", "keep,spill,precision", "--sensitivity",
            sens, "--accuracy-budget", "1", needle="sensitivity file")  # fmt: skip
    refused("run", "--module", "tests.models:tiny_cnn", "--weights",
            _safetensors(tmp_path, '{"w": ' + DEEP + "}"), needle="nested")  # fmt: skip


def test_non_string_yaml_key(files: dict[str, Path], tmp_path: Path) -> None:
    spec = _write(tmp_path, "spec.yaml", "123: 4 MiB\n")
    refused("simulate", str(files["graph"]), "--hw", spec, needle="key 123")


@pytest.mark.parametrize(
    ("mutate", "needle"),
    [
        (lambda d: [d], "a json list"),
        (lambda d: {**d, "scopes": ["a"]}, "scopes: expected `object`, got `array`"),
        (lambda d: {**d, "ops": [{**d["ops"][0], "inputs": [99999]}, *d["ops"][1:]]},
         "tensor 99999 is not a tensor of the file"),
        (lambda d: {**d, "tensors": [{**d["tensors"][0], "shape": [2**63]}, *d["tensors"][1:]]},
         "tensors[0].shape[0]"),
        (lambda d: {**d, "tensors": [{**d["tensors"][0], "dtype": "float33"}, *d["tensors"][1:]]},
         "tensors[0].dtype"),
        (lambda d: {**d, "tensors": [{**d["tensors"][0], "shape": [-1, 3]}, *d["tensors"][1:]]},
         "tensors[0].shape[0]: expected `int` >= 0"),
        (lambda d: {**d, "tensors": [{**d["tensors"][0], "shape": [10**10, 10**10, 10**10]},
                                     *d["tensors"][1:]]}, "at most 2^48"),
        (lambda d: {**d, "ops": []}, "no ops"),
    ],
    ids=["top-level-list", "scopes-wrong-type", "dangling-tensor-id", "shape-2^63",
         "dtype-float33", "negative-shape", "shape-10^30", "no-ops"],
)  # fmt: skip
def test_graph_files_of_the_wrong_shape(
    files: dict[str, Path], tmp_path: Path, mutate: Any, needle: str
) -> None:
    refused("profile", _write(tmp_path, "g.json", mutate(_graph(files))), needle=needle)


def test_graph_with_infinity_and_cycles(files: dict[str, Path], tmp_path: Path) -> None:
    data = _graph(files)
    data["meta"]["x"] = math.inf  # json.dumps writes Infinity, which strict JSON has not
    refused("profile", _write(tmp_path, "g.json", json.dumps(data)), needle="not valid JSON")
    data = _graph(files)
    first = data["ops"][0]
    later_output = data["ops"][5]["outputs"][0]
    first["inputs"] = [*first["inputs"], later_output]  # op 0 reads what op 5 makes: a cycle
    refused("memory", _write(tmp_path, "g.json", data), needle="runs later")


@pytest.mark.parametrize(
    ("mutate", "needle"),
    [
        (lambda p: p["tensors"][0].update(storage_id=[15]), "tensors[0].storage_id"),
        (lambda p: p.update(weights=None), "weights: input should be"),
        (lambda p: p["tensors"][0].update(gap_end=10**6), "must run forward inside ops"),
        (lambda p: p["tensors"][0].update(gap_start=-3), "greater than or equal to 0"),
        (lambda p: p["tensors"][0].update(storage_id=987654), "not an activation"),
        (lambda p: p["tensors"][0].update(gap_start=p["tensors"][0]["gap_end"] + 1),
         "must run forward"),
        (lambda p: p.update(attention=[{"op": 0, "scope": "x", "mode": "fused",
                                        "scores_bytes": -5.0, "reread_bytes": 0.0}]),
         "greater than or equal to 0"),
        (lambda p: p.update(weights={"no.such.layer": "int8"}), "has no weights"),
        (lambda p: p["schedule"].update(tiled_ops=[10**7]), "tiles an op"),
        (lambda p: p["tensors"][0].update(nbytes=True), "tensors[0].nbytes"),
    ],
    ids=["storage-id-list", "weights-null", "op-index-out-of-range", "negative-op-index",
         "unknown-storage", "gap-start-after-end", "negative-attention-bytes",
         "weights-for-missing-layer", "tiled-op-out-of-range", "bool-for-int"],
)  # fmt: skip
def test_plan_files_with_nonsense(
    files: dict[str, Path], tmp_path: Path, mutate: Any, needle: str
) -> None:
    plan = _plan(files)
    assert plan["tensors"], "the fixture plan moves tensors"
    mutate(plan)
    refused("simulate", str(files["graph"]), "--set", "sram_bytes=64KiB", "--plan",
            _write(tmp_path, "p.json", plan), needle=needle)  # fmt: skip


def test_output_path_that_is_a_folder_leaves_nothing(tmp_path: Path) -> None:
    folder = tmp_path / "adir"
    folder.mkdir()
    refused("capture", "--module", "tests.models:tiny_cnn", "-o", str(folder), needle="folder")
    _no_leftovers(tmp_path, {"adir"})
    assert list(folder.iterdir()) == []


def test_unwritable_and_empty_output_paths(tmp_path: Path) -> None:
    refused("profile", "--module", "tests.models:tiny_cnn", "--json", "", needle="empty")
    refused("profile", "--module", "tests.models:tiny_cnn", "--json",
            str(tmp_path / "no" / "x.json"), needle="does not exist")  # fmt: skip
    refused("profile", "--module", "tests.models:tiny_cnn", "--json", "/proc/x.json",
            needle="x.json")  # fmt: skip


def test_user_model_errors_are_the_users() -> None:
    for command in (("sensitivity", "--calib", "1"), ("memory", "--measure")):
        refused(*command, "--module", "tests.models:fails_when_real", needle="boom")


def test_factory_kwargs_not_a_dict() -> None:
    refused("profile", "--module", "tests.models:kwargs_not_a_dict", needle="must be a dict")


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_measure_on_cuda_without_cuda() -> None:
    refused("memory", "--measure", "--device", "cuda", "--module", "tests.models:tiny_cnn",
            needle="no CUDA GPU")  # fmt: skip


def test_tile_sram_out_of_range() -> None:
    refused("memory", "--module", "tests.models:tiny_cnn", "--tile-sram",
            "99999999999999999999", needle="1 TiB")  # fmt: skip


# --- nonsense that exited 0 ------------------------------------------------------------------


def test_spec_fields_given_as_booleans(files: dict[str, Path]) -> None:
    refused("simulate", str(files["graph"]), "--set", "sram_bytes=true", needle="not true")
    refused("hw", "show", "generic-npu", "--set", "macs_per_cycle.int8=false", needle="not false")


@pytest.mark.parametrize("error", ["-0.5", "NaN", "Infinity", "1e999", "true", '"small"'])
def test_sensitivity_errors_must_be_finite_and_not_negative(
    files: dict[str, Path], tmp_path: Path, error: str
) -> None:
    sens = _write(tmp_path, "s.json", '{"layers": {"enc1": {"int8": ' + error + "}}}")
    refused("plan", str(files["graph"]), "--allow", "keep,spill,precision", "--sensitivity",
            sens, "--accuracy-budget", "1", needle="sensitivity file")  # fmt: skip


def test_zero_accuracy_budget_takes_only_lossless_layers(files: dict[str, Path]) -> None:
    """Budget 0 once quantized layers whose errors were tiny but not 0 (solver tolerance)."""
    code, out, err = cli("plan", str(files["graph"]), "--allow", "keep,spill,precision",
                         "--objective", "dram", "--sensitivity", str(files["sensitivity"]),
                         "--accuracy-budget", "0", "--json", "-")  # fmt: skip
    assert code == 0, err
    assert json.loads(out)["plan"]["weights"] == {"conv_in": "int4"}


@pytest.mark.parametrize("budget", ["nan", "-1", "inf"])
def test_accuracy_budget_bounds(files: dict[str, Path], budget: str) -> None:
    """(A zero budget is valid: only layers measured lossless may change.)"""
    refused("plan", str(files["graph"]), "--allow", "keep,spill,precision", "--sensitivity",
            str(files["sensitivity"]), "--accuracy-budget", budget,
            needle="--accuracy-budget")  # fmt: skip


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (("profile", "--rows", "-1"), "'--rows': -1 is outside [0, 1,000,000]"),
        (("simulate", "--depth", "-1"), "'--depth': -1 is outside [0, 64]"),
        (("plan", "--time-limit", "nan"), "'--time-limit': nan is outside"),
        (("profile", "--rows", "abc"), "'--rows'"),
        (("profile", "--json", ""), "empty file name"),
        (("sensitivity", "--calib", "0"), "'--calib': 0 is outside"),
        (("profile", "--batch", "0"), "'--batch': 0 is outside"),
    ],
    ids=["rows-negative", "depth-negative", "time-limit-nan", "rows-not-a-number",
         "json-empty", "calib-zero", "batch-zero"],
)  # fmt: skip
def test_number_and_path_options(args: tuple[str, ...], needle: str) -> None:
    refused(*args, "--module", "tests.models:tiny_cnn", needle=needle)


# --- strict JSON, whole outputs, one line ----------------------------------------------------


def _strict(text: str) -> Any:
    def refuse(constant: str) -> None:
        raise AssertionError(f"{constant} in JSON output")

    return json.loads(text, parse_constant=refuse)


def test_json_output_is_strict_even_for_extreme_specs(files: dict[str, Path]) -> None:
    code, out, err = cli("simulate", str(files["graph"]), "--set", "dram_bytes=0",
                         "--set", "dram_bandwidth_bytes_per_s=0", "--set",
                         "dram_energy_pj_per_byte=0", "--set", "sram_bytes=1KiB",
                         "--json", "-")  # fmt: skip
    assert code in (0, 2), err
    if code == 0:
        data = _strict(out)
        for path in data.get("non_finite", []):
            assert ": " in path  # each null says where and what it was


def test_failed_command_writes_none_of_its_files(tmp_path: Path) -> None:
    out = tmp_path / "sim.json"
    plot = tmp_path / "sim.png"
    refused("simulate", "--module", "tests.models:no_ops", "--json", str(out), "--plot",
            str(plot), needle="ran no ops")  # fmt: skip
    _no_leftovers(tmp_path, set())


def test_sensitivity_memory_guard_before_weights() -> None:
    refused("sensitivity", "--module", "tests.models:huge_on_meta", needle="GiB is available")


def test_usage_errors_and_control_characters_are_one_line(files: dict[str, Path]) -> None:
    line = refused("simulate", str(files["graph"]), "--set", "sram\nbytes=1", needle="control")
    assert "\n" not in line
    refused("profile", "--nonsense-option", needle="no such option")
    refused("nosuchcommand", needle="no such command")


def test_strict_json_writer_names_what_it_nulled() -> None:
    from edgewise.ir.files import strict_json

    data = _strict(strict_json({"a": math.inf, "b": [1.0, math.nan]}))
    assert data == {"a": None, "b": [1.0, None], "non_finite": ["a: inf", "b[1]: nan"]}


@pytest.mark.parametrize(
    "extra",
    [(), ("--accuracy-budget", "1")],
    ids=["nothing", "budget-without-sensitivity"],
)
def test_precision_is_refused_without_sensitivity_or_floors(
    files: dict[str, Path], extra: tuple[str, ...]
) -> None:
    """Without a measured error and a budget, or floors, nothing bounds the error: int2."""
    refused("plan", str(files["graph"]), "--allow", "keep,spill,precision", *extra,
            needle="--allow precision needs --sensitivity FILE with --accuracy-budget")  # fmt: skip


def test_a_quantizing_plan_is_shown_and_recorded_wherever_it_is_used(
    files: dict[str, Path], tmp_path: Path
) -> None:
    """plan prints the precision decisions; simulate --plan titles the run with them and
    records the plan in its JSON."""
    plan = tmp_path / "q.json"
    code, out, err = cli("plan", str(files["graph"]), "--allow", "keep,spill,precision",
                         "--objective", "dram", "--sensitivity", str(files["sensitivity"]),
                         "--accuracy-budget", "0", "-o", str(plan))  # fmt: skip
    assert code == 0, err
    assert "weight precision decisions" in out and "sensitivity error spent: 0" in out
    code, out, err = cli("simulate", str(files["graph"]), "--plan", str(plan))
    assert code == 0, err
    assert "plan:" in out and "1 layers int4" in out
    code, out, err = cli("simulate", str(files["graph"]), "--plan", str(plan), "--json", "-")
    assert code == 0, err
    recorded = json.loads(out)["plan"]
    assert recorded["file"] == str(plan) and recorded["weights"] == {"int4": 1}
    assert recorded["objective"] == "dram"
