"""Pareto fronts of a sweep's points: the points no other point beats on every objective.

A point is dominated when another is at most as large on every objective and smaller on
one (every objective is minimized). Exact ties are all kept. Two objectives: one sort and a
running minimum, O(n log n); more: the sorted points are filtered against the front found
so far.
"""

from __future__ import annotations

import re

import numpy as np

from edgewise.errors import EdgewiseError

_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def pareto_mask(values: np.ndarray) -> np.ndarray:
    """Bool per row of `values` (points x objectives, finite): on the front."""
    n, k = values.shape
    if n == 0:
        return np.zeros(0, dtype=bool)
    order = np.lexsort(values.T[::-1])  # by the first objective, ties by the next ones
    v = values[order]
    keep = np.zeros(n, dtype=bool)
    if k == 1:
        keep[order[v[:, 0] == v[0, 0]]] = True
        return keep
    if k == 2:
        best = np.inf
        i = 0
        while i < n:  # a run of equal first objectives: only its smallest second can stay
            j = i
            while j + 1 < n and v[j + 1, 0] == v[i, 0]:
                j += 1
            low = v[i, 1]  # sorted, so the run's smallest second objective comes first
            if low < best:
                run = np.arange(i, j + 1)
                keep[order[run[v[run, 1] == low]]] = True
                best = low
            i = j + 1
        return keep
    front: list[int] = []
    for i in range(n):
        row = v[i]
        if front:
            f = v[front]
            dominated = np.any(np.all(f <= row, axis=1) & np.any(f < row, axis=1))
            if dominated:
                continue
        front.append(i)
    keep[order[front]] = True
    return keep


def check_objectives(names: list[str], columns: list[str]) -> list[str]:
    """Objective names: columns of the store, named plainly (they go into SQL)."""
    if not names:
        raise EdgewiseError("--minimize needs at least one column, e.g. latency_s,energy_j")
    for name in names:
        if not _IDENT.fullmatch(name) or name not in columns:
            raise EdgewiseError(f"--minimize: '{name}' is not a column of the store (columns: "
                                f"{', '.join(columns)})")  # fmt: skip
    return names
