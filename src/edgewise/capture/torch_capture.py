"""Capture a PyTorch model's ATen op graph without allocating a single weight byte.

How: parameters and buffers are replaced by fake tensors (shape, dtype and strides, no
data), the forward runs once under `FakeTensorMode` with autograd off, and a
`TorchDispatchMode` on top records every ATen op that reaches the dispatcher, with its
tensor and scalar arguments. Global module hooks keep a stack of the module scopes that
are running, so each op knows the qualified name of the module that ran it. Composite
ops are seen decomposed (`linear` on 3-D input arrives as view + mm + view); fused
kernels such as scaled-dot-product attention arrive whole.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import weakref
from collections import Counter
from collections.abc import Iterator, Mapping
from typing import Any

import torch
from msgspec.structs import replace
from torch import nn
from torch._subclasses.fake_tensor import FakeTensor, FakeTensorMode, unset_fake_temporarily
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten, tree_map, tree_map_with_path, tree_unflatten
from torch.utils.weak import WeakIdKeyDictionary

from edgewise.errors import EdgewiseError
from edgewise.ir.categories import category_of
from edgewise.ir.graph import Graph, Op, Tensor, TensorKind, TensorRef
from edgewise.ir.vocab import STRING_PADDING_CONVS

MAX_CONSTANT_ELEMENTS = 4096  # constants this small keep their values in the graph
# Tensors computed from constants alone (index tables, masks from arange) up to this size
# are also computed for real, so data-dependent ops on them (.item(), nonzero, boolean
# indexing) work; ops that draw random numbers never are.
MAX_COMPUTED_ELEMENTS = 1 << 20
_RANDOM = frozenset(("rand", "randn", "randint", "randperm", "normal", "uniform", "bernoulli",
                     "rand_like", "randn_like", "randint_like", "multinomial", "dropout",
                     "native_dropout", "exponential", "geometric", "cauchy",
                     "log_normal"))  # fmt: skip


def _dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")


class _Recorder(TorchDispatchMode):
    """Records each ATen op with its arguments, output tensors and running scope."""

    def __init__(self, scope_stack: list[str], mode: FakeTensorMode) -> None:
        super().__init__()
        self.scope_stack = scope_stack
        self.mode = mode
        self.values: WeakIdKeyDictionary = WeakIdKeyDictionary()  # fake -> its real value
        self.ids: WeakIdKeyDictionary = WeakIdKeyDictionary()  # tensor object -> latest id
        self.storage_ids: dict[int, int] = {}  # live storage's address -> storage id
        self.holders: Counter[int] = Counter()  # storage address -> registered live tensors
        self.tensors: dict[int, Tensor] = {}
        self.ops: list[Op] = []
        self.released_after: dict[int, int] = {}  # tensor id -> last op while it was held
        self.storage_counter = itertools.count()
        self.finalizers: list[weakref.finalize] = []
        self.constants: dict[int, tuple[Any, ...]] = {}  # small constants' values, to replay

    # --- tensor bookkeeping ---
    def register(
        self, t: torch.Tensor, kind: TensorKind, producer: int | None = None, name: str = ""
    ) -> int:
        storage = t.untyped_storage()
        key = storage._cdata
        if key not in self.storage_ids:
            self.storage_ids[key] = next(self.storage_counter)
        tid = len(self.tensors)
        self.tensors[tid] = Tensor(
            id=tid,
            shape=tuple(int(s) for s in t.shape),
            dtype=_dtype_name(t.dtype),
            kind=kind,
            storage_id=self.storage_ids[key],
            storage_bytes=int(storage.nbytes()),
            producer=producer,
            name=name,
        )
        self.ids[t] = tid
        self.holders[key] += 1
        # The tensor object dies when PyTorch lets go of it: that is its eager lifetime.
        self.finalizers.append(weakref.finalize(t, self._release, tid, key))
        return tid

    def _release(self, tid: int, key: int) -> None:
        self.released_after[tid] = len(self.ops) - 1
        self.holders[key] -= 1
        if self.holders[key] == 0:  # the storage is freed; its address may be reused
            del self.holders[key]
            del self.storage_ids[key]

    def finish(self) -> dict[int, Tensor]:
        """Stop watching lifetimes; return the tensors with their eager lifetimes."""
        for f in self.finalizers:
            f.detach()
        return {
            tid: replace(t, released_after=self.released_after[tid])
            if tid in self.released_after
            else t
            for tid, t in self.tensors.items()
        }

    def _ref(self, t: torch.Tensor) -> int:
        tid = self.ids.get(t)
        if tid is None:  # a tensor made outside any op we saw (a constant)
            tid = self.register(t, TensorKind.CONSTANT)
            value = t if not isinstance(t, FakeTensor) else getattr(t, "constant", None)
            if isinstance(value, FakeTensor) or (value is not None and value.is_meta):
                value = None  # a tensor made under the fake mode (an index table): no values
            if value is not None and value.numel() <= MAX_CONSTANT_ELEMENTS:
                with unset_fake_temporarily():  # read the values, not through the fake mode
                    self.constants[tid] = tuple(value.detach().flatten().tolist())
        return tid

    def _encode(self, value: Any) -> Any:
        """Make an argument JSON-ready: tensors become refs, torch enums become strings."""
        if isinstance(value, torch.Tensor):
            return TensorRef(self._ref(value))
        if isinstance(value, (list, tuple)):
            return tuple(self._encode(v) for v in value)
        if value is None or isinstance(value, (bool, int, float, str)):
            return value
        if isinstance(value, torch.dtype):
            return _dtype_name(value)
        return str(value)  # device, layout, memory_format, SymInt printed

    # --- values of tensors computed from constants alone ---
    def _value(self, t: torch.Tensor) -> torch.Tensor | None:
        """The real value behind `t`, if it depends on constants only (None otherwise)."""
        if not isinstance(t, FakeTensor):
            return None if t.is_meta else t  # a real constant the forward made or holds
        value = self.values.get(t)
        if value is None and getattr(t, "constant", None) is not None:
            value = t.constant
        return value

    def _real_run(self, func, flat, spec):  # type: ignore[no-untyped-def]
        """Run `func` on the real values of its tensor arguments (`flat`, the flattened
        args and kwargs), when all of them have one (small, and no random op); None when it
        cannot."""
        real = []
        for a in flat:
            if isinstance(a, torch.Tensor):
                value = self._value(a)
                if value is None or value.numel() > MAX_COMPUTED_ELEMENTS:
                    return None
                a = value
            real.append(a)
        if func._schema.name.split("::")[-1].rstrip("_") in _RANDOM:
            return None
        real_args, real_kwargs = tree_unflatten(real, spec)
        try:
            with unset_fake_temporarily():
                result = func(*real_args, **real_kwargs)
        except Exception:
            return None
        outs = [o for o in tree_flatten(result)[0] if isinstance(o, torch.Tensor)]
        if any(o.is_meta or o.numel() > MAX_COMPUTED_ELEMENTS for o in outs):
            return None
        return result

    # --- dispatch ---
    def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # type: ignore[no-untyped-def]
        kwargs = kwargs or {}
        scope = self.scope_stack[-1] if self.scope_stack else ""
        flat, spec = tree_flatten((args, kwargs))
        real = self._real_run(func, flat, spec)
        try:
            out = func(*args, **kwargs)
        except Exception as e:
            if real is not None:  # data-dependent, but on constants only: its real result
                out = tree_map(
                    lambda r: self.mode.from_tensor(r) if isinstance(r, torch.Tensor) else r, real
                )
            else:
                where = scope or "<root module>"
                hint = (
                    "; the op depends on the input's values, which a capture does not have: "
                    "make the shape depend on shapes only"
                    if "DataDependent" in type(e).__name__ or "DynamicOutput" in type(e).__name__
                    else ""
                )
                raise EdgewiseError(
                    f"the forward failed in module '{where}' at op {func}: "
                    f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}{hint}"
                ) from e
        outs = [o for o in tree_flatten(out)[0] if isinstance(o, torch.Tensor)]
        if real is not None:
            reals = [o for o in tree_flatten(real)[0] if isinstance(o, torch.Tensor)]
            for fake, value in zip(outs, reals, strict=False):
                if isinstance(fake, FakeTensor):
                    self.values[fake] = value
        if not outs:  # metadata queries (aten.device, sym_size): no data, no cost
            return out
        in_tensors = [a for a in flat if isinstance(a, torch.Tensor)]
        enc_args = self._encode(tuple(args))
        enc_kwargs = {k: self._encode(v) for k, v in kwargs.items()}
        inputs = tuple(self._ref(t) for t in in_tensors)
        index = len(self.ops)
        outputs = tuple(self.register(o, TensorKind.ACTIVATION, producer=index) for o in outs)
        namespace, _, name = func._schema.name.rpartition("::")
        self.ops.append(
            Op(
                index=index,
                target=f"{namespace or 'aten'}.{name}.{func._overloadname}",
                inputs=inputs,
                outputs=outputs,
                args=enc_args,
                kwargs=enc_kwargs,
                scope=scope,
                category=category_of(name),
            )
        )
        return out


@contextlib.contextmanager
def _scope_tracking(model: nn.Module, stack: list[str], types: dict[str, str]) -> Iterator[None]:
    """Push each module's qualified name while its forward runs."""
    names = {id(m): n for n, m in model.named_modules(remove_duplicate=False)}

    def push(module: nn.Module, _args: Any) -> None:
        name = names.get(id(module))
        if name is None:  # a module created during the forward: nest under the caller
            name = (stack[-1] + "." if stack and stack[-1] else "") + type(module).__name__
        stack.append(name)
        types.setdefault(name, f"{type(module).__module__}.{type(module).__qualname__}")

    def pop(module: nn.Module, _args: Any, _out: Any) -> None:
        if stack:
            stack.pop()

    pre = nn.modules.module.register_module_forward_pre_hook(push)
    post = nn.modules.module.register_module_forward_hook(pop)
    try:
        yield
    finally:
        pre.remove()
        post.remove()


@contextlib.contextmanager
def _quiet_fake_tensor_log() -> Iterator[None]:
    """FakeTensor logs a traceback when an op fails; we report it as one line instead."""
    logger = logging.getLogger("torch._subclasses.fake_tensor")
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        logger.setLevel(level)


def _fake_like(t: torch.Tensor, mode: FakeTensorMode, device: torch.device) -> torch.Tensor:
    """A fake tensor with t's shape, strides and dtype; no data is allocated or copied (a
    meta tensor wrapped as on `device`, without a dispatch through the fake mode)."""
    shell = torch.empty_strided(t.shape, t.stride(), dtype=t.dtype, device="meta")
    return mode.fake_tensor_converter.from_meta_and_device(mode, shell, device)


def _path_name(path: tuple[Any, ...]) -> str:
    """('text_embeds',) key path -> '.text_embeds'; sequence positions -> '.0'."""
    parts = (getattr(k, "key", getattr(k, "idx", getattr(k, "name", k))) for k in path)
    return "".join(f".{p}" for p in parts)


def _input_device(args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> torch.device:
    for a in tree_flatten((args, kwargs))[0]:
        if isinstance(a, torch.Tensor) and a.device.type != "meta":
            return a.device
    return torch.device("cpu")


def capture(
    model: nn.Module,
    *args: Any,
    name: str | None = None,
    meta: Mapping[str, Any] | None = None,
    **kwargs: Any,
) -> Graph:
    """Run `model(*args, **kwargs)` once on fake tensors and return its op graph.

    The model's parameters may live on the meta device (build the model under
    `torch.device("meta")` to never allocate weights) or be real; either way they are
    replaced by fake tensors for the run. Example inputs may be real, meta or fake.
    """
    model.eval()
    device = _input_device(args, kwargs)
    mode = FakeTensorMode(allow_non_fake_inputs=True)
    stack: list[str] = []
    scopes: dict[str, str] = {"": f"{type(model).__module__}.{type(model).__qualname__}"}
    recorder = _Recorder(stack, mode)

    state = {
        **{n: (p, TensorKind.PARAMETER) for n, p in model.named_parameters(remove_duplicate=False)},
        **{n: (b, TensorKind.BUFFER) for n, b in model.named_buffers(remove_duplicate=False)},
    }
    fake_state: dict[str, torch.Tensor] = {}
    by_object: dict[int, torch.Tensor] = {}  # tied weights stay tied
    for qual_name, (t, kind) in state.items():
        if id(t) not in by_object:
            by_object[id(t)] = _fake_like(t, mode, device)
            recorder.register(by_object[id(t)], kind, name=qual_name)
        fake_state[qual_name] = by_object[id(t)]

    input_shapes: dict[str, tuple[int, ...]] = {}

    def fake_input(path: str, value: Any) -> Any:
        if not isinstance(value, torch.Tensor):
            return value
        fake = _fake_like(value, mode, device)
        recorder.register(fake, TensorKind.INPUT, name=path)
        input_shapes[path] = tuple(int(s) for s in value.shape)
        return fake

    def named(prefix: str, value: Any) -> Any:  # nested inputs are named by their path
        return tree_map_with_path(lambda path, v: fake_input(prefix + _path_name(path), v), value)

    fake_args = tuple(named(f"arg{i}", a) for i, a in enumerate(args))
    fake_kwargs = {k: named(k, v) for k, v in kwargs.items()}

    with (
        torch.no_grad(),
        mode,
        recorder,
        _scope_tracking(model, stack, scopes),
        _quiet_fake_tensor_log(),
    ):
        try:
            result = torch.func.functional_call(
                model, fake_state, fake_args, fake_kwargs, strict=False
            )
        except EdgewiseError:
            raise
        except Exception as e:
            where = stack[-1] if stack else "<root module>"
            module_kind = scopes.get(where, type(model).__name__).rsplit(".", 1)[-1]
            raise EdgewiseError(
                f"the forward failed in module '{where}' ({module_kind}): "
                f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
            ) from e

    outputs = tuple(recorder.ids[t] for t in tree_flatten(result)[0] if isinstance(t, torch.Tensor))
    meta = dict(meta or {})
    convs = (n for n, m in model.named_modules() if isinstance(m, nn.modules.conv._ConvNd))
    padded = sorted(n for n in convs if isinstance(model.get_submodule(n).padding, str))
    if padded:  # padding="same"/"valid": traced as aten::_convolution_mode (fvcore: uncounted)
        meta[STRING_PADDING_CONVS] = padded
    return Graph(
        model=name or type(model).__name__,
        ops=tuple(recorder.ops),
        tensors=recorder.finish(),
        outputs=outputs,
        constants=recorder.constants,
        scopes=scopes,
        inputs=input_shapes,
        meta=meta,
    )
