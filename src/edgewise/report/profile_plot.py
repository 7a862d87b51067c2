"""The pair of charts users know from the trade press: parameters per layer and
operations per layer, in execution order, one bar per layer, stages shaded and named."""

from __future__ import annotations

from pathlib import Path

from edgewise.analysis.profile import Profile
from edgewise.analysis.stages import stage_of_ops, stages
from edgewise.errors import EdgewiseError
from edgewise.ir.graph import Graph
from edgewise.report.figures import pyplot, save_figure, unit_ticks
from edgewise.report.format import si


def plot_profile(graph: Graph, prof: Profile, path: Path) -> None:
    """Write a PNG; `prof` must be grouped by layer."""
    if prof.by != "layer":
        raise EdgewiseError("the profile plot needs --by layer")
    plt = pyplot()

    stage_by_scope = dict(zip((op.scope for op in graph.ops), stage_of_ops(graph), strict=True))
    labels = {s.name: s.label for s in stages(graph)}
    rows = [r for r in prof.rows if r.params or r.macs]
    if not rows:
        raise EdgewiseError("nothing to plot: no layer has parameters or MACs")
    xs = range(len(rows))
    fig, (ax_p, ax_m) = plt.subplots(2, 1, figsize=(14, 6.5), sharex=True)
    ax_p.bar(xs, [r.params for r in rows], width=1.0, color="#4C72B0")
    ax_m.bar(xs, [r.macs for r in rows], width=1.0, color="#DD8452")
    ax_p.set_ylabel("parameters")
    ax_m.set_ylabel(f"MACs ('{prof.convention}')")
    unit_ticks(ax_p.yaxis, si)
    unit_ticks(ax_m.yaxis, si)
    ax_m.set_xlabel(f"layer in execution order ({len(rows)} layers with parameters or MACs)")

    # shade stages and name the wide ones
    spans: list[tuple[str, int, int]] = []
    for i, r in enumerate(rows):
        stage = stage_by_scope.get(r.name, "")
        if spans and spans[-1][0] == stage:
            spans[-1] = (stage, spans[-1][1], i)
        else:
            spans.append((stage, i, i))
    for k, (stage, first, last) in enumerate(spans):
        for ax in (ax_p, ax_m):
            if k % 2 == 0:
                ax.axvspan(first - 0.5, last + 0.5, color="0.92", zorder=0)
        if last - first + 1 >= max(3, len(rows) // 60):
            label = labels.get(stage, stage)
            axis = ax_p.get_xaxis_transform()
            ax_p.text((first + last) / 2, 1.01, label, ha="center", va="bottom", fontsize=8,
                      transform=axis)  # fmt: skip
    t = prof.totals
    fig.suptitle(
        f"{prof.model}: {t.params / 1e6:,.1f} M parameters, {t.macs / 1e9:,.1f} G MACs per forward",
        y=0.995,
    )
    ax_m.set_xlim(-0.5, len(rows) - 0.5)
    save_figure(fig, path)
