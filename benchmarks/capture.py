"""Capture + count speed and memory for every zoo model, beside the peers.

    .venv/bin/python benchmarks/capture.py [MODEL ...] [--fvcore-max-params 1e9]

Each measurement runs in a fresh process (so peak RSS is its own) and times what follows
the imports: build the model, capture and count it.
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


def _measure(tool: str, name: str) -> dict[str, float]:
    """Runs inside the child process."""
    import torch

    from edgewise.capture.zoo import Workload, zoo_entry

    entry = zoo_entry(name)
    start = time.perf_counter()
    if tool == "edgewise":
        from edgewise.analysis.profile import profile
        from edgewise.capture.torch_capture import capture

        model, args, kwargs = entry.build(Workload())
        graph = capture(model, *args, **kwargs)
        macs = profile(graph).totals.macs
    elif tool == "flopcounter":
        from torch._subclasses.fake_tensor import FakeTensorMode
        from torch.utils.flop_counter import FlopCounterMode

        model, args, kwargs = entry.build(Workload())
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
        macs = counter.get_total_flops() // 2
    else:
        from fvcore.nn import FlopCountAnalysis

        model, args, kwargs = entry.build(Workload())
        model = model.to_empty(device="cpu").eval()
        for p in model.parameters():
            torch.nn.init.normal_(p, std=0.02)

        def real(t: torch.Tensor) -> torch.Tensor:
            if t.dtype.is_floating_point:
                return torch.randn(t.shape, dtype=t.dtype)
            return torch.zeros(t.shape, dtype=t.dtype)

        r_args = torch.utils._pytree.tree_map_only(torch.Tensor, real, args)
        r_kwargs = torch.utils._pytree.tree_map_only(torch.Tensor, real, kwargs)
        with torch.no_grad():
            # fvcore passes positional inputs only: bind keyword inputs through a wrapper
            analysis = FlopCountAnalysis(_KwargsWrapper(model, r_kwargs), r_args)
            analysis.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
            macs = analysis.total()
    seconds = time.perf_counter() - start
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"seconds": seconds, "rss_mb": rss_mb, "macs": float(macs)}


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
    for col in ("model", "params", "edgewise s", "RSS MB", "FlopCounterMode s", "RSS MB",
                "edgewise / FCM", "fvcore s", "RSS MB", "fvcore / edgewise"):  # fmt: skip
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
            return f"{r[key]:.2f}" if isinstance(r, dict) else (r if key == "seconds" else "-")

        ratio_fcm = (f"{ours['seconds'] / fcm['seconds']:.2f}x"
                     if isinstance(ours, dict) and isinstance(fcm, dict) else "-")  # fmt: skip
        ratio_fv = (f"{fv['seconds'] / ours['seconds']:.0f}x"
                    if isinstance(ours, dict) and isinstance(fv, dict) else "-")  # fmt: skip
        table.add_row(name, f"{params / 1e6:.1f} M", cell(ours, "seconds"), cell(ours, "rss_mb"),
                      cell(fcm, "seconds"), cell(fcm, "rss_mb"), ratio_fcm, cell(fv, "seconds"),
                      cell(fv, "rss_mb"), ratio_fv)  # fmt: skip
        Console().print(f"[dim]{name} done[/dim]")
    Console().print(table)


if __name__ == "__main__":
    main()
