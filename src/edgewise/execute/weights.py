"""Real weights from a local `.safetensors` file, and never from a file that can run code.

Pickle checkpoints (what `torch.save` writes: .ckpt, .pt, .pth, .bin) execute code while
they load, so they are refused, by suffix and by content (a pickle opcode or a zip header
where safetensors has its 8-byte header length). A safetensors file is untrusted input,
checked before any tensor is read:
  - the header length is at most 100 MB (the format's own limit) and inside the file;
  - the header is a JSON object {name: {"dtype", "shape", "data_offsets"}} whose offsets
    lie in the data area and whose sizes agree with dtype x shape;
  - only tensors the model has are read, one at a time and after their shapes were
    checked against the model's, so the bytes read are bounded by the model's size and
    not by the file's (a pipeline file holding other components costs nothing extra).
Names: exact, or with one prefix stripped from every file name ("unet.", "model.",
"module.") or added to it, whichever matches most of the model. Every mismatch is
reported, one line per kind: missing, unexpected, misshapen. A model on the meta device
is materialized (`to_empty`, tied weights re-tied) and filled from the file: no random
initialization first. Tensors are converted to the dtype of the model's tensor.
"""

from __future__ import annotations

import math
import struct
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from edgewise.errors import EdgewiseError
from edgewise.execute.measure import available_memory_bytes, rebuild_buffers
from edgewise.ir.files import parse_json

MAX_HEADER_BYTES = 100_000_000  # safetensors' own limit
PICKLE_SUFFIXES = (".ckpt", ".pt", ".pth", ".bin", ".pkl", ".pickle")
SHOWN = 8  # names shown per group before "... and N more"
_ITEM_BYTES = {
    "F64": 8, "F32": 4, "F16": 2, "BF16": 2, "F8_E4M3": 1, "F8_E5M2": 1,
    "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U64": 8, "U32": 4, "U16": 2, "U8": 1, "BOOL": 1,
}  # fmt: skip
_FLOAT_DTYPES = frozenset({"F64", "F32", "F16", "BF16", "F8_E4M3", "F8_E5M2"})
_KNOWN_PREFIXES = ("model.", "module.", "unet.", "vae.", "text_encoder.", "transformer.")
_ORIGINAL_SD = ("model.diffusion_model.", "first_stage_model.", "cond_stage_model.")
_CONVERT = (
    'convert it once, where you trust the file: python -c "import torch, safetensors.torch as '
    "s; s.save_file(torch.load('{name}', weights_only=True), '{stem}.safetensors')\" "
    "(a checkpoint that nests its weights under 'state_dict' needs ['state_dict'])"
)


@dataclass(frozen=True, slots=True)
class HeaderEntry:
    dtype: str  # safetensors dtype code: F32, F16, BF16, I64, ...
    shape: tuple[int, ...]
    nbytes: int


@dataclass(frozen=True, slots=True)
class LoadedWeights:
    """What `read_weights` did: enough to say it in one line, nothing dropped unsaid."""

    path: Path
    tensors: int  # model tensors filled from the file
    bytes_read: int  # bytes of tensor data read
    strip_prefix: str  # removed from every file name before matching ("" = none)
    add_prefix: str  # put before every file name before matching ("" = none)
    ignored: int  # file tensors outside `strip_prefix` (other components of a pipeline file)
    converted: dict[str, int]  # "F16->float32": how many tensors changed dtype
    materialized: bool  # the model was on the meta device


def _refuse_pickle(path: Path, why: str) -> EdgewiseError:
    return EdgewiseError(
        f"'{path}' {why}: pickle checkpoints run code when they load, so edgewise reads only "
        f".safetensors; {_CONVERT.format(name=path.name, stem=path.stem)}"
    )


def read_header(path: Path) -> dict[str, HeaderEntry]:
    """The tensors a safetensors file declares, validated; refuses pickles and zips."""
    if not path.is_file():
        raise EdgewiseError(f"weights file '{path}' does not exist")
    size = path.stat().st_size
    with path.open("rb") as f:
        head = f.read(8)
        if head[:1] == b"\x80" and len(head) > 1 and 2 <= head[1] <= 5:
            raise _refuse_pickle(path, f"is a pickle (protocol {head[1]})")
        if head[:4] == b"PK\x03\x04":
            raise _refuse_pickle(path, "is a zip archive (what torch.save writes)")
        if path.suffix.lower() in PICKLE_SUFFIXES:
            raise _refuse_pickle(path, f"has the suffix of a pickle checkpoint ('{path.suffix}')")
        if path.suffix.lower() != ".safetensors":
            raise EdgewiseError(
                f"weights must be a .safetensors file (got '{path.name}'); convert other "
                "formats with safetensors.torch.save_file"
            )
        if len(head) < 8:
            raise EdgewiseError(f"'{path}' is not a safetensors file: {size} bytes, no header")
        (header_bytes,) = struct.unpack("<Q", head)
        if header_bytes > min(MAX_HEADER_BYTES, size - 8):
            raise EdgewiseError(
                f"'{path}' is not a valid safetensors file: its header claims {header_bytes:,} "
                f"bytes in a {size:,}-byte file (limit {MAX_HEADER_BYTES:,})"
            )
        raw = f.read(header_bytes)
    try:
        header = parse_json(raw, "header")
    except EdgewiseError as e:
        raise EdgewiseError(f"'{path}' is not a valid safetensors file: {e}") from None
    if not isinstance(header, dict):
        raise EdgewiseError(f"'{path}' is not a valid safetensors file: header is not an object")
    data_bytes = size - 8 - header_bytes
    entries = {}
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        entries[name] = _entry(path, name, entry, data_bytes)
    return entries


def _entry(path: Path, name: str, entry: object, data_bytes: int) -> HeaderEntry:
    where = f"'{path}' is not a valid safetensors file: tensor '{name}'"
    if not isinstance(entry, dict):
        raise EdgewiseError(f"{where} is described by {type(entry).__name__}, not an object")
    dtype, shape, offsets = entry.get("dtype"), entry.get("shape"), entry.get("data_offsets")
    if not (isinstance(shape, list) and all(type(s) is int and s >= 0 for s in shape)):
        raise EdgewiseError(f"{where} has shape {shape!r}, expected a list of sizes")
    if not (
        isinstance(offsets, list)
        and len(offsets) == 2
        and all(type(o) is int for o in offsets)
        and 0 <= offsets[0] <= offsets[1] <= data_bytes
    ):
        raise EdgewiseError(
            f"{where} has data_offsets {offsets!r}, expected [begin, end] within the "
            f"{data_bytes:,} data bytes"
        )
    if dtype not in _ITEM_BYTES:
        raise EdgewiseError(f"{where} has dtype {dtype!r}; known: {', '.join(_ITEM_BYTES)}")
    nbytes = math.prod(shape) * _ITEM_BYTES[dtype]
    if nbytes != offsets[1] - offsets[0]:
        raise EdgewiseError(
            f"{where} is {dtype} {shape} ({nbytes:,} bytes) but spans "
            f"{offsets[1] - offsets[0]:,} bytes"
        )
    return HeaderEntry(dtype, tuple(shape), nbytes)


# --------------------------------------------------------------------------- names


def _prefixes(names: list[str], depth: int, limit: int) -> list[str]:
    """The most common dotted prefixes of up to `depth` components."""
    counts: Counter[str] = Counter()
    for name in names:
        parts = name.split(".")
        for d in range(1, min(depth, len(parts) - 1) + 1):
            counts[".".join(parts[:d]) + "."] += 1
    return [p for p, _ in counts.most_common(limit)]


def match_names(model_names: set[str], file_names: list[str]) -> tuple[str, str, dict[str, str]]:
    """(strip, add, {model name: file name}): the prefix rule matching the most names.

    A file name under `strip` loses it; every file name gains `add`. Identity wins ties.
    """
    strips = ["", *_KNOWN_PREFIXES, *_ORIGINAL_SD, *_prefixes(file_names, 3, 20)]
    adds = ["", *_prefixes(sorted(model_names), 2, 10)]
    best: tuple[int, str, str, dict[str, str]] = (-1, "", "", {})
    for strip in dict.fromkeys(strips):
        for add in dict.fromkeys(adds):
            if strip and add:
                continue
            mapped = {add + n.removeprefix(strip): n for n in file_names if n.startswith(strip)}
            found = {m: f for m, f in mapped.items() if m in model_names}
            if len(found) > best[0]:
                best = (len(found), strip, add, found)
    return best[1], best[2], best[3]


def _line(kind: str, items: list[str]) -> str:
    shown = ", ".join(items[:SHOWN])
    more = f", ... and {len(items) - SHOWN} more" if len(items) > SHOWN else ""
    return f"\n  {kind} ({len(items)}): {shown}{more}"


# --------------------------------------------------------------------------- loading


def _tied_groups(model: nn.Module) -> list[list[tuple[nn.Module, str, bool]]]:
    """Tensors held by more than one (module, attribute): (module, name, is_parameter)."""
    groups: dict[int, list[tuple[nn.Module, str, bool]]] = {}
    for module in model.modules():
        for name, p in module._parameters.items():
            if p is not None:
                groups.setdefault(id(p), []).append((module, name, True))
        for name, b in module._buffers.items():
            if b is not None:
                groups.setdefault(id(b), []).append((module, name, False))
    return [g for g in groups.values() if len(g) > 1]


def _materialize_empty(model: nn.Module) -> nn.Module:
    """Allocate every meta tensor (uninitialized) on the CPU, keeping tied tensors tied."""
    ties = _tied_groups(model)
    model = model.to_empty(device="cpu")
    for (first, first_name, is_param), *rest in ties:
        store = "_parameters" if is_param else "_buffers"
        for module, name, _ in rest:
            getattr(module, store)[name] = getattr(first, store)[first_name]
    return model


def _non_persistent_buffers(model: nn.Module) -> dict[str, torch.Tensor]:
    out = {}
    for prefix, module in model.named_modules():
        for name in module._non_persistent_buffers_set:
            b = module._buffers.get(name)
            if b is not None:
                out[f"{prefix}.{name}" if prefix else name] = b
    return out


def _restore_position_ids(name: str, buffer: torch.Tensor) -> bool:
    """`position_ids` (transformers' arange buffer) can be rebuilt; other buffers cannot."""
    if not name.endswith("position_ids") or buffer.dtype.is_floating_point or not buffer.ndim:
        return False
    with torch.no_grad():
        buffer.copy_(torch.arange(buffer.shape[-1], dtype=buffer.dtype).expand(buffer.shape))
    return True


def read_weights(model: nn.Module, path: Path) -> tuple[nn.Module, LoadedWeights]:
    """Fill `model` from the safetensors file `path`; every mismatch is an error."""
    from safetensors import SafetensorError, safe_open

    header = read_header(path)
    state = model.state_dict(keep_vars=True)
    non_persistent = {
        n: b for n, b in _non_persistent_buffers(model).items() if n not in state
    }  # rebuilt in __init__, lost on the meta device; some files carry them
    wanted = {**state, **non_persistent}
    strip, add, found = match_names(set(wanted), list(header))
    # a tied tensor appears under every name that holds it; one name in the file fills it
    names_of: dict[int, list[str]] = {}
    for name, t in state.items():
        names_of.setdefault(id(t), []).append(name)
    missing = [names[0] for names in names_of.values() if not any(n in found for n in names)]
    under = [n for n in header if n.startswith(strip)]
    matched_files = set(found.values())
    unexpected = [n for n in under if n not in matched_files]
    misshapen = []
    for model_name, file_name in found.items():
        t, entry = wanted[model_name], header[file_name]
        kind_ok = (entry.dtype in _FLOAT_DTYPES) == t.dtype.is_floating_point
        if tuple(t.shape) != entry.shape or not kind_ok:
            misshapen.append(
                f"{file_name} (expected {_dtype(t.dtype)} {list(t.shape)}, found {entry.dtype} "
                f"{list(entry.shape)})"
            )
    if missing or unexpected or misshapen:
        rule = (
            f" (names matched after stripping '{strip}')"
            if strip
            else f" (names matched after adding '{add}')"
            if add
            else ""
        )
        hint = ""
        if any(n.startswith(_ORIGINAL_SD) for n in header) and len(found) < len(state) / 2:
            hint = (
                "; this is an original Stable Diffusion checkpoint (model.diffusion_model.*): "
                "convert it to diffusers names first (diffusers from_single_file, then "
                "save_pretrained)"
            )
        raise EdgewiseError(
            f"'{path}' does not fit {type(model).__name__}{rule}: fix the file or pick the "
            f"model it was saved from{hint}"
            + (_line("missing", missing) if missing else "")
            + (_line("unexpected", unexpected) if unexpected else "")
            + (_line("misshapen", misshapen) if misshapen else "")
        )
    materialized = any(t.is_meta for t in wanted.values())
    if materialized:
        needed = sum(t.numel() * t.element_size() for t in wanted.values())
        largest = max((header[f].nbytes for f in found.values()), default=0)
        if needed + largest > 0.8 * available_memory_bytes("cpu"):
            raise EdgewiseError(
                f"the model's weights need {needed / 2**30:.1f} GiB but "
                f"{available_memory_bytes('cpu') / 2**30:.1f} GiB is available: load a "
                "smaller model or free memory"
            )
        model = _materialize_empty(model)
        state = model.state_dict(keep_vars=True)
        wanted = {
            **state,
            **{n: b for n, b in _non_persistent_buffers(model).items() if n not in state},
        }
    converted: Counter[str] = Counter()
    bytes_read = 0
    try:
        with safe_open(str(path), framework="pt", device="cpu") as f, torch.no_grad():
            for model_name, file_name in found.items():
                target, tensor = wanted[model_name], f.get_tensor(file_name)
                bytes_read += header[file_name].nbytes
                if tensor.dtype != target.dtype:
                    converted[f"{header[file_name].dtype}->{_dtype(target.dtype)}"] += 1
                target.copy_(tensor.to(target.dtype))
    except SafetensorError as e:
        raise EdgewiseError(f"'{path}' is not a valid safetensors file: {e}") from None
    if materialized:
        unfilled = {n: b for n, b in wanted.items() if n in non_persistent and n not in found}
        rebuilt = rebuild_buffers(model, unfilled)
        lost = [
            n for n, b in unfilled.items() if n not in rebuilt and not _restore_position_ids(n, b)
        ]
        if lost:
            raise EdgewiseError(
                f"'{path}' loaded, but {type(model).__name__} was built on the meta device and "
                "these buffers are computed at construction, not stored: build the model on the "
                f"CPU in your factory{_line('not restorable', lost)}"
            )
    model.eval()
    loaded = LoadedWeights(
        path, len(found), bytes_read, strip, add, len(header) - len(under), dict(converted),
        materialized,
    )  # fmt: skip
    return model, loaded


def load_weights(model: nn.Module, path: Path) -> nn.Module:
    """`model` with the weights of the safetensors file `path` (see `read_weights`)."""
    return read_weights(model, path)[0]


def describe(loaded: LoadedWeights) -> str:
    """One line for people: what was read and every rule applied."""
    parts = [f"{loaded.tensors} tensors ({loaded.bytes_read / 2**20:.1f} MiB) from {loaded.path}"]
    if loaded.strip_prefix:
        parts.append(f"prefix '{loaded.strip_prefix}' stripped")
    if loaded.add_prefix:
        parts.append(f"prefix '{loaded.add_prefix}' added")
    if loaded.ignored:
        parts.append(f"{loaded.ignored} tensors of other components ignored")
    parts.extend(f"{n} converted {kind}" for kind, n in sorted(loaded.converted.items()))
    return "; ".join(parts)


def _dtype(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")
