"""A cache of captured graphs, so the second command on the same model skips capture.

Why: capturing SD 1.5's U-Net imports torch and diffusers and runs the forward (6 s);
reading the same graph back from its file takes milliseconds. A graph is stored under the
user's cache folder (`$EDGEWISE_CACHE_DIR`, else `$XDG_CACHE_HOME/edgewise`, else
`~/.cache/edgewise`), in `graphs/<key>.json`, the format `edgewise capture` writes.

The key is a SHA-256 of everything the graph depends on: what names the model (a zoo
name, a `--module` spec with the bytes of its source file, a Hugging Face config's
bytes), the workload options, the versions of edgewise, torch, transformers and
diffusers, and a fingerprint of edgewise's own capture code (so a changed capture never
reads an old graph). `--no-cache` (or `EDGEWISE_NO_CACHE=1`) bypasses it for one command;
`edgewise cache clear` empties it. A file that fails to read is recaptured and replaced.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

from edgewise.ir.graph import Graph

_ENABLED = [os.environ.get("EDGEWISE_NO_CACHE", "") in ("", "0")]


def set_enabled(enabled: bool) -> None:
    _ENABLED[0] = enabled and os.environ.get("EDGEWISE_NO_CACHE", "") in ("", "0")


def cache_dir() -> Path:
    root = os.environ.get("EDGEWISE_CACHE_DIR")
    if root:
        return Path(root)
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "edgewise"


def _version(package: str) -> str:
    from importlib import metadata  # 25 ms: only when a key is made

    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "-"


@cache
def _code_fingerprint() -> str:
    """Size and modification time of every module that shapes a captured graph."""
    here = Path(__file__).resolve().parent
    files = sorted([*here.glob("*.py"), *(here.parent / "ir").glob("*.py")])
    stats = [(f.name, f.stat().st_size, f.stat().st_mtime_ns) for f in files]
    return hashlib.sha256(repr(stats).encode()).hexdigest()


def graph_key(source: dict[str, Any]) -> str:
    """The key of a graph made from `source` (JSON-ready: what names the model, options)."""
    versions = {p: _version(p) for p in ("edgewise", "torch", "transformers", "diffusers")}
    blob = json.dumps({"source": source, "versions": versions, "code": _code_fingerprint()},
                      sort_keys=True, default=str)  # fmt: skip
    return hashlib.sha256(blob.encode()).hexdigest()[:32]


def file_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def cached_graph(source: dict[str, Any], make: Callable[[], Graph]) -> Graph:
    """The graph of `source` from the cache, or `make()` it and store it there."""
    from edgewise.ir.serialize import graph_json, load_graph

    if not _ENABLED[0]:
        return make()
    path = cache_dir() / "graphs" / f"{graph_key(source)}.json"
    if path.is_file():
        try:
            return load_graph(path)
        except Exception:  # damaged or from an older format: capture again
            path.unlink(missing_ok=True)
    graph = make()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(graph_json(graph))
        tmp.replace(path)  # atomic: a reader never sees half a file
    except OSError:
        pass  # a read-only or full cache folder costs speed, never the answer
    return graph


def clear() -> tuple[int, int]:
    """Remove every cached graph: (files, bytes) removed."""
    folder = cache_dir() / "graphs"
    files = bytes_ = 0
    for f in folder.glob("*.json") if folder.is_dir() else ():
        bytes_ += f.stat().st_size
        f.unlink(missing_ok=True)
        files += 1
    return files, bytes_


def usage() -> tuple[int, int]:
    folder = cache_dir() / "graphs"
    found = list(folder.glob("*.json")) if folder.is_dir() else []
    return len(found), sum(f.stat().st_size for f in found)
