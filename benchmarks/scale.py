"""Analyses at scale: profile, memory and simulate of generated graphs of 10^4 to 10^6 ops.

    .venv/bin/python benchmarks/scale.py [--ops 10000 100000 1000000] [--stages ...]
                                         [--no-cli | --cli-only] [--keep DIR]

Each size builds a U-Net-shaped `Graph` in Python: levels of blocks (conv, relu, conv,
residual add; a linear as view / t / addmm / view; every 16th block an explicit attention,
bmm -> softmax -> bmm, whose scores the memory timeline must find), a down path that
saves a skip every 4th block and an up path that adds them back in reverse order, so
thousands of long-lived tensors span the graph as a U-Net's skips do. Every layer has its
own scope, as in a captured model. Then, per stage, what each command calls with its
default options (library calls, report rendering included, to an in-memory console):
- profile: `profile(graph)` + `render_profile(limit=40)`;
- memory: `memory_timeline(graph)` + `render_memory(rows=15)`;
- simulate: `op_workload` + `simulate` on generic-npu at its default precision +
  `group_costs` by layer + `render_simulation(limit=15)`;
and what each found (which must not change when the code gets faster). Then, per size,
the graph is saved with `save_graph` and each whole command is timed on the file in a
fresh process (`edgewise profile FILE` etc.), beside `load_graph` alone and a process
that only imports and loads. Target (issue: linear-time analyses): each command on the
10^6-op file in at most 30 s on one core. Figures: benchmarks/scale.md.
Run it with OMP_NUM_THREADS=1 / OPENBLAS_NUM_THREADS=1 for the one-core figure.
"""

from __future__ import annotations

import argparse
import io
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from edgewise.ir.categories import OpCategory
from edgewise.ir.graph import DTYPE_BYTES, Graph, Op, Tensor, TensorKind, TensorRef

CONV = ("aten.convolution.default", OpCategory.CONV)
RELU = ("aten.relu.default", OpCategory.ELEMENTWISE)
ADD = ("aten.add.Tensor", OpCategory.ELEMENTWISE)
VIEW = ("aten.view.default", OpCategory.VIEW)
T = ("aten.t.default", OpCategory.VIEW)
TRANSPOSE = ("aten.transpose.int", OpCategory.VIEW)
ADDMM = ("aten.addmm.default", OpCategory.MATMUL)
BMM = ("aten.bmm.default", OpCategory.MATMUL)
SOFTMAX = ("aten._softmax.default", OpCategory.REDUCTION)
CLASSES = {
    "conv": "torch.nn.modules.conv.Conv2d",
    "up": "torch.nn.modules.conv.ConvTranspose2d",
    "proj": "torch.nn.modules.linear.Linear",
    "block": "models.ResBlock",
    "attn": "models.Attention",
    "stage": "models.Stage",
}


class _Builder:
    """Appends ops and tensors the way capture records them (SSA tensors, shared storages)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.tensors: dict[int, Tensor] = {}
        self.ops: list[Op] = []
        self.scopes: dict[str, str] = {"": "models.GenUNet"}
        self.readers: dict[int, int] = {}  # tensor -> last op reading it

    def _tensor(self, shape: tuple[int, ...], kind: TensorKind, storage: int | None = None,
                producer: int | None = None, name: str = "") -> int:  # fmt: skip
        tid = len(self.tensors)
        nbytes = int(DTYPE_BYTES["float32"] * _numel(shape))
        sid = tid if storage is None else self.tensors[storage].storage_id
        size = nbytes if storage is None else self.tensors[storage].storage_bytes
        self.tensors[tid] = Tensor(tid, shape, "float32", kind, sid, size, producer, name)
        return tid

    def param(self, shape: tuple[int, ...], name: str) -> int:
        return self._tensor(shape, TensorKind.PARAMETER, name=name)

    def input(self, shape: tuple[int, ...]) -> int:
        return self._tensor(shape, TensorKind.INPUT, name="arg0")

    def scope(self, qualified: str, kind: str) -> str:
        self.scopes.setdefault(qualified, CLASSES[kind])
        return qualified

    def op(self, what: tuple[str, OpCategory], scope: str, inputs: tuple[int, ...],
           out_shape: tuple[int, ...], args: tuple[Any, ...] = (),
           view_of: int | None = None) -> int:  # fmt: skip
        index = len(self.ops)
        out = self._tensor(out_shape, TensorKind.ACTIVATION, view_of, producer=index)
        refs = tuple(TensorRef(t) for t in inputs)
        self.ops.append(Op(index, what[0], inputs, (out,), (*refs, *args), {}, scope, what[1]))
        for t in inputs:
            self.readers[t] = index
        return out

    def graph(self, output: int) -> Graph:
        n = len(self.ops)
        tensors = {  # eager lifetime: released after its last reader, outputs held
            tid: t if t.kind is not TensorKind.ACTIVATION or tid == output else Tensor(
                t.id, t.shape, t.dtype, t.kind, t.storage_id, t.storage_bytes, t.producer,
                t.name, self.readers.get(tid, t.producer))
            for tid, t in self.tensors.items()
        }  # fmt: skip
        inputs = {t.name: t.shape for t in tensors.values() if t.kind is TensorKind.INPUT}
        meta = {"generated": "benchmarks/scale.py", "ops": n}
        return Graph(self.name, tuple(self.ops), tensors, self.scopes, inputs, (output,), {}, meta)


def _numel(shape: tuple[int, ...]) -> int:
    out = 1
    for s in shape:
        out *= s
    return out


def _conv(b: _Builder, scope: str, x: int, c_out: int, stride: int = 1,
          transposed: bool = False) -> int:  # fmt: skip
    n, c, h, w = b.tensors[x].shape
    kernel = 2 if transposed else 3
    weight = b.param((c, c_out, kernel, kernel) if transposed else (c_out, c, kernel, kernel),
                     f"{scope}.weight")  # fmt: skip
    bias = b.param((c_out,), f"{scope}.bias")
    if transposed:
        shape, args = (n, c_out, h * 2, w * 2), ((2, 2), (0, 0), (1, 1), True, (0, 0), 1)
    else:
        shape = (n, c_out, h // stride, w // stride)
        args = ((stride, stride), (1, 1), (1, 1), False, (0, 0), 1)
    return b.op(CONV, b.scope(scope, "up" if transposed else "conv"), (x, weight, bias), shape,
                args)  # fmt: skip


def _block(b: _Builder, prefix: str, x: int, attention: bool) -> int:
    """conv, relu, conv, residual add, linear over the last axis; optionally attention."""
    n, c, h, w = b.tensors[x].shape
    scope = b.scope(prefix, "block")
    y = _conv(b, f"{prefix}.conv1", x, c)
    y = b.op(RELU, scope, (y,), (n, c, h, w))
    y = _conv(b, f"{prefix}.conv2", y, c)
    y = b.op(ADD, scope, (y, x), (n, c, h, w))
    proj = b.scope(f"{prefix}.proj", "proj")
    weight, bias = b.param((w, w), f"{proj}.weight"), b.param((w,), f"{proj}.bias")
    flat = b.op(VIEW, proj, (y,), (n * c * h, w), ((n * c * h, w),), view_of=y)
    wt = b.op(T, proj, (weight,), (w, w), view_of=weight)
    z = b.op(ADDMM, proj, (bias, flat, wt), (n * c * h, w))
    y = b.op(VIEW, proj, (z,), (n, c, h, w), ((n, c, h, w),), view_of=z)
    if attention:  # q = k = v = y as (c, h, w): tokens h, head dim w
        attn = b.scope(f"{prefix}.attn", "attn")
        q = b.op(VIEW, attn, (y,), (n * c, h, w), ((n * c, h, w),), view_of=y)
        kt = b.op(TRANSPOSE, attn, (q,), (n * c, w, h), (1, 2), view_of=q)
        s = b.op(BMM, attn, (q, kt), (n * c, h, h))
        p = b.op(SOFTMAX, attn, (s,), (n * c, h, h), (-1, False))
        o = b.op(BMM, attn, (p, q), (n * c, h, w))
        y = b.op(VIEW, attn, (o,), (n, c, h, w), ((n, c, h, w),), view_of=o)
    return y


def generated_unet(n_ops: int, levels: int = 4, skip_every: int = 4,
                   attention_every: int = 16) -> Graph:  # fmt: skip
    """A U-Net-shaped graph of exactly `n_ops` ops (see the module docstring)."""
    ops_per_block = 8 + 6 / attention_every
    stages = 2 * levels + 1
    blocks = max(1, int(n_ops / (stages * ops_per_block * 1.02)) // skip_every) * skip_every
    b = _Builder(f"generated-unet-{n_ops}")
    widths = [16 * 2**i for i in range(levels + 1)]
    x = b.input((1, 4, 2 ** (levels + 4), 2 ** (levels + 4)))
    x = _conv(b, "conv_in", x, widths[0])
    skips: list[int] = []
    count = 0

    def run_stage(prefix: str, skip: str = "") -> None:
        nonlocal x, count
        b.scope(prefix, "stage")
        for j in range(blocks):
            if skip == "pop" and j % skip_every == 0:
                x = b.op(ADD, prefix, (x, skips.pop()), b.tensors[x].shape)
            x = _block(b, f"{prefix}.resnets.{j}", x, count % attention_every == 0)
            count += 1
            if skip == "push" and j % skip_every == skip_every - 1:
                skips.append(x)

    for level in range(levels):
        run_stage(f"down_blocks.{level}", "push")
        x = _conv(b, f"down_blocks.{level}.downsamplers.0.conv", x, widths[level + 1], stride=2)
    run_stage("mid_block")
    for level in reversed(range(levels)):
        x = _conv(b, f"up_blocks.{level}.upsamplers.0.conv", x, widths[level], transposed=True)
        run_stage(f"up_blocks.{level}", "pop")
    assert not skips, "every down skip is read on the way up"
    while len(b.ops) < n_ops:  # pad to the exact size with the root's glue
        x = b.op(RELU, "", (x,), b.tensors[x].shape)
    if len(b.ops) > n_ops:
        raise ValueError(f"cannot build {n_ops} ops (the smallest U-Net has {len(b.ops)})")
    return b.graph(x)


# ------------------------------------------------------------------------------ stages


def _quiet() -> Console:
    return Console(file=io.StringIO(), width=160)  # the CLI's width when piped


def run_profile(graph: Graph) -> str:
    from edgewise.analysis.profile import profile
    from edgewise.report.profile_report import render_profile

    prof = profile(graph)
    render_profile(prof, _quiet(), limit=40)
    return f"{len(prof.rows):,} layers, {prof.totals.macs:,} MACs"


def run_memory(graph: Graph) -> str:
    from edgewise.analysis.memory import memory_timeline
    from edgewise.report.memory_report import render_memory

    tl = memory_timeline(graph)
    render_memory(tl, _quiet(), None, None, 15)
    return f"peak {tl.peak_bytes:,} B at op {tl.peak_op}, {len(tl.long_lived_table):,} long-lived"


def run_simulate(graph: Graph) -> str:
    from edgewise.hardware.spec import (
        compute_precision,
        default_precision,
        load_spec,
        parse_precision,
    )
    from edgewise.report.simulate_report import render_simulation
    from edgewise.simulate.simulator import group_costs, simulate
    from edgewise.simulate.workload import op_workload

    spec = load_spec("generic-npu", ())
    weights, activations = parse_precision(default_precision(spec), spec)
    work = op_workload(graph, weights, activations, "captured")  # type: ignore[arg-type]
    mac = compute_precision(weights, activations)
    sim = simulate(work, spec, mac)
    grouped = group_costs(sim, tuple(op.scope for op in graph.ops), spec.peak_macs_per_s(mac))
    render_simulation(sim, grouped, _quiet(), 15)
    t = sim.totals
    return f"{t.latency_s:.6g} s, {t.dram_bytes:,} DRAM B, {t.tiled_ops:,} tiled"


STAGES: dict[str, Callable[[Graph], str]] = {
    "profile": run_profile,
    "memory": run_memory,
    "simulate": run_simulate,
}


def _timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def _fresh(graph: Graph) -> Graph:
    """A copy without the cached indexes, so every stage pays for them as a command does."""
    return Graph(graph.model, graph.ops, graph.tensors, graph.scopes, graph.inputs,
                 graph.outputs, graph.constants, graph.meta)  # fmt: skip


def library_table(sizes: list[int], stages: dict[str, Callable[[Graph], str]]) -> list[Table]:
    """Each stage on a generated graph of each size, and what it found."""
    console = Console(stderr=True)
    table = Table(title="analyses at scale: seconds per stage (library calls, reports rendered)")
    for col in ("ops", "tensors", "build s", *(f"{s} s" for s in stages)):
        table.add_column(col, justify="right")
    results = Table(title="what each stage found (the figures must not change with speed-ups)")
    for col in ("ops", *stages):
        results.add_column(col, justify="right")
    for n in sizes:
        built, graph = _timed(lambda n=n: generated_unet(n))
        row = [f"{n:,}", f"{len(graph.tensors):,}", f"{built:.1f}"]
        found = [f"{n:,}"]
        for name, fn in stages.items():
            seconds, result = _timed(lambda fn=fn, graph=graph: fn(_fresh(graph)))
            row.append(f"{seconds:.2f}")
            found.append(result)
            console.print(f"{n:,} ops: {name} {seconds:.2f} s", style="dim")
        table.add_row(*row)
        results.add_row(*found)
    return [table, results]


def cli_table(sizes: list[int], stages: dict[str, Callable[[Graph], str]], keep: Path | None,
              timeout: float) -> Table:  # fmt: skip
    """Per size: save a generated graph, then time each whole command on the file (a fresh
    process: import, load, analyse, render), beside the load alone."""
    from edgewise.ir.serialize import load_graph, save_graph

    table = Table(title="CLI on a graph file: wall seconds per command (target: 30 s at 10^6)")
    for col in ("ops", "file MiB", "load_graph s", "import + load s",
                *(f"edgewise {c} s" for c in stages)):  # fmt: skip
        table.add_column(col, justify="right")
    folder = keep or Path(tempfile.mkdtemp(prefix="edgewise-scale-"))
    folder.mkdir(parents=True, exist_ok=True)
    exe = Path(sys.executable).with_name("edgewise")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
    for n in sizes:
        path = folder / f"generated-unet-{n}.json"
        save_graph(generated_unet(n), path)
        loaded, _ = _timed(lambda path=path: load_graph(path))
        row = [f"{n:,}", f"{path.stat().st_size / 2**20:.0f}", f"{loaded:.1f}"]
        load_only = [sys.executable, "-c", "import sys; from edgewise.capture.source import "
                     "graph_from_source; graph_from_source(sys.argv[1])", str(path)]  # fmt: skip
        for argv in (load_only, *([str(exe), c, str(path)] for c in stages)):
            start = time.perf_counter()
            try:
                done = subprocess.run(argv, capture_output=True, env=env, timeout=timeout)
                seconds = f"{time.perf_counter() - start:.1f}"
                if done.returncode:
                    seconds += f" (exit {done.returncode})"
                    Console(stderr=True).print(done.stderr.decode()[-2000:])
            except subprocess.TimeoutExpired:
                seconds = f"> {timeout:.0f} (killed)"
            row.append(seconds)
        table.add_row(*row)
        if keep is None:
            path.unlink()
    if keep is None:
        folder.rmdir()
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--ops", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--stages", nargs="+", choices=STAGES, default=list(STAGES))
    parser.add_argument("--no-cli", action="store_true", help="skip the CLI subprocess runs")
    parser.add_argument("--cli-only", action="store_true", help="only the CLI subprocess runs")
    parser.add_argument("--keep", type=Path, help="write the graph files here and keep them")
    parser.add_argument("--timeout", type=float, default=600, help="per CLI command, seconds")
    opts = parser.parse_args()
    stages = {name: STAGES[name] for name in opts.stages}
    console = Console(width=None if sys.stdout.isatty() else 140)  # whole tables when piped
    if not opts.cli_only:
        for table in library_table(opts.ops, stages):
            console.print(table)
    if not opts.no_cli:
        console.print(cli_table(opts.ops, stages, opts.keep, opts.timeout))


if __name__ == "__main__":
    main()
