"""The Python API returns the numbers the CLI's --json writes, typed, with short reprs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import edgewise
from tests.test_hostile import cli


def _cli_json(*args: str) -> dict:  # type: ignore[type-arg]
    code, out, err = cli(*args, "--json", "-")
    assert code == 0, err
    return json.loads(out)


def _same(api: dict, cli_: dict) -> None:  # type: ignore[type-arg]
    assert json.loads(json.dumps(api, default=str)) == cli_


def test_profile_memory_simulate_match_the_cli() -> None:
    prof = edgewise.profile("resnet18", by="block", depth=1)
    _same(prof.to_dict(), _cli_json("profile", "resnet18", "--by", "block", "--depth", "1"))
    assert repr(prof) == "<edgewise profile of resnet18: 11.7 M params, 1.81 GMACs, 2 blocks>"
    assert prof.totals.macs == 1_814_073_344
    mem = edgewise.memory("resnet18", tile_sram="128KiB")
    _same(mem.to_dict(), _cli_json("memory", "resnet18", "--tile-sram", "128KiB"))
    assert repr(mem).startswith("<edgewise memory of resnet18: peak ")
    sim = edgewise.simulate("resnet18", hw="snapdragon-8gen3", precision="int8")
    _same(sim.to_dict(), _cli_json("simulate", "resnet18", "--hw", "snapdragon-8gen3",
                                   "--precision", "int8"))  # fmt: skip
    assert sim.totals.latency_s == sim.to_dict()["totals"]["latency_s"] > 0
    assert len(repr(sim)) < 120


def test_plan_saves_a_file_simulate_reads(tmp_path: Path) -> None:
    best = edgewise.plan("resnet18", hw="generic-npu", set=["sram_bytes=256KiB"])
    cli_plan = _cli_json("plan", "resnet18", "--hw", "generic-npu", "--set", "sram_bytes=256KiB")
    assert best.to_dict()["totals"] == cli_plan["totals"]
    best.save(tmp_path / "plan.json")
    planned = edgewise.simulate("resnet18", hw="generic-npu", set=["sram_bytes=256KiB"],
                                plan=tmp_path / "plan.json")  # fmt: skip
    assert planned.totals.latency_s == pytest.approx(best.to_dict()["totals"]["plan"]["latency_s"])
    assert [r["alternative"] for r in best.rows][-1] == "plan"


def test_compare_and_pandas() -> None:
    both = edgewise.compare("resnet18", hw=["snapdragon-8gen3", "generic-npu"])
    _same(both.to_dict(), _cli_json("compare", "resnet18", "--hw", "snapdragon-8gen3", "--hw",
                                    "generic-npu"))  # fmt: skip
    pandas = pytest.importorskip("pandas")
    frame = edgewise.simulate("resnet18", hw="snapdragon-8gen3").to_pandas()
    assert isinstance(frame, pandas.DataFrame) and {"name", "latency_s"} <= set(frame.columns)
    assert len(frame) == 69


def test_a_graph_passes_through_and_docs_are_found(tmp_path: Path) -> None:
    graph = edgewise.load("resnet18")
    assert repr(graph) == "<Graph resnet18: 90 ops, 254 tensors, 11,689,512 parameters>"
    assert edgewise.profile(graph).totals == edgewise.profile("resnet18").totals
    assert (Path(edgewise.docs_path()) / "hardware.md").is_file()
    with pytest.raises(edgewise.EdgewiseError, match="by must be"):
        edgewise.simulate(graph, by="row")


def test_run_measures_the_real_model_as_the_cli_does() -> None:
    """Peaks and fidelity are deterministic: equal to the CLI's JSON; times are not."""
    result = edgewise.run(module="tests.models:tiny_cnn", repeat=2)
    cli_run = _cli_json("run", "--module", "tests.models:tiny_cnn", "--repeat", "2")
    for key in ("measured_peak_bytes", "predicted_peak_bytes", "eager_peak_bytes",
                "replay_bit_exact", "bit_exact", "plan"):  # fmt: skip
        assert result.to_dict()[key] == cli_run[key], key
    assert repr(result).startswith("<edgewise run of tests.models:tiny_cnn: peak ")
    assert len(result.to_dict()["run_s"]["eager"]) == 2


def test_report_and_sweep(tmp_path: Path) -> None:
    written = edgewise.report("resnet18", output=tmp_path / "r.html", hw="snapdragon-8gen3")
    assert (tmp_path / "r.html").read_text().startswith("<!DOCTYPE html>")
    assert written.to_dict()["bytes"] == (tmp_path / "r.html").stat().st_size
    space = {"models": ["resnet18"], "precision": ["int8"],
             "spec": {"sram_bytes": ["256KiB", "8MiB", "log", 3],
                      "dram_bandwidth_bytes_per_s": {"values": ["8GB/s", "64GB/s"]}}}  # fmt: skip
    done = edgewise.sweep(space, tmp_path / "s.duckdb", workers=1)
    assert (done.result.points, done.result.evaluated) == (6, 6)
    assert edgewise.sweep(space, tmp_path / "s.duckdb", workers=1).result.skipped == 6
    with pytest.raises(edgewise.EdgewiseError, match="--workers must be from 1"):
        edgewise.sweep(space, tmp_path / "s.duckdb", workers=0)
    front = done.pareto(["latency_s", "energy_j"])
    code, out, err = cli("sweep", "pareto", str(tmp_path / "s.duckdb"), "--json", "-")
    assert code == 0, err
    _same({"front": front}, {"front": json.loads(out)["front"]})
    # every point equals simulate at its spec
    fastest = done.query("SELECT * FROM points ORDER BY latency_s LIMIT 1")[0]
    sim = edgewise.simulate("resnet18", precision="int8", set=[
        f"sram_bytes={fastest['sram_bytes']}",
        f"dram_bandwidth_bytes_per_s={fastest['dram_bandwidth_bytes_per_s']}"])  # fmt: skip
    assert fastest["latency_s"] == pytest.approx(sim.totals.latency_s, rel=1e-9)
    pytest.importorskip("pandas")
    assert len(done.to_pandas()) == 6


def test_run_takes_a_language_model_phase() -> None:
    """A decode step run for real (`test_llm` runs the same through the CLI); a tied head
    stays tied when the meta model is made real, so its replay is bit-exact too."""
    result = edgewise.run("smolvlm-256m", phase="decode", context=32, repeat=1)
    assert result.to_dict()["replay_bit_exact"] is True
    assert result.to_dict()["measured_peak_bytes"] == result.to_dict()["predicted_peak_bytes"]
    tied = edgewise.run(module="tests.models:tied_lm", repeat=1)
    assert tied.to_dict()["replay_bit_exact"] is True


def test_commands_named_like_packages_still_lead_to_their_modules() -> None:
    """`edgewise.simulate` is the command and `edgewise.simulate.batch` the module: both a
    notebook's `import edgewise.simulate.batch as b` and `help(edgewise.simulate)` work."""
    import inspect

    import edgewise.simulate.batch as batch
    import edgewise.sweep.query as query

    assert batch.__name__ == "edgewise.simulate.batch" and query.__name__ == "edgewise.sweep.query"
    assert edgewise.report.html_report.__name__ == "edgewise.report.html_report"
    assert "hw" in inspect.signature(edgewise.simulate).parameters
    assert edgewise.plan.__doc__.startswith("`edgewise plan`")
    assert list(inspect.signature(edgewise.capture).parameters)[:2] == ["model", "args"]
