"""The simulator against real chips: per-model latencies vendors publish for their NPUs.

A published table is a CSV with the columns of the shipped `data/edge_latency.csv`
(Qualcomm AI Hub on Galaxy S24 / S25, Hailo-8, RK3588, Coral Edge TPU; its `.md` beside
it explains every column). Each row is mapped to a zoo model at the vendor's input, a
preset (with overrides where the vendor measured a part of the chip) and a precision;
a row whose model edgewise cannot build is kept, as skipped, with the reason. Then:

    ratio = predicted / published latency (batch 1; Hailo and RKNN publish FPS, taken as
            1 / FPS, which for Hailo's pipelined chip is throughput, not one frame's latency)
    error = |ratio - 1|; median error, worst ratio max(ratio, 1 / ratio), and Spearman's
            rank correlation (Pearson's r of the ranks, ties given their mean rank)

per preset and per source table. Nothing here is fitted: the presets' fitted figures come
from `benchmarks/fit_presets.py`, which calls the same `predict`.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np

from edgewise.errors import EdgewiseError
from edgewise.hardware.spec import HardwareSpec, compute_precision, load_spec, parse_precision
from edgewise.ir.files import read_text, shown
from edgewise.ir.graph import Graph

SHIPPED = "default"  # `--published default`: the table shipped with edgewise
COLUMNS = ("source_table", "model", "component", "device", "precision", "latency_ms")
MAX_FILE_BYTES = 10_000_000


@dataclass(frozen=True)
class PublishedRow:
    source: str  # source_table
    model: str
    component: str
    device: str
    precision: str  # as the vendor writes it
    latency_s: float


@dataclass(frozen=True)
class Target:
    """What edgewise runs for a row: a zoo model at the vendor's input, or why not."""

    zoo: str = ""
    resolution: int | None = None
    skipped: str = ""  # the reason, when there is no model to run
    context: int = 0  # a language model's decode step against this many cached tokens

    def capture(self) -> Graph:
        """The graph the row's latency is of."""
        if self.context:
            from edgewise.capture.llm import capture_llm

            return capture_llm(self.zoo, "decode", context=self.context)
        from edgewise.capture.zoo import Workload, capture_zoo

        return capture_zoo(self.zoo, Workload(resolution=self.resolution))


# Qualcomm publishes an LLM's tokens per second (Genie, a 4,096-token context compiled),
# not the cache length behind it: a decode step against 1,024 cached tokens is assumed
DECODE_CONTEXT = 1024


# (source table, model, component) -> the zoo model at the vendor's input shape
TARGETS: dict[tuple[str, str, str], Target] = {
    ("qualcomm-ai-hub", "bert_base_uncased_hf", "Bert-Base-Uncased-Hf"): Target("bert-base"),
    ("qualcomm-ai-hub", "convnext_tiny", "ConvNext-Tiny"): Target("convnext-tiny"),
    ("qualcomm-ai-hub", "efficientnet_b0", "EfficientNet-B0"): Target("efficientnet-b0"),
    ("qualcomm-ai-hub", "mobile_vit", "Mobile-VIT"): Target("mobilevit-s", 224),
    ("qualcomm-ai-hub", "mobilenet_v2", "MobileNet-v2"): Target("mobilenetv2"),
    ("qualcomm-ai-hub", "resnet18", "ResNet18"): Target("resnet18"),
    ("qualcomm-ai-hub", "resnet50", "ResNet50"): Target("resnet50"),
    ("qualcomm-ai-hub", "stable_diffusion_v1_5", "text_encoder"): Target("sd15-text-encoder"),
    ("qualcomm-ai-hub", "stable_diffusion_v1_5", "unet"): Target("sd15-unet"),
    ("qualcomm-ai-hub", "stable_diffusion_v1_5", "vae"): Target("sd15-vae-decoder"),
    ("qualcomm-ai-hub", "vit", "VIT"): Target("vit-b16"),
    ("qualcomm-ai-hub", "whisper_tiny", "HfWhisperEncoder"): Target("whisper-tiny-encoder"),
    ("qualcomm-ai-hub", "llama_v3_2_1b_instruct", "Llama-v3.2-1B-Instruct"): Target(
        "llama-3.2-1b", context=DECODE_CONTEXT
    ),
    ("qualcomm-ai-hub", "llama_v3_2_3b_instruct", "Llama-v3.2-3B-Instruct"): Target(
        "llama-3.2-3b", context=DECODE_CONTEXT
    ),
    ("qualcomm-ai-hub", "whisper_tiny", "HfWhisperDecoder"): Target(
        skipped="an encoder-decoder step (cross-attention to the audio): not a zoo LLM decoder"
    ),
    ("hailo-model-zoo", "deit_small", ""): Target("deit-small"),
    ("hailo-model-zoo", "mobilenet_v2_1.0", ""): Target("mobilenetv2"),
    ("hailo-model-zoo", "resnet_v1_50", ""): Target("resnet50"),
    ("hailo-model-zoo", "swin_tiny", ""): Target("swin-tiny"),
    ("hailo-model-zoo", "vit_base", ""): Target("vit-b16"),
    ("rknn-model-zoo", "mobilenetv2-12", ""): Target("mobilenetv2"),
    ("rknn-model-zoo", "resnet50-v2-7", ""): Target("resnet50"),
    ("coral-edgetpu", "Inception v1", ""): Target("googlenet"),
    ("coral-edgetpu", "MobileNet v2", ""): Target("mobilenetv2"),
    ("coral-edgetpu", "ResNet-50 V1", ""): Target("resnet50", 299),
}
# device -> (preset, overrides): RKNN's figures are for one of the RK3588's three cores
DEVICES: dict[str, tuple[str, tuple[str, ...]]] = {
    "Samsung Galaxy S24": ("snapdragon-8gen3", ()),
    "Samsung Galaxy S25": ("snapdragon-8elite", ()),
    "Snapdragon 8 Elite QRD": ("snapdragon-8elite", ()),  # Qualcomm's reference phone
    "Hailo-8": ("hailo-8", ()),
    "RK3588 NPU, single core": (
        "rk3588-npu",
        (
            "macs_per_cycle={fp16: 512, bf16: 512, int8: 1024, int4: 2048}",
            "mac_array.cols=32",
            "sram_bytes=384KiB",
        ),
    ),
    "Coral Dev Board (Edge TPU)": ("edge-tpu", ()),
}
# the vendor's precision -> edgewise's (w8a16_mixed_int16 keeps some weights in int16:
# costed as w8a16, whose int16 MACs it runs on)
PRECISIONS = {"float": "fp16", "w8a8": "int8", "w8a16": "w8a16", "w8a16_mixed_int16": "w8a16",
              "w4a16": "w4a16"}  # fmt: skip


def read_published(path: str) -> tuple[PublishedRow, ...]:
    """The rows of a published table (`default`: the shipped one), checked as input."""
    if path == SHIPPED:
        text = resources.files("edgewise.execute").joinpath("data", "edge_latency.csv").read_text()
        label = "the shipped edge_latency.csv"
    else:
        text = read_text(Path(path), "published table", MAX_FILE_BYTES)
        label = f"published table '{path}'"
    reader = csv.DictReader(io.StringIO(text))
    missing = [c for c in COLUMNS if c not in (reader.fieldnames or ())]
    if missing:
        raise EdgewiseError(
            f"{label}: no column {', '.join(missing)} (it needs {', '.join(COLUMNS)}, as in "
            "edge_latency.csv)"
        )
    rows = []
    for line, r in enumerate(reader, start=2):
        try:
            ms = float(r["latency_ms"])
        except (TypeError, ValueError):
            ms = math.nan
        if not (math.isfinite(ms) and 0 < ms < 1e7):
            raise EdgewiseError(
                f"{label}, line {line}: latency_ms {shown(str(r['latency_ms']))} is not a "
                "positive number of milliseconds"
            )
        rows.append(
            PublishedRow(r["source_table"], r["model"], r["component"] or "", r["device"],
                         r["precision"], ms / 1e3)
        )  # fmt: skip
    if not rows:
        raise EdgewiseError(f"{label}: no rows")
    return tuple(rows)


@dataclass(frozen=True)
class Comparison:
    row: PublishedRow
    preset: str
    precision: str  # edgewise's
    predicted_s: float  # nan when skipped
    skipped: str = ""

    @property
    def ratio(self) -> float:
        return self.predicted_s / self.row.latency_s


def target_of(row: PublishedRow) -> tuple[Target, str, tuple[str, ...], str]:
    """(what to run, preset, overrides, precision) for a row; `Target.skipped` says why not."""
    target = TARGETS.get((row.source, row.model, row.component))
    device = DEVICES.get(row.device)
    precision = PRECISIONS.get(row.precision, "int8" if row.source != "qualcomm-ai-hub" else "")
    if device is None:
        return Target(skipped=f"device '{row.device}' has no preset"), "", (), precision
    if target is None:
        return Target(skipped="no zoo model is mapped to it"), device[0], device[1], precision
    if not precision:
        return Target(skipped=f"precision '{row.precision}' unknown"), *device, precision
    return target, device[0], device[1], precision


def predict(graph: Graph, spec: HardwareSpec, precision: str) -> float:
    """Simulated seconds of one forward of `graph` on `spec` at `precision`."""
    from edgewise.simulate.simulator import simulate
    from edgewise.simulate.workload import op_workload

    weights, activations = parse_precision(precision, spec)
    work = op_workload(graph, weights, activations)
    return simulate(work, spec, compute_precision(weights, activations)).totals.latency_s


def compare(
    rows: Sequence[PublishedRow],
    presets: Iterable[str] | None = None,
    graphs: dict[Target, Graph] | None = None,
    on_row: Callable[[PublishedRow], None] | None = None,
) -> tuple[Comparison, ...]:
    """Every row predicted (each zoo model captured once); `presets` keeps only those."""
    wanted = set(presets) if presets is not None else None
    graphs = {} if graphs is None else graphs
    out = []
    for row in rows:
        target, preset, overrides, precision = target_of(row)
        if wanted is not None and preset not in wanted:
            continue
        if on_row is not None:
            on_row(row)
        if target.skipped:
            out.append(Comparison(row, preset, precision, math.nan, target.skipped))
            continue
        if target not in graphs:
            graphs[target] = target.capture()
        spec = load_spec(preset, overrides)
        try:
            seconds = predict(graphs[target], spec, precision)
        except EdgewiseError as e:  # the chip runs it, so a refusal is the model's failure
            out.append(Comparison(row, preset, precision, math.nan, f"edgewise refused: {e}"))
            continue
        out.append(Comparison(row, preset, precision, seconds))
    return tuple(out)


@dataclass(frozen=True)
class Agreement:
    """How one group of rows (a preset, a source table) agrees with the chip."""

    group: str
    rows: int  # rows compared (skipped ones aside)
    median_error: float  # median |predicted / published - 1|
    worst_ratio: float  # max over rows of max(ratio, 1 / ratio)
    spearman: float  # rank correlation of predicted and published (nan below 3 rows)


def agreement(comparisons: Sequence[Comparison], key: str) -> tuple[Agreement, ...]:
    """Per `key` ("preset" or "source"), in order of first appearance."""
    groups: dict[str, list[Comparison]] = {}
    for c in comparisons:
        if not c.skipped:
            groups.setdefault(c.preset if key == "preset" else c.row.source, []).append(c)
    out = []
    for name, members in groups.items():
        ratios = np.array([c.ratio for c in members])
        predicted = [c.predicted_s for c in members]
        published = [c.row.latency_s for c in members]
        out.append(
            Agreement(
                group=name,
                rows=len(members),
                median_error=float(np.median(np.abs(ratios - 1))),
                worst_ratio=float(np.max(np.maximum(ratios, 1 / ratios))),
                spearman=spearman(predicted, published),
            )
        )
    return tuple(out)


def spearman(a: Sequence[float], b: Sequence[float]) -> float:
    """Spearman's rho: Pearson's r of the ranks (ties share their mean rank)."""
    if len(a) < 3:
        return math.nan
    ra, rb = _ranks(np.asarray(a, dtype=float)), _ranks(np.asarray(b, dtype=float))
    if ra.std() == 0 or rb.std() == 0:
        return math.nan
    return float(np.corrcoef(ra, rb)[0, 1])


def _ranks(x: np.ndarray) -> np.ndarray:
    order = np.argsort(x, kind="stable")
    ranks = np.empty(len(x))
    ranks[order] = np.arange(1, len(x) + 1)
    for value in np.unique(x):  # ties: the mean of their ranks
        tied = x == value
        ranks[tied] = ranks[tied].mean()
    return ranks
