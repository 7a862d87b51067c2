"""Capture + count speed and memory for every zoo model, beside the peers.

    .venv/bin/python benchmarks/capture.py [MODEL ...] [--fvcore-max-params 1e9]

Each measurement runs in a fresh process (so peak RSS is its own). After the imports and
one untimed build (diffusers imports its model classes lazily), it times build + capture
+ count twice: cold (the first fake-tensor run in the process) and warm.
- edgewise: build on the meta device, capture under FakeTensorMode recording every ATen
  op with scopes, count under the default convention.
- FlopCounterMode: torch's counter under FakeTensorMode (same fake parameters), which
  only counts and records nothing else.
- fvcore: FlopCountAnalysis with real random weights (JIT trace); skipped above
  --fvcore-max-params parameters because the weights alone would not fit comfortably.
Targets (issue 2): SD 1.5 U-Net <= 1.5 s and 500 MB; SDXL U-Net <= 4 s and 600 MB;
edgewise <= 1.5x FlopCounterMode; >= 10x faster than fvcore.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time


def _run_tool(tool: str, name: str) -> float:
    """Build, capture (or trace) and count once; returns the MACs found."""
    import torch

    from edgewise.capture.zoo import Workload, zoo_entry

    model, args, kwargs = zoo_entry(name).build(Workload())
    if tool == "edgewise":
        from edgewise.analysis.profile import profile
        from edgewise.capture.torch_capture import capture

        return float(profile(capture(model, *args, **kwargs)).totals.macs)
    if tool == "flopcounter":
        from torch._subclasses.fake_tensor import FakeTensorMode
        from torch.utils.flop_counter import FlopCounterMode

        mode = FakeTensorMode(allow_non_fake_inputs=True)

        def fake(t: torch.Tensor) -> torch.Tensor:
            with mode:
                return torch.empty_strided(t.shape, t.stride(), dtype=t.dtype, device="cpu")

        state = {n: fake(t) for n, t in (*model.named_parameters(), *model.named_buffers())}
        f_args = torch.utils._pytree.tree_map_only(torch.Tensor, fake, args)
        f_kwargs = torch.utils._pytree.tree_map_only(torch.Tensor, fake, kwargs)
        counter = FlopCounterMode(display=False)
        with torch.no_grad(), mode, counter:
            torch.func.functional_call(model.eval(), state, f_args, f_kwargs, strict=False)
        return float(counter.get_total_flops() // 2)
    from fvcore.nn import FlopCountAnalysis

    from edgewise.execute.measure import materialize

    real_model, r_args, r_kwargs = materialize(model, args, kwargs, "fp32", "cpu")
    with torch.no_grad():
        # fvcore passes positional inputs only: bind keyword inputs through a wrapper
        analysis = FlopCountAnalysis(_KwargsWrapper(real_model, r_kwargs), r_args)
        analysis.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
        return float(analysis.total())


def _measure(tool: str, name: str) -> dict[str, float]:
    """Runs inside the child process: imports and one untimed build first, then the
    first (cold) and second (warm) timed runs of the tool."""
    from edgewise.capture.zoo import Workload, zoo_entry

    zoo_entry(name).build(Workload())  # imports the model's library (lazy in diffusers)
    start = time.perf_counter()
    macs = _run_tool(tool, name)
    cold = time.perf_counter() - start
    warm = cold
    if tool != "fvcore":  # fvcore's run is dominated by allocating the weights: once is enough
        start = time.perf_counter()
        _run_tool(tool, name)
        warm = time.perf_counter() - start
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"seconds": cold, "warm": warm, "rss_mb": rss_mb, "macs": macs}


class _KwargsWrapper:
    """Binds keyword inputs and returns a plain tensor, as a JIT trace needs."""

    def __new__(cls, model, kwargs):  # type: ignore[no-untyped-def]
        import torch

        class Wrapped(torch.nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.model = model

            def forward(self, *args):  # type: ignore[no-untyped-def]
                out = self.model(*args, **kwargs)
                if hasattr(out, "to_tuple"):  # diffusers / transformers output records
                    out = out.to_tuple()
                return out[0] if isinstance(out, tuple | list) else out

        return Wrapped()


def _run_child(tool: str, name: str, timeout: float) -> dict[str, float] | str:
    cmd = [sys.executable, __file__, "--child", tool, name]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return f"timeout {timeout:.0f}s"
    if done.returncode != 0:
        return "failed: " + (done.stderr.strip().splitlines() or ["?"])[-1][:60]
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("models", nargs="*")
    parser.add_argument("--fvcore-max-params", type=float, default=1.0e9)
    parser.add_argument("--timeout", type=float, default=600)
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    opts = parser.parse_args()
    if opts.child:
        print(json.dumps(_measure(*opts.child)))
        return

    from rich.console import Console
    from rich.table import Table

    from edgewise.capture.zoo import ZOO, Workload

    names = opts.models or list(ZOO)
    table = Table(title="capture + count, after imports (fresh process each)")
    for col in ("model", "params", "edgewise s (cold / warm)", "RSS MB", "FlopCounterMode s",
                "RSS MB", "edgewise / FCM", "fvcore s", "RSS MB", "fvcore / edgewise"):  # fmt: skip
        table.add_column(col, justify="right")
    for name in names:
        model, _, _ = ZOO[name].build(Workload())
        params = sum(p.numel() for p in model.parameters())
        ours = _run_child("edgewise", name, opts.timeout)
        fcm = _run_child("flopcounter", name, opts.timeout)
        fv: dict[str, float] | str = "skipped (weights too large)"
        if params <= opts.fvcore_max_params:
            fv = _run_child("fvcore", name, opts.timeout)

        def cell(r: dict[str, float] | str, key: str) -> str:
            if not isinstance(r, dict):
                return r if key == "seconds" else "-"
            if key == "seconds" and r["warm"] != r["seconds"]:
                return f"{r['seconds']:.2f} / {r['warm']:.2f}"
            return f"{r[key]:.2f}"

        # warm against warm for the two fake-tensor tools; first run against first run for fvcore
        ratio_fcm = (f"{ours['warm'] / fcm['warm']:.2f}x"
                     if isinstance(ours, dict) and isinstance(fcm, dict) else "-")  # fmt: skip
        ratio_fv = (f"{fv['seconds'] / ours['seconds']:.1f}x"
                    if isinstance(ours, dict) and isinstance(fv, dict) else "-")  # fmt: skip
        table.add_row(name, f"{params / 1e6:.1f} M", cell(ours, "seconds"), cell(ours, "rss_mb"),
                      cell(fcm, "seconds"), cell(fcm, "rss_mb"), ratio_fcm, cell(fv, "seconds"),
                      cell(fv, "rss_mb"), ratio_fv)  # fmt: skip
        Console().print(f"[dim]{name} done[/dim]")
    Console().print(table)


if __name__ == "__main__":
    main()
