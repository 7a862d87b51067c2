"""Files in and out: every file edgewise reads is untrusted, every file it writes is whole.

Reading: size bounded before the read, UTF-8 checked, nesting bounded before the parser
recurses, and JSON read strictly (no NaN or Infinity, no integer longer than 40 digits,
no float that overflows to infinity). YAML goes through `safe_load` only, with the same
bounds and string keys. Each failure is an `EdgewiseError` naming the file and the fix.

Writing: to a temporary file beside the target, then renamed over it, so a failure
leaves the old file (or nothing) behind; targets are checked up front (not empty, not a
folder, the folder exists and is writable) so a command fails before its work, not after.
"""

from __future__ import annotations

import json
import math
import os
import re
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edgewise.errors import EdgewiseError

if TYPE_CHECKING:  # numpy and pydantic load where they are used: not for --help
    from pydantic import ValidationError

MAX_DEPTH = 64  # deeper than any edgewise file (graph args nest a few levels); a guard
MAX_INT_DIGITS = 40  # 2**128 has 39 digits; longer is a typo or an attack on int()
_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)


def shown(text: str, limit: int = 60) -> str:
    """A user's string inside a message: quoted, control characters escaped, shortened."""
    quoted = repr(text)
    return quoted if len(quoted) <= limit else f"{quoted[: limit - 4]}...' ({len(text):,} chars)"


def read_bytes(path: Path, what: str, max_bytes: int) -> bytes:
    """The bytes of a file the user named, bounded before the read, or one clear error."""
    if not path.exists():
        raise EdgewiseError(f"{what} '{path}' does not exist")
    if not path.is_file():
        raise EdgewiseError(f"{what} '{path}' is not a file")
    size = path.stat().st_size
    if size > max_bytes:
        raise EdgewiseError(
            f"{what} '{path}' is {size:,} bytes; at most {max_bytes:,} are read "
            "(is this the right file?)"
        )
    try:
        return path.read_bytes()
    except OSError as e:
        raise EdgewiseError(f"cannot read {what} '{path}': {e.strerror or e}") from None


def read_text(path: Path, what: str, max_bytes: int) -> str:
    """The UTF-8 text of a file the user named, bounded in size and nesting."""
    raw = read_bytes(path, what, max_bytes)
    check_nesting(raw, f"{what} '{path}'")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise EdgewiseError(
            f"{what} '{path}' is not UTF-8 text (byte {e.start}: {raw[e.start : e.start + 1]!r})"
        ) from None


def check_nesting(raw: bytes | str, label: str) -> None:
    """Refuse brackets nested deeper than MAX_DEPTH before a recursive parser sees them
    (strings are blanked first, so brackets inside them do not count)."""
    data = raw.encode("utf-8", "surrogatepass") if isinstance(raw, str) else raw
    if data.count(b"[") + data.count(b"{") <= MAX_DEPTH:
        return
    import numpy as np

    blanked = _STRING.sub(b'""', data)
    codes = np.frombuffer(blanked, dtype=np.uint8)
    step = np.zeros(256, dtype=np.int8)
    step[[ord("["), ord("{")]] = 1
    step[[ord("]"), ord("}")]] = -1
    depth = int(np.cumsum(step[codes], dtype=np.int64).max(initial=0))
    if depth > MAX_DEPTH:
        raise EdgewiseError(
            f"{label} is nested {depth} levels deep; edgewise files nest at most {MAX_DEPTH}"
        )


def _bounded_int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_INT_DIGITS:
        raise ValueError(f"an integer of {len(text)} digits (at most {MAX_INT_DIGITS})")
    return int(text)


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text} overflows to infinity")
    return value


def _no_constant(text: str) -> Any:
    raise ValueError(f"{text} is not a number in JSON (NaN and Infinity are refused)")


def parse_json(text: str | bytes, label: str) -> Any:
    """Strict JSON: only finite numbers, bounded integers, bounded nesting."""
    check_nesting(text, label)
    try:
        return json.loads(
            text, parse_int=_bounded_int, parse_float=_finite_float, parse_constant=_no_constant
        )
    except json.JSONDecodeError as e:
        raise EdgewiseError(
            f"{label} is not valid JSON: {e.msg} at line {e.lineno}, column {e.colno}"
        ) from None
    except UnicodeDecodeError:
        raise EdgewiseError(f"{label} is not UTF-8 text") from None
    except (ValueError, RecursionError) as e:
        raise EdgewiseError(f"{label}: {e}") from None


def parse_yaml(text: str, label: str) -> Any:
    """YAML through `safe_load` (no object construction), with the JSON bounds."""
    import yaml

    check_nesting(text, label)
    try:
        # libyaml's safe loader where installed: the same rules, 10x faster than Python's
        data = yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise EdgewiseError(f"{label} is not valid YAML: {problem}{where}") from None
    except (ValueError, RecursionError) as e:  # int() of a 5,000-digit number, deep blocks
        raise EdgewiseError(f"{label}: {str(e).splitlines()[0]}") from None
    problem = _yaml_problem(data, (), 0)
    if problem:
        raise EdgewiseError(f"{label}: {problem}")
    return data


def _yaml_problem(value: Any, path: tuple[str, ...], depth: int) -> str | None:
    """Keys must be text; numbers finite and bounded (YAML has .inf, .nan and long ints)."""
    where = ".".join(path) or "the top level"
    if depth > MAX_DEPTH:
        return f"nested deeper than {MAX_DEPTH} levels at {where}"
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                return f"key {key!r} at {where} must be text (quote it)"
            problem = _yaml_problem(item, (*path, key), depth + 1)
            if problem:
                return problem
    elif isinstance(value, list):
        for i, item in enumerate(value):
            problem = _yaml_problem(item, (*path, str(i)), depth + 1)
            if problem:
                return problem
    elif isinstance(value, float) and not math.isfinite(value):
        return f"{where}: {value} is not a finite number"
    elif type(value) is int and abs(value) >= 10**MAX_INT_DIGITS:
        return f"{where}: an integer of more than {MAX_INT_DIGITS} digits"
    return None


def schema_problem(error: ValidationError) -> str:
    """Pydantic's first problems, each as `path: what is wrong (got ...)`, on one line."""
    out = []
    for e in error.errors(include_url=False)[:3]:
        path = "".join(
            f"[{p}]" if isinstance(p, int) else " (a key)" if p == "[key]" else f".{p}"
            for p in e["loc"]
        ).lstrip(".")
        got = repr(e.get("input"))
        got = got if len(got) <= 40 else got[:37] + "..."
        shown = "" if e["type"] == "missing" else f" (got {got})"
        out.append(f"{path or 'the file'}: {e['msg'].rstrip('.').lower()}{shown}")
    more = error.error_count() - len(out)
    return "; ".join(out) + (f"; and {more} more" if more > 0 else "")


# --- writing ---------------------------------------------------------------------------------


def check_target(target: str, option: str) -> Path:
    """A file the command will write, refused now rather than after the work is done."""
    if not target.strip():
        raise EdgewiseError(f"{option}: empty file name; give a path, or '-' for stdout")
    if any(ord(c) < 32 for c in target):
        raise EdgewiseError(f"{option} {target!r}: a file name with control characters")
    path = Path(target)
    if path.is_dir():
        raise EdgewiseError(f"{option} '{target}' is a folder; give a file name inside it")
    folder = path.parent
    if not folder.is_dir():
        raise EdgewiseError(f"{option} '{target}': folder '{folder}' does not exist")
    if not os.access(folder, os.W_OK | os.X_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise EdgewiseError(f"{option} '{target}' is not writable")
    return path


_staged: list[tuple[Path, bytes]] | None = None  # while a CLI command runs: its outputs


def stage_outputs() -> None:
    """From now on, `write_atomic` holds files until `commit_outputs`: a command writes
    all its files at the end, or none when it fails (the CLI calls this per command)."""
    global _staged
    _staged = []


def discard_outputs() -> None:
    global _staged
    _staged = None


def commit_outputs() -> None:
    """Write every held file: each to a temporary file beside it first, then all renamed,
    so a failure part-way leaves none of them."""
    global _staged
    held, _staged = _staged or [], None
    temporaries: list[tuple[str, Path]] = []
    try:
        for path, data in held:
            temporaries.append((_temporary(path, data), path))
        for tmp, path in temporaries:
            os.replace(tmp, path)
    except OSError as e:
        for tmp, _ in temporaries:
            Path(tmp).unlink(missing_ok=True)
        raise EdgewiseError(f"cannot write '{path}': {e.strerror or e}") from None


def write_atomic(path: Path, data: str | bytes) -> None:
    """Write whole or not at all: a temporary file beside `path`, renamed over it."""
    blob = data.encode("utf-8") if isinstance(data, str) else data
    if _staged is not None:
        _staged[:] = [(p, d) for p, d in _staged if p != path]
        _staged.append((path, blob))
        return
    tmp = _temporary(path, blob)
    try:
        os.replace(tmp, path)
    except OSError as e:
        Path(tmp).unlink(missing_ok=True)
        raise EdgewiseError(f"cannot write '{path}': {e.strerror or e}") from None


def _temporary(path: Path, blob: bytes) -> str:
    """`blob` in a fresh file beside `path` (same folder, so the rename is atomic)."""
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as e:
        raise EdgewiseError(f"cannot write '{path}': {e.strerror or e}") from None
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(blob)
        os.chmod(tmp, 0o666 & ~_umask())
    except BaseException as e:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(e, OSError):
            raise EdgewiseError(f"cannot write '{path}': {e.strerror or e}") from None
        raise
    return tmp


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def strict_json(data: Any, **dump: Any) -> str:
    """JSON that strict parsers accept: a non-finite float is written as null, and the
    paths where that happened are listed under "non_finite" (top-level objects only)."""
    where: list[str] = []

    def clean(value: Any, path: str) -> Any:
        if isinstance(value, float) and not math.isfinite(value):
            where.append(f"{path or '.'}: {value}")
            return None
        if isinstance(value, dict):
            return {k: clean(v, f"{path}.{k}" if path else str(k)) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [clean(v, f"{path}[{i}]") for i, v in enumerate(value)]
        return value

    cleaned = clean(data, "")
    if where and isinstance(cleaned, dict):
        cleaned["non_finite"] = where
    return json.dumps(cleaned, allow_nan=False, **dump)
