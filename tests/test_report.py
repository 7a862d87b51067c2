"""Reports: the Perfetto trace, the HTML report (in a real browser), compare, the charts,
and user strings escaped wherever they are rendered."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from edgewise.cli.main import app
from edgewise.errors import EdgewiseError

UNET = ["--module", "tests.models:tiny_unet"]
SMALL_SRAM = ["--hw", "generic-npu", "--set", "sram_bytes=96KiB"]


def _invoke(*args: str) -> str:
    out = CliRunner().invoke(app, list(args))
    assert out.exit_code == 0, (out.output, out.exception)
    return out.stdout


def _check_trace(path: Path) -> dict:  # type: ignore[type-arg]
    """The Trace Event Format's rules: required fields by phase, microsecond numbers,
    per track complete events in time order and never overlapping."""
    data = json.loads(path.read_text())
    assert set(data) >= {"traceEvents", "displayTimeUnit"}
    spans: dict[int, list[tuple[float, float]]] = {}
    for e in data["traceEvents"]:
        assert {"ph", "pid", "name"} <= set(e), e
        assert e["ph"] in ("X", "M", "C", "i"), e
        if e["ph"] != "M":
            assert isinstance(e["ts"], int | float) and e["ts"] >= 0, e
        if e["ph"] == "X":
            assert isinstance(e["dur"], int | float) and e["dur"] > 0 and "tid" in e, e
            spans.setdefault(e["tid"], []).append((e["ts"], e["dur"]))
        if e["ph"] == "C":
            assert all(isinstance(v, int | float) for v in e["args"].values()), e
    for track in spans.values():
        starts = [ts for ts, _ in track]
        assert starts == sorted(starts)
        ends = [ts + dur for ts, dur in track]
        assert all(
            end <= nxt * (1 + 1e-12) + 1e-9 for end, nxt in zip(ends[:-1], starts[1:], strict=True)
        )
    data["busy_us"] = {tid: sum(d for _, d in track) for tid, track in spans.items()}
    return data


def test_the_trace_is_the_simulated_schedule(tmp_path: Path) -> None:
    """Each track's busy time is the simulator's time for that resource, in microseconds;
    the plan's trace marks its spills and recomputations."""
    from edgewise.capture.source import graph_from_module
    from edgewise.hardware.spec import load_spec
    from edgewise.simulate.simulator import simulate
    from edgewise.simulate.workload import op_workload

    trace = tmp_path / "t.json"
    _invoke("simulate", *UNET, *SMALL_SRAM, "--trace", str(trace))
    data = _check_trace(trace)
    graph = graph_from_module("tests.models:tiny_unet")
    spec = load_spec("generic-npu", ["sram_bytes=96KiB"])
    sim = simulate(op_workload(graph, "int8", "int8"), spec, "int8")
    busy = data["busy_us"]
    assert busy[1] == pytest.approx(sim.totals.latency_s * 1e6, rel=1e-9)
    assert busy[2] == pytest.approx(float(sim.mac_s.sum()) * 1e6, rel=1e-9)
    assert busy[3] == pytest.approx(float(sim.vector_s.sum()) * 1e6, rel=1e-9)
    assert busy[4] + busy.get(5, 0.0) == pytest.approx(float(sim.dram_s.sum()) * 1e6, rel=1e-9)
    ops = [e for e in data["traceEvents"] if e["ph"] == "X" and e["tid"] == 1]
    assert len(ops) == int(np.count_nonzero(sim.latency_s))
    assert {"macs", "dram_bytes", "bound"} <= set(ops[0]["args"])
    counters = {e["name"] for e in data["traceEvents"] if e["ph"] == "C"}
    assert counters == {"SRAM occupancy", "DRAM bandwidth"}

    planned = tmp_path / "p.json"
    _invoke("plan", *UNET, *SMALL_SRAM, "--objective", "dram", "--trace", str(planned))
    marks = {e["name"] for e in _check_trace(planned)["traceEvents"] if e["ph"] == "i"}
    assert marks & {"spill", "recompute"}


def test_trace_refuses_a_pipeline() -> None:
    out = CliRunner().invoke(app, ["simulate", "sd15", "--trace", "/tmp/x.json"])
    assert isinstance(out.exception, EdgewiseError)


CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")


@pytest.fixture(scope="module")
def browser():  # type: ignore[no-untyped-def]
    """Headless Chromium (Debian's package, which `.ci/run` installs), offline: the network
    emulated as disconnected, and every request the page makes logged."""
    import os

    if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
        if os.environ.get("CI"):
            pytest.fail("CI must install chromium and chromium-driver (see .ci/run)")
        pytest.skip("no chromium here: apt-get install chromium chromium-driver")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    driver.execute_cdp_cmd("Network.enable", {})
    driver.execute_cdp_cmd("Network.emulateNetworkConditions", {
        "offline": True, "latency": 0, "downloadThroughput": 0, "uploadThroughput": 0})  # fmt: skip
    yield driver
    driver.quit()


def _open(driver, path: Path) -> dict:  # type: ignore[no-untyped-def, type-arg]
    """Load the report; what rendered, what the console said, what was requested."""
    driver.get_log("browser"), driver.get_log("performance")  # drop what came before
    driver.get(path.resolve().as_uri())
    plots = driver.execute_script(
        "return Array.from(document.querySelectorAll('.js-plotly-plot')).map(p => ["
        "p.querySelectorAll('svg.main-svg').length, p.data.length,"
        "p.querySelectorAll('.trace').length, p.querySelectorAll('.trace path').length])"
    )
    requests = {
        json.loads(e["message"])["message"]["params"]["request"]["url"]
        for e in driver.get_log("performance")
        if json.loads(e["message"])["message"]["method"] == "Network.requestWillBeSent"
    }
    errors = [e for e in driver.get_log("browser") if e["level"] in ("SEVERE", "WARNING")]
    return {"plots": plots, "requests": requests, "errors": errors}


def _hover(driver, plot: int, curve: int, point: int) -> str:  # type: ignore[no-untyped-def]
    return str(driver.execute_script(
        "const gd = document.querySelectorAll('.js-plotly-plot')[arguments[0]];"
        "Plotly.Fx.hover(gd, [{curveNumber: arguments[1], pointNumber: arguments[2]}]);"
        "return gd.querySelector('.hoverlayer').textContent;", plot, curve, point))  # fmt: skip


def test_the_report_opens_offline_in_a_real_browser(browser, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Every chart rendered (plotly's SVG present, traces drawn), no console error or
    warning, no request but the file itself, hover data present."""
    out = tmp_path / "r.html"
    _invoke("report", *UNET, *SMALL_SRAM, "-o", str(out))
    assert out.stat().st_size < 10 * 2**20
    page = _open(browser, out)
    assert page["errors"] == [] and page["requests"] == {out.resolve().as_uri()}
    assert len(page["plots"]) == 5  # layers, memory, latency, roofline, energy
    for svgs, traces, drawn, marks in page["plots"]:  # every trace drawn, with marks in it
        assert svgs >= 1 and traces >= 1 and drawn == traces and marks > 0
    text = _hover(browser, 0, 0, 0)
    assert "time_proj" in text or "time_embedding" in text or "conv_in" in text, text
    assert "parameters" in text and "MACs" in text


def test_a_hostile_name_is_text_everywhere(browser, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """A layer named `<script>alert(1)</script>`: shown as text in tables and hover, never
    run; `[bold]x:factory:` is printed as it is by the terminal renderer too."""
    from selenium.common.exceptions import NoAlertPresentException

    from tests.models import HOSTILE

    out = tmp_path / "h.html"
    _invoke("report", "--module", "tests.models:hostile", "-o", str(out))
    assert HOSTILE not in out.read_text()
    page = _open(browser, out)
    with pytest.raises(NoAlertPresentException):
        browser.switch_to.alert.text  # noqa: B018 - the alert would be the script running
    assert page["errors"] == []
    assert HOSTILE in browser.execute_script("return document.body.innerText")
    assert HOSTILE in _hover(browser, 0, 0, 0)
    console = _invoke("profile", "--module", "tests.models:hostile")
    assert "[bold]x:factory:" in console and "\N{FACTORY}" not in console


def test_compare_two_specs_two_plans_two_models(browser, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Each side's totals are `simulate`'s; the stages sum to them; B vs A is B / A - 1;
    the chart and the HTML report are written, the report renders offline."""
    graph = tmp_path / "unet.json"
    _invoke("capture", *UNET, "-o", str(graph))
    cnn = tmp_path / "cnn.json"
    _invoke("capture", "--module", "tests.models:tiny_cnn", "-o", str(cnn))
    chart, report = tmp_path / "c.svg", tmp_path / "c.html"
    args = ["--hw", "generic-npu", "--hw", "edge-tpu", "--plot", str(chart), "--html", str(report)]
    data = json.loads(_invoke("compare", str(graph), *args, "--json", "-"))
    for side, hw in (("a", "generic-npu"), ("b", "edge-tpu")):
        alone = json.loads(_invoke("simulate", str(graph), "--hw", hw, "--json", "-"))["totals"]
        assert data["totals"]["latency"][side] == pytest.approx(alone["latency_s"], rel=1e-12)
        assert data["totals"]["energy"][side] == pytest.approx(alone["energy_j"], rel=1e-12)
        stages = sum(r[f"{side}_latency_s"] or 0.0 for r in data["stages"])
        assert stages == pytest.approx(alone["latency_s"], rel=1e-9)
    t = data["totals"]["latency"]
    assert t["delta"] == pytest.approx(t["b"] / t["a"] - 1)
    assert chart.read_text().startswith("<?xml") and report.stat().st_size > 0
    page = _open(browser, report)
    assert page["errors"] == [] and len(page["plots"]) == 1

    plans = []
    for objective in ("latency", "dram"):
        plans.append(tmp_path / f"{objective}.json")
        _invoke("plan", str(graph), *SMALL_SRAM, "--objective", objective, "-o", str(plans[-1]))
    data = json.loads(_invoke("compare", str(graph), *SMALL_SRAM, "--plan", str(plans[0]),
                              "--plan", str(plans[1]), "--json", "-"))  # fmt: skip
    assert data["kind"] == "plans"
    assert data["totals"]["DRAM traffic"]["b"] <= data["totals"]["DRAM traffic"]["a"]
    data = json.loads(_invoke("compare", str(graph), str(cnn), "--json", "-"))
    assert data["kind"] == "models" and data["a"]["model"] != data["b"]["model"]
    for bad in ([str(graph)], [str(graph), "--plan", str(plans[0])],
                [str(graph), str(cnn), "--hw", "generic-npu", "--hw", "edge-tpu"]):  # fmt: skip
        out = CliRunner().invoke(app, ["compare", *bad])
        assert isinstance(out.exception, EdgewiseError) and "compare takes" in str(out.exception)


def test_a_pipeline_report_has_a_section_per_phase(tmp_path: Path) -> None:
    out = tmp_path / "sd15.html"
    _invoke("report", "sd15", "--hw", "snapdragon-8gen3", "--steps", "4", "-o", str(out))
    text = out.read_text()
    for phase in ("text-encoder", "unet", "vae-decoder"):
        assert f"Phase {phase}: first call" in text, phase
    assert "per image" in text and out.stat().st_size < 10 * 2**20


def test_every_plot_writes_svg_and_pdf(tmp_path: Path) -> None:
    """--plot takes .png, .svg or .pdf on every command, by the suffix; others refused."""
    for command, suffix in (("profile", "pdf"), ("memory", "svg"), ("simulate", "pdf"),
                            ("plan", "svg")):  # fmt: skip
        out = tmp_path / f"{command}.{suffix}"
        _invoke(command, *UNET, "--plot", str(out))
        head = out.read_bytes()[:5]
        assert head == (b"%PDF-" if suffix == "pdf" else b"<?xml"), (command, head)
    bad = CliRunner().invoke(app, ["profile", *UNET, "--plot", str(tmp_path / "x.jpg")])
    assert isinstance(bad.exception, EdgewiseError) and ".svg" in str(bad.exception)


def test_the_memory_chart_has_no_empty_skip_panel(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Without long-lived tensors the chart is one panel; with them, two, each skip named;
    the stacked series are exactly what the peak counts."""
    from edgewise.analysis.memory import memory_timeline
    from edgewise.capture.source import graph_from_module
    from edgewise.report import memory_report

    figures = []
    monkeypatch.setattr(memory_report, "save_figure", lambda fig, path: figures.append(fig))
    for factory in ("mlp", "tiny_unet"):
        graph = graph_from_module(f"tests.models:{factory}")
        tl = memory_timeline(graph)
        memory_report.plot_memory(graph, tl, tmp_path / "m.png")
        fig = figures[-1]
        assert len(fig.axes) == (2 if tl.long_lived_table else 1), factory
        stacked = fig.axes[0].collections  # the stackplot's layers
        top = max(float(np.asarray(c.get_paths()[0].vertices)[:, 1].max()) for c in stacked)
        assert top == tl.peak_bytes  # the stack's top is the peak, in bytes
        labels = [fig.axes[0].yaxis.get_major_formatter()(v) for v in (0, 1536, 3 * 2**20)]
        assert labels == ["0 B", "1.5 KiB", "3 MiB"]  # ticks through the formatter
        if tl.long_lived_table:
            names = {t.get_text().strip() for t in fig.axes[1].texts}
            assert any(r.producer_scope in n for r in tl.long_lived_table for n in names)
