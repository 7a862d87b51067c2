"""Measure this machine's CPU and describe it as a `host` HardwareSpec.

`measure_host` times small probes with PyTorch (fp32 GEMMs, convolutions,
attention, elementwise and normalization ops, memory copies) and counts each probe's
work exactly as the simulator will count a model's: MACs and vector ops come from
capturing the probe and counting it with edgewise's own formulas, so a measured rate is
in the units the cost model divides by. `host_spec` turns the measurements into a spec
(a pure function); `write_host_spec` validates it and writes the YAML.

How a CPU fills the fields of an accelerator spec (docs/calibration.md has the why):
- `clock_hz` is nominal, about 1 GHz, chosen so that `macs_per_cycle.fp32 x clock_hz`
  is exactly the representative measured fp32 MAC rate;
- `macs_per_cycle.fp32`: that rate, the median over GEMM, convolution and attention
  probes shaped like the zoo's layers (a CPU's achieved rate varies with shape, and the
  spec has one rate: the median is what a typical layer gets);
- `mac_array`: 1 row x (fp32 SIMD lanes) columns: an output width N that is not a
  multiple of the vector width leaves lanes idle, nothing else pads;
- `vector_ops_per_cycle`: median rate of the elementwise and normalization probes on
  tensors of a typical activation's size (4 MiB), in edgewise's weighted vector ops;
- `sram_*`: the last-level cache (size from sysfs) and the bandwidth of copies that fit
  in it; `dram_*`: the RAM and the bandwidth of copies far beyond the caches;
- energies and static power are assumptions (a CPU's are not measurable from user space);
- compute and memory traffic overlap (out-of-order cores, hardware prefetch); weights
  stay "resident" when all of them fit in the last-level cache.
"""

from __future__ import annotations

import datetime
import math
import os
import platform
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from edgewise.errors import EdgewiseError
from edgewise.hardware.spec import HOST, HardwareSpec, spec_from_dict, user_spec_dir
from edgewise.ir.files import write_atomic

NOMINAL_CLOCK_HZ = 1e9
# Horowitz, ISSCC 2014 (45 nm): energies a CPU's are assumed from (nothing is measured)
FP32_MAC_PJ = 4.6  # fp32 multiply 3.7 pJ + add 0.9 pJ
FP32_ADD_PJ = 0.9
CORE_PJ_PER_INSTRUCTION = 70.0  # fetch, decode, register file of one instruction
FALLBACK_CACHE_BYTES = 8 * 2**20
_SYS_CACHE = Path("/sys/devices/system/cpu/cpu0/cache")


@dataclass(frozen=True, slots=True)
class Probe:
    """One timed kernel: its work as edgewise counts it and the median time of a call."""

    what: str  # e.g. "mm 2048x2048x2048"
    work: float  # MACs, vector ops or bytes moved per call
    seconds: float  # median time of one call
    runs: int  # samples the median is over
    spread: float = 1.0  # slowest sample over fastest: near 1 on an idle machine

    @property
    def rate(self) -> float:
        """Work per second."""
        return self.work / self.seconds


@dataclass(frozen=True)
class HostMeasurements:
    """Everything `edgewise calibrate` measured or read about this machine."""

    date: str  # ISO date of the run
    cpu: str  # model name
    threads: int  # torch intra-op threads the probes ran with
    torch_version: str
    simd_lanes_fp32: int  # fp32 lanes of the widest vector unit (flags from /proc/cpuinfo)
    gemm: tuple[Probe, ...]  # fp32 torch.mm, work in MACs
    conv: tuple[Probe, ...]  # fp32 convolutions (3x3 and 1x1), work in MACs
    attention: tuple[Probe, ...]  # fp32 scaled-dot-product attention, work in MACs
    vector: tuple[Probe, ...]  # elementwise and norms on activation-sized tensors, vector ops
    cache_copy: Probe  # copies within the last-level cache, bytes read + written
    dram_copy: Probe  # copies far beyond the caches, bytes read + written
    cache_bytes: int  # last-level cache of one core
    cache_source: str  # where cache_bytes was read, or why it is assumed
    ram_bytes: int  # physical memory
    quick: bool  # the short run for tests


# --- measuring ------------------------------------------------------------------------------


def time_interleaved(
    calls: Sequence[Callable[[], object]], runs: int, min_sample_s: float
) -> list[tuple[float, float]]:
    """(median, slowest / fastest) time of one call of each function over `runs` rounds.

    Each function is called once to warm up and three times to size its sample (the
    median call: one call slowed by a page fault or a burst of load elsewhere must not
    shrink the sample to nothing); a sample repeats the call enough times to last
    `min_sample_s`, so timer resolution does not matter.
    The rounds interleave the functions (one sample of each per round), so a burst of
    load from elsewhere on the machine spoils one sample of many probes, not every
    sample of one, and the median discards it."""
    reps = []
    for fn in calls:
        fn()
        sizing = []
        for _ in range(3):
            start = time.perf_counter()
            fn()
            sizing.append(time.perf_counter() - start)
        one = max(statistics.median(sizing), 1e-9)
        reps.append(max(1, math.ceil(min_sample_s / one)))
    samples: list[list[float]] = [[] for _ in calls]
    for _ in range(runs):
        for fn, n, out in zip(calls, reps, samples, strict=True):
            start = time.perf_counter()
            for _ in range(n):
                fn()
            out.append((time.perf_counter() - start) / n)
    return [(statistics.median(s), max(s) / min(s)) for s in samples]


MIN_VECTOR_RATE = 1e8  # vector ops/s: one core at 1 GHz does more than this with no SIMD
MAX_SPREAD = 3.0  # a probe whose slowest round took 3x its fastest measured the machine's load


def check_measurements(m: HostMeasurements) -> list[str]:
    """What cannot be true of this machine in `m` (empty when it is consistent): a copy
    inside the cache slower than one through RAM, a vector probe slower than any CPU
    runs it, a probe whose rounds disagree by more than `MAX_SPREAD`."""
    problems = []
    if m.cache_copy.rate < m.dram_copy.rate:
        problems.append(
            f"cache bandwidth {m.cache_copy.rate / 1e9:.3g} GB/s is below RAM bandwidth "
            f"{m.dram_copy.rate / 1e9:.3g} GB/s"
        )
    problems += [
        f"{p.what} at {p.rate / 1e6:.3g} Mop/s is below {MIN_VECTOR_RATE / 1e6:.0f} Mop/s"
        for p in m.vector
        if p.rate < MIN_VECTOR_RATE
    ]
    probes = (*m.gemm, *m.conv, *m.attention, *m.vector, m.cache_copy, m.dram_copy)
    problems += [
        f"{p.what}: slowest round {p.spread:.2f}x the fastest" for p in probes
        if p.spread > MAX_SPREAD
    ]  # fmt: skip
    return problems


def busy_spread(m: HostMeasurements) -> float:
    """The median probe's slowest-over-fastest round: above ~1.5 something else was
    running on the machine while it was measured, and the figures are unreliable."""
    probes = (*m.gemm, *m.conv, *m.attention, *m.vector, m.cache_copy, m.dram_copy)
    return statistics.median(p.spread for p in probes)


def counted_work(fn: Callable[..., Any], inputs: Sequence[Any]) -> tuple[int, int]:
    """(MACs, vector ops) of `fn(*inputs)` as edgewise counts them in a model."""
    from torch import nn

    from edgewise.analysis.conventions import convention
    from edgewise.analysis.profile import op_costs
    from edgewise.capture.torch_capture import capture

    class _Call(nn.Module):
        def forward(self, *xs: Any) -> Any:
            return fn(*xs)

    costs = op_costs(capture(_Call(), *inputs, name="probe"), convention("default"))
    return sum(c.count.macs for c in costs), sum(c.count.vector_ops for c in costs)


@dataclass(frozen=True)
class _Kernel:
    """A probe before it is timed: what to call and the work one call does."""

    what: str
    call: Callable[[], object]
    work: float


def _counted(what: str, fn: Callable[..., Any], inputs: Sequence[Any], unit: str) -> _Kernel:
    macs, vector_ops = counted_work(fn, inputs)
    work = macs if unit == "macs" else vector_ops
    if work <= 0:
        raise RuntimeError(f"probe {what} counts no {unit}: have the counting formulas changed?")
    return _Kernel(what, lambda: fn(*inputs), float(work))


def _copy(what: str, nbytes: int) -> _Kernel:
    """dst.copy_(src) of `nbytes`: 2 x nbytes moved (read + write), as the simulator counts."""
    import torch

    n = max(1, nbytes // 4)
    src, dst = torch.rand(n), torch.empty(n)
    dst.copy_(src)  # touch every page before timing
    return _Kernel(what, lambda: dst.copy_(src), float(2 * 4 * n))


def cache_size() -> tuple[int, str]:
    """Bytes of the largest data cache cpu0 sees, and where that came from."""
    best: tuple[int, int, str] | None = None  # (level, bytes, index folder)
    for index in sorted(_SYS_CACHE.glob("index*")):
        try:
            kind = (index / "type").read_text().strip()
            level = int((index / "level").read_text())
            size_text = (index / "size").read_text().strip()
        except (OSError, ValueError):
            continue
        if kind not in ("Data", "Unified"):
            continue
        scale = {"K": 2**10, "M": 2**20, "G": 2**30}.get(size_text[-1:].upper(), 1)
        digits = size_text.rstrip("KkMmGg")
        if not digits.isdigit():
            continue
        if best is None or level > best[0]:
            best = (level, int(digits) * scale, index.name)
    if best is None:
        return FALLBACK_CACHE_BYTES, (
            f"assumption: {_SYS_CACHE} is not readable here; 8 MiB, a typical last-level cache "
            "of a laptop or small server CPU"
        )
    level, nbytes, folder = best
    return nbytes, f"{_SYS_CACHE}/{folder}/size: the L{level} cache cpu0 sees"


def ram_size() -> int:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))


def _cpuinfo() -> tuple[str, set[str]]:
    """(model name, feature flags) from /proc/cpuinfo; platform's guess elsewhere."""
    name, flags = "", set[str]()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, value = line.partition(":")
                key = key.strip()
                if key in ("model name", "Model", "cpu model") and not name:
                    name = value.strip()
                elif key in ("flags", "Features") and not flags:
                    flags = set(value.split())
    except OSError:
        pass
    return name or platform.processor() or platform.machine() or "unknown CPU", flags


def simd_lanes_fp32(flags: set[str]) -> int:
    """fp32 lanes of the widest vector unit: AVX-512 16, AVX/AVX2 8, NEON/SSE 4."""
    if "avx512f" in flags:
        return 16
    if "avx2" in flags or "avx" in flags:
        return 8
    return 4  # SSE, NEON (asimd) and anything unknown


@dataclass(frozen=True)
class ProbeShapes:
    """The shapes timed: layers of the zoo's models, so the rates are the ones they get."""

    gemm: tuple[tuple[int, int, int], ...]  # (M, K, N) of torch.mm
    conv: tuple[tuple[int, int, int, int], ...]  # (Cin, Cout, kernel, H = W), batch 1
    attention: tuple[tuple[int, int, int, int], ...]  # (heads, Nq, Nk, head dim), batch 1
    vector_elements: int  # elements of each elementwise / norm probe's input


FULL_SHAPES = ProbeShapes(
    gemm=(
        (2048, 2048, 2048),  # a large square product: the BLAS peak
        (197, 768, 3072),  # ViT-B/16 MLP fc1
        (197, 3072, 768),  # ViT-B/16 MLP fc2
        (197, 768, 768),  # ViT-B/16 attention projections
        (4096, 320, 2560),  # SD 1.5 U-Net, 64x64 latents: GEGLU projection
        (1024, 640, 640),  # SD 1.5 U-Net, 32x32: attention projections
    ),
    conv=(
        (64, 64, 3, 56),  # ResNet-50 stage 1 .. 4, 3x3
        (128, 128, 3, 28),
        (256, 256, 3, 14),
        (512, 512, 3, 7),
        (256, 64, 1, 56),  # ResNet-50 bottleneck 1x1
        (1024, 256, 1, 14),
        (320, 320, 3, 64),  # SD 1.5 U-Net resnets at 64, 32, 16 and 8 latent pixels
        (640, 640, 3, 32),
        (1280, 1280, 3, 16),
        (1280, 1280, 3, 8),
    ),
    attention=(
        (12, 197, 197, 64),  # ViT-B/16
        (8, 4096, 4096, 40),  # SD 1.5 self-attention at 64x64
        (8, 1024, 1024, 80),  # SD 1.5 self-attention at 32x32
        (8, 4096, 77, 40),  # SD 1.5 cross-attention on 77 text tokens
    ),
    vector_elements=2**20,  # 4 MiB: 56x56x256 (ResNet) is 0.8 M, 64x64x320 (SD) 1.3 M
)
QUICK_SHAPES = ProbeShapes(
    gemm=((256, 256, 256), (197, 768, 768)),
    conv=((64, 64, 3, 28), (256, 64, 1, 28)),
    attention=((4, 256, 256, 64),),
    vector_elements=2**16,
)


def representative_rate(probes: Sequence[Probe]) -> float:
    """The median of the probes' rates: the rate a typical layer of the zoo's models gets.
    The spec has one MAC rate for every shape, so one must stand for all; the median is
    not pulled by the one or two shapes a CPU runs far below the rest (small or odd N,
    8x8 convolutions whose weights are reordered on every call)."""
    return statistics.median(p.rate for p in probes)


def measure_host(
    quick: bool = False, progress: Callable[[str], None] | None = None
) -> HostMeasurements:
    """Time every probe on this machine; `quick` keeps it to a few seconds (for tests)."""
    import torch
    import torch.nn.functional as F

    say = progress or (lambda _text: None)
    runs, min_s = (3, 0.002) if quick else (7, 0.02)
    torch.manual_seed(0)
    cpu, flags = _cpuinfo()
    cache_bytes, cache_source = cache_size()

    def r(*shape: int) -> torch.Tensor:
        return torch.randn(*shape)

    say("counting the probes' work")
    shapes = QUICK_SHAPES if quick else FULL_SHAPES
    gemm = [
        _counted(f"mm {m}x{k}x{n}", torch.mm, (r(m, k), r(k, n)), "macs") for m, k, n in shapes.gemm
    ]
    conv = [
        _counted(
            f"conv{k}x{k} {cin}->{cout} {h}x{h}",
            lambda x, w: F.conv2d(x, w, padding=w.shape[-1] // 2),
            (r(1, cin, h, h), r(cout, cin, k, k)),
            "macs",
        )
        for cin, cout, k, h in shapes.conv
    ]
    attention = [
        _counted(
            f"sdpa {heads}x{nq}x{nk}x{d}",
            F.scaled_dot_product_attention,
            (r(1, heads, nq, d), r(1, heads, nk, d), r(1, heads, nk, d)),
            "macs",
        )
        for heads, nq, nk, d in shapes.attention
    ]
    n = shapes.vector_elements
    x, y = r(n), r(n)
    rows = x.view(-1, 1024)
    gamma, beta = r(1024), r(1024)
    image = x.view(1, 256, -1)
    mean, var = r(256), r(256).abs()
    vector_probes: tuple[tuple[str, Callable[..., Any], tuple[Any, ...]], ...] = (
        ("add", torch.add, (x, y)),
        ("mul", torch.mul, (x, y)),
        ("relu", torch.relu, (x,)),
        ("silu", F.silu, (x,)),
        ("gelu", F.gelu, (x,)),
        ("softmax", lambda t: torch.softmax(t, -1), (rows,)),
        ("layer_norm", lambda t, g, b: F.layer_norm(t, (1024,), g, b), (rows, gamma, beta)),
        ("group_norm", lambda t, g, b: F.group_norm(t, 32, g, b), (image, mean, var)),
        ("batch_norm", lambda t, m, v: F.batch_norm(t, m, v, v, m), (image, mean, var)),
    )
    vector = [
        _counted(f"{name} {n * 4 // 1024} KiB", fn, inputs, "vector ops")
        for name, fn, inputs in vector_probes
    ]
    big = max(4 * cache_bytes, (64 if quick else 512) * 2**20)
    copies = [
        _copy(f"copy {cache_bytes // 8 // 1024} KiB", cache_bytes // 8),
        _copy(f"copy {big // 2**20} MiB", big),
    ]
    groups = (gemm, conv, attention, vector, copies)
    kernels = [k for group in groups for k in group]
    for attempt in range(2):  # measured again once if the figures contradict each other
        say(f"timing {len(kernels)} probes, {runs} interleaved rounds"
            + (" (again: the first figures were inconsistent)" if attempt else ""))  # fmt: skip
        with torch.no_grad():
            times = iter(time_interleaved([k.call for k in kernels], runs, min_s))
        timed = []
        for group in groups:
            probes = []
            for k in group:
                seconds, spread = next(times)
                probes.append(Probe(k.what, k.work, seconds, runs, spread))
            timed.append(tuple(probes))
        measured = _measurements(timed, cpu, flags, cache_bytes, cache_source, quick)
        if not check_measurements(measured):
            break
    return measured


def _measurements(timed, cpu, flags, cache_bytes, cache_source, quick):  # type: ignore[no-untyped-def]
    import torch

    return HostMeasurements(
        date=datetime.date.today().isoformat(),
        cpu=cpu,
        threads=torch.get_num_threads(),
        torch_version=torch.__version__,
        simd_lanes_fp32=simd_lanes_fp32(flags),
        gemm=timed[0],
        conv=timed[1],
        attention=timed[2],
        vector=timed[3],
        cache_copy=timed[4][0],
        dram_copy=timed[4][1],
        cache_bytes=cache_bytes,
        cache_source=cache_source,
        ram_bytes=ram_size(),
        quick=quick,
    )


# --- the spec -------------------------------------------------------------------------------


def _g(x: float) -> str:
    return f"{x / 1e9:.3g} G"


def _sig(x: float, digits: int) -> float:
    """`x` to `digits` significant digits: a spec file people read has no 17-digit floats."""
    return float(f"{x:.{digits}g}")


def host_spec(m: HostMeasurements) -> dict[str, Any]:
    """The `host` spec (a raw mapping, every figure sourced) for a set of measurements."""
    measured = f"measured by edgewise calibrate on {m.date}"
    runs = f"median of {m.dram_copy.runs} interleaved rounds"
    mac_probes = (*m.gemm, *m.conv, *m.attention)
    mac_rate = representative_rate(mac_probes)
    macs_per_cycle = max(1, round(mac_rate / NOMINAL_CLOCK_HZ))
    clock_hz = _sig(mac_rate / macs_per_cycle, 9)
    vector_rate = statistics.median(p.rate for p in m.vector)
    listed = ", ".join(f"{p.what} {_g(p.rate)}" for p in mac_probes)
    vectors = ", ".join(f"{p.what} {_g(p.rate)}" for p in m.vector)
    cores = m.threads
    lanes = m.simd_lanes_fp32
    per_lane_pj = CORE_PJ_PER_INSTRUCTION / lanes
    return {
        "name": HOST,
        "description": (
            f"This machine: {m.cpu}, {m.threads} torch threads (torch {m.torch_version}), fp32 "
            f"only; {measured}{' (--quick)' if m.quick else ''}. A CPU mapped onto the "
            "accelerator fields: see docs/calibration.md."
        ),
        "clock_hz": clock_hz,
        "mac_array": {"rows": 1, "cols": m.simd_lanes_fp32},
        "macs_per_cycle": {"fp32": macs_per_cycle},
        "vector_ops_per_cycle": _sig(vector_rate / clock_hz, 4),
        "sram_bytes": m.cache_bytes,
        "sram_bandwidth_bytes_per_s": _sig(m.cache_copy.rate, 4),
        "sram_energy_pj_per_byte": 12.5,
        "dram_bytes": m.ram_bytes,
        "dram_bandwidth_bytes_per_s": _sig(m.dram_copy.rate, 4),
        "dram_energy_pj_per_byte": 162.5,
        "energy_pj_per_mac": {"fp32": _sig(FP32_MAC_PJ + per_lane_pj, 3)},
        "vector_energy_pj_per_op": _sig(FP32_ADD_PJ + per_lane_pj, 3),
        "static_power_w": 2.5 * cores,
        "overlap_compute_dma": True,
        "weights_resident": True,
        "sources": {
            "clock_hz": (
                f"nominal: a CPU has no MAC-array clock; {clock_hz / 1e9:.4g} GHz is the measured "
                f"fp32 MAC rate {mac_rate:.4g} MAC/s over macs_per_cycle {macs_per_cycle}, so "
                "their product is exactly the measured rate"
            ),
            "mac_array": (
                f"1 x {m.simd_lanes_fp32}: the fp32 lanes of this CPU's widest vector unit "
                "(/proc/cpuinfo flags); GEMM kernels vectorize the output width N, so an N "
                "that is not a multiple of it leaves lanes idle; K runs through FMA chains"
            ),
            "macs_per_cycle": (
                f"{measured}: fp32 MAC rate = median over {len(mac_probes)} probes shaped "
                "like the zoo's layers "
                f"({listed} MAC/s), {runs}, {m.threads} threads; MACs counted by edgewise's "
                "formulas"
            ),
            "vector_ops_per_cycle": (
                f"{measured}: median over {len(m.vector)} elementwise and normalization "
                f"probes on fp32 tensors of a typical activation's size ({vectors} vector "
                f"ops/s, weighted as edgewise counts them), {runs}; / clock_hz"
            ),
            "sram_bytes": f"the last-level cache: {m.cache_source}",
            "sram_bandwidth_bytes_per_s": (
                f"{measured}: {m.cache_copy.what} (source + destination = 1/4 of the "
                f"last-level cache), bytes read + written, {runs}"
            ),
            "sram_energy_pj_per_byte": (
                "assumption: not measured on a CPU; Horowitz ISSCC 2014 (45 nm): 100 pJ per "
                "64-bit read of a 1 MB SRAM = 12.5 pJ/byte, a last-level cache's order"
            ),
            "dram_bytes": "MemTotal in /proc/meminfo (physical memory)",
            "dram_bandwidth_bytes_per_s": (
                f"{measured}: {m.dram_copy.what} (far beyond the caches), bytes read + "
                f"written, {runs}"
            ),
            "dram_energy_pj_per_byte": (
                "assumption: not measured on a CPU; Horowitz ISSCC 2014: 1.3 to 2.6 nJ per "
                "64-bit DRAM read, taken at 162.5 pJ/byte as the presets do (docs/hardware.md)"
            ),
            "energy_pj_per_mac": (
                "assumption: not measured on a CPU; Horowitz ISSCC 2014 (45 nm): fp32 mult "
                f"3.7 pJ + add 0.9 pJ, plus a core's ~{CORE_PJ_PER_INSTRUCTION:g} pJ per "
                f"instruction (fetch, decode, register file) shared by its {lanes} fp32 SIMD "
                f"lanes = {FP32_MAC_PJ:g} + {per_lane_pj:.3g} pJ per fp32 MAC, not scaled to "
                "the node"
            ),
            "vector_energy_pj_per_op": (
                f"assumption: not measured on a CPU; Horowitz ISSCC 2014 (45 nm): fp32 add "
                f"{FP32_ADD_PJ:g} pJ + {CORE_PJ_PER_INSTRUCTION:g} pJ per instruction shared "
                f"by {lanes} lanes = {FP32_ADD_PJ + per_lane_pj:.3g} pJ per vector op"
            ),
            "static_power_w": (
                f"assumption: not measured on a CPU; 2.5 W per core used ({cores}): about half "
                "of a server core's ~5 W under load is leakage, clocks and its uncore share"
            ),
            "overlap_compute_dma": (
                "assumption: out-of-order cores and hardware prefetchers overlap memory "
                "traffic with arithmetic"
            ),
            "weights_resident": (
                "assumption: weights stay in the last-level cache between layers and runs when "
                "all of them fit beside the activations; otherwise they stream from RAM"
            ),
        },
    }


def default_output() -> Path:
    """$XDG_CONFIG_HOME/edgewise/hardware/host.yaml (~/.config when unset)."""
    return user_spec_dir() / f"{HOST}.yaml"


def write_host_spec(m: HostMeasurements, path: Path | None = None) -> tuple[HardwareSpec, Path]:
    """Validate the spec for `m` and write it as YAML (folders created); return both."""
    raw = host_spec(m)
    spec = spec_from_dict(raw, HOST)  # never write a spec that would not load
    target = path or default_output()
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        header = (
            f"# The machine edgewise calibrate ran on, measured {m.date}.\n"
            "# Rerun `edgewise calibrate` after a hardware, torch or thread-count change.\n"
        )
    except OSError as e:
        raise EdgewiseError(f"cannot write the host spec to '{target}': {e.strerror}") from e
    write_atomic(target, header + yaml.safe_dump(raw, sort_keys=False, width=100))
    return spec, target
