"""Measure what a real forward allocates, to prove the memory timeline against reality.

CPU: the PyTorch profiler's allocation events (every allocation and free the CPU
allocator reports, in time order); the peak of their running sum is the peak of memory
the forward allocated on top of what existed before (weights and inputs). CUDA:
`torch.cuda.max_memory_allocated` minus the memory allocated before the forward.
Weights are random (normal, std 0.02) unless the model already holds real ones.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import torch
from torch import nn
from torch.utils._pytree import tree_map_only

from edgewise.errors import EdgewiseError

T = TypeVar("T")
TORCH_DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


@dataclass(frozen=True, slots=True)
class MeasuredPeak:
    peak_bytes: int  # peak bytes of tensors the forward allocated, live between ops
    device: str
    method: str  # how it was measured
    with_scratch_bytes: int  # the same including kernel scratch (freed inside one op)


def require_device(device: str) -> None:
    """cpu always; cuda only where this PyTorch build sees a GPU."""
    if device not in ("cpu", "cuda"):
        raise EdgewiseError(f"--device must be cpu or cuda (got '{device}')")
    if device == "cuda" and not torch.cuda.is_available():
        why = " (this PyTorch is a CPU-only build)" if torch.version.cuda is None else ""
        raise EdgewiseError(
            f"--device cuda: no CUDA GPU is visible to PyTorch{why}; use --device cpu"
        )


def forward(model: nn.Module, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> Any:
    """Run the user's model: what its forward raises is a problem with the model or its
    inputs, not with edgewise, so it becomes a one-line error (exit 2)."""
    try:
        return model(*args, **kwargs)
    except EdgewiseError:
        raise
    except (Exception, RecursionError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else ""
        raise EdgewiseError(
            f"the model's forward raised {type(e).__name__}: {first[:300]} "
            "(run it in plain PyTorch to debug; --debug shows the traceback)"
        ) from e


def weight_bytes(model: nn.Module, dtype: torch.dtype | None = None) -> int:
    """Bytes the model's parameters and buffers take once real (at `dtype` if given)."""
    total = 0
    for t in (*model.parameters(), *model.buffers()):
        size = (
            torch.empty((), dtype=dtype).element_size()
            if dtype and t.is_floating_point()
            else t.element_size()
        )
        total += t.numel() * size
    return total


def available_memory_bytes(device: str) -> int:
    require_device(device)
    if device == "cuda":
        free, _total = torch.cuda.mem_get_info()
        return int(free)
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_AVPHYS_PAGES"))


def check_fits(needed_bytes: int, device: str) -> None:
    """Refuse before allocating when the run would not fit this machine's memory."""
    available = available_memory_bytes(device)
    if needed_bytes > 0.8 * available:
        raise EdgewiseError(
            f"--measure would need about {needed_bytes / 2**30:.1f} GiB on {device} (weights, "
            f"inputs and the predicted activation peak) but {available / 2**30:.1f} GiB is "
            "available; use a smaller --resolution or --batch, or --dtype fp16"
        )


def rebuild_buffers(model: nn.Module, buffers: dict[str, torch.Tensor]) -> set[str]:
    """Buffers computed at construction (a rotary embedding's `inv_freq`) rebuilt from their
    module's own config: a module without parameters that keeps the `config` it was built
    from (transformers' rotary embeddings) is built again on the CPU and its buffers copied.
    Returns the names restored."""
    restored = set()
    owners: dict[str, list[str]] = {}
    for name in buffers:
        owners.setdefault(name.rpartition(".")[0], []).append(name)
    for prefix, names in owners.items():
        module = model.get_submodule(prefix)
        config = getattr(module, "config", None)
        if config is None or any(True for _ in module.parameters()):
            continue
        try:
            with torch.device("cpu"):
                fresh = type(module)(config)
        except Exception:
            continue
        for name in names:
            new = fresh._buffers.get(name.rpartition(".")[2])
            if new is not None and new.shape == buffers[name].shape:
                with torch.no_grad():
                    buffers[name].copy_(new.to(buffers[name].dtype))
                restored.add(name)
    return restored


def _tied_parameters(model: nn.Module) -> list[list[tuple[nn.Module, str]]]:
    """Each parameter that more than one module holds (tied embeddings): where it is held,
    so that it is one tensor again after `to_empty`, as the capture saw it."""
    held: dict[int, list[tuple[nn.Module, str]]] = {}
    for module in model.modules():
        for name, param in module._parameters.items():
            if param is not None:
                held.setdefault(id(param), []).append((module, name))
    return [places for places in held.values() if len(places) > 1]


def materialize(
    model: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any], dtype: str, device: str
) -> tuple[nn.Module, tuple[Any, ...], dict[str, Any]]:
    """Real weights (random where the model has none) and random inputs of the same shapes."""
    if dtype not in TORCH_DTYPES:
        raise EdgewiseError(
            f"--measure runs in {', '.join(TORCH_DTYPES)} (got '{dtype}'); int8 needs the "
            "quantized execution of a later stage"
        )
    require_device(device)
    torch_dtype = TORCH_DTYPES[dtype]
    needed = weight_bytes(model, torch_dtype)
    available = available_memory_bytes(device)
    if needed > 0.8 * available:  # before a single weight is allocated
        raise EdgewiseError(
            f"the model's weights need {needed / 2**30:.1f} GiB in {dtype} on {device} but "
            f"{available / 2**30:.1f} GiB is available: use a smaller model or free memory"
        )
    generator = torch.Generator().manual_seed(0)
    if any(p.is_meta for p in model.parameters()) or any(b.is_meta for b in model.buffers()):
        tied = _tied_parameters(model)
        model = model.to_empty(device=device)
        for (owner, name), *others in tied:  # to_empty gives each use its own tensor
            for module, other in others:
                module._parameters[other] = owner._parameters[name]
        with torch.no_grad():
            for p in model.parameters():
                p.copy_(torch.randn(p.shape, generator=generator) * 0.02)
            for name, b in model.named_buffers():
                b.copy_(torch.ones_like(b) if "var" in name else torch.zeros_like(b))
        rebuild_buffers(model, dict(model.named_buffers()))  # e.g. rotary inv_freq
    model = model.to(device=device)
    if any(p.dtype != torch_dtype for p in model.parameters() if p.is_floating_point()):
        model = model.to(dtype=torch_dtype)
    model.eval()

    def real(t: torch.Tensor) -> torch.Tensor:
        if t.dtype.is_floating_point:
            return torch.randn(t.shape, generator=generator).to(device=device, dtype=torch_dtype)
        return torch.zeros(t.shape, dtype=t.dtype, device=device)

    return model, tree_map_only(torch.Tensor, real, args), tree_map_only(torch.Tensor, real, kwargs)


def _cpu_allocation_peaks(prof: torch.profiler.profile) -> tuple[int, int]:
    """(peak of tensors live between ops, peak of everything the allocator saw).

    An allocation that a top-level op makes and frees before it returns is kernel
    scratch (oneDNN's reordered weights, im2col columns, attention work buffers): it
    is no tensor of the model's, so the first figure leaves it out.
    """
    from torch._C._profiler import _EventType

    results = prof.profiler.kineto_results if prof.profiler else None
    if results is None:
        raise RuntimeError("the profiler recorded no results")
    events: list[tuple[int, int, bool]] = []  # (time, bytes, is scratch)
    for root in results.experimental_event_tree():
        # the profiler's event records are loosely typed unions: handle them as Any
        subtree: list[Any] = [root]
        allocations: list[Any] = []
        while subtree:
            event = subtree.pop()
            subtree.extend(event.children)
            if event.typed[0] == _EventType.Allocation and event.typed[1].device.type == "cpu":
                allocations.append(event)
        scratch: set[int] = set()  # ids of allocation events paired within this op
        if root.typed[0] != _EventType.Allocation:  # a free outside any op is no scratch
            opened: dict[int, Any] = {}
            for event in sorted(allocations, key=lambda e: e.start_time_ns):
                fields = event.typed[1]
                if fields.alloc_size > 0:
                    opened[fields.ptr] = event
                elif fields.ptr in opened:
                    scratch.update((id(opened.pop(fields.ptr)), id(event)))
        events.extend(
            (e.start_time_ns, e.typed[1].alloc_size, id(e) in scratch) for e in allocations
        )
    events.sort()
    live = peak = live_all = peak_all = 0
    for _, size, is_scratch in events:
        live_all += size
        peak_all = max(peak_all, live_all)
        if not is_scratch:
            live += size
            peak = max(peak, live)
    return peak, peak_all


@contextlib.contextmanager
def _native_stderr_silenced() -> Iterator[None]:
    sys.stderr.flush()
    saved = os.dup(2)
    with open(os.devnull, "w") as devnull:
        os.dup2(devnull.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)


def measure_peak(
    model: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any], device: str = "cpu"
) -> MeasuredPeak:
    """Run one forward (autograd off) and measure the peak bytes it allocated."""
    return peak_of(lambda: forward(model, args, kwargs), device)[1]


def peak_of(run: Callable[[], T], device: str = "cpu") -> tuple[T, MeasuredPeak]:
    """Call `run()` once (autograd off); its result and the peak bytes it allocated."""
    with torch.no_grad():
        if device == "cuda":
            torch.cuda.synchronize()
            before = torch.cuda.memory_allocated()
            torch.cuda.reset_peak_memory_stats()
            result = run()
            torch.cuda.synchronize()
            peak = int(torch.cuda.max_memory_allocated() - before)
            # the caching allocator's peak cannot separate kernel workspaces: one figure
            return result, MeasuredPeak(peak, "cuda", "torch.cuda.max_memory_allocated", peak)
        activities = [torch.profiler.ProfilerActivity.CPU]
        with _native_stderr_silenced():  # the profiler's C++ side prints start/stop lines
            prof = torch.profiler.profile(activities=activities, profile_memory=True)
            prof.start()
        try:
            result = run()
        finally:
            with _native_stderr_silenced():
                prof.stop()
    peak, with_scratch = _cpu_allocation_peaks(prof)
    return result, MeasuredPeak(peak, "cpu", "profiler allocation events", with_scratch)
