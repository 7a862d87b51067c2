"""Generated inputs for every loader (hypothesis): valid ones load and round-trip,
mutated ones (types, ranges, structure, nesting, size, encoding) are refused with an
`EdgewiseError`, never another exception; through the CLI, exit 2, one line, no file.

`EDGEWISE_FUZZ_EXAMPLES` sets the cases per property (200 here; `benchmarks/fuzz.py`
runs thousands, with fresh random cases). Derandomized in the suite, so every run sees
the same cases.
"""

from __future__ import annotations

import contextlib
import copy
import json
import math
import os
import re
import struct
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edgewise.errors import EdgewiseError
from edgewise.hardware.spec import load_spec, spec_from_dict
from edgewise.ir.files import parse_yaml
from edgewise.ir.serialize import graph_json, graph_to_dict, load_graph
from edgewise.plan.knobs import load_sensitivity
from edgewise.plan.plan import check_plan, parse_plan, plan_json
from tests.test_hostile import cli

pytestmark = pytest.mark.filterwarnings("ignore::hypothesis.errors.HypothesisWarning")  # big reprs
EXAMPLES = int(os.environ.get("EDGEWISE_FUZZ_EXAMPLES", "200"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize="EDGEWISE_FUZZ_RANDOM" not in os.environ,  # benchmarks/fuzz.py explores
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)

# values of every JSON type, and hostile ones: huge, deep, non-finite, odd text
HOSTILE: list[Any] = [
    True, False, None, -1, 0, 1.5, -1e308, 2**63, 10**30, 10**45, "", "x", "1", "\u0000",
    "é" * 3, [], [1], {}, {"a": 1}, "NaN", "Infinity", [[[[[[[[1]]]]]]]],
]  # fmt: skip


def _wrong(valid_types: tuple[type, ...]) -> st.SearchStrategy[Any]:
    """A hostile value whose JSON type the field does not take."""

    def wrong(v: Any) -> bool:
        if isinstance(v, bool):
            return bool not in valid_types
        return not isinstance(v, valid_types)

    return st.sampled_from([v for v in HOSTILE if wrong(v)])


# --- graph files ---------------------------------------------------------------------------

TARGETS = [("aten.add.Tensor", "elementwise"), ("aten.mm.default", "matmul"),
           ("aten.relu.default", "elementwise"), ("aten.cat.default", "data-movement")]  # fmt: skip


@st.composite
def graphs(draw: st.DrawFn) -> dict[str, Any]:
    """A valid graph file: an input, some weights, and ops that read earlier tensors."""
    n_ops = draw(st.integers(1, 10))
    shape = draw(st.lists(st.integers(1, 8), min_size=1, max_size=3))
    numel = math.prod(shape)
    tensors: list[dict[str, Any]] = []

    def tensor(kind: str, producer: int | None, name: str = "") -> int:
        tid = len(tensors)
        tensors.append({"id": tid, "shape": shape, "dtype": "float32", "kind": kind,
                        "storage_id": tid, "storage_bytes": 4 * numel, "producer": producer,
                        "name": name, "released_after": None})  # fmt: skip
        return tid

    x = tensor("input", None, "x")
    weights = [tensor("parameter", None, f"w{i}") for i in range(draw(st.integers(0, 3)))]
    ops = []
    for i in range(n_ops):
        target, category = draw(st.sampled_from(TARGETS))
        readable = [x, *weights, *(t for op in ops for t in op["outputs"])]
        inputs = draw(st.lists(st.sampled_from(readable), min_size=1, max_size=2))
        out = tensor("activation", i)
        ops.append({"index": i, "target": target, "inputs": inputs, "outputs": [out],
                    "args": [{"tensor": t} for t in inputs] + [draw(st.integers(-5, 5))],
                    "kwargs": {"alpha": draw(st.floats(-2, 2, allow_nan=False))},
                    "scope": draw(st.sampled_from(["", "a", "a.b", "c"])),
                    "category": category})  # fmt: skip
    return {"schema": "edgewise.graph", "version": 1, "model": draw(st.text(max_size=10)),
            "inputs": {"x": shape}, "outputs": [ops[-1]["outputs"][0]], "constants": {},
            "meta": {"batch": 1}, "scopes": {"a": "Block", "a.b": "Conv2d", "c": "Linear"},
            "tensors": tensors, "ops": ops}  # fmt: skip


TENSOR_FIELDS: dict[str, tuple[type, ...]] = {
    "id": (int,), "shape": (list,), "dtype": (str,), "kind": (str,), "storage_id": (int,),
    "storage_bytes": (int,), "producer": (int, type(None)), "name": (str,),
    "released_after": (int, type(None)),
}  # fmt: skip
OP_FIELDS: dict[str, tuple[type, ...]] = {
    "index": (int,), "target": (str,), "inputs": (list,), "outputs": (list,), "args": (list,),
    "kwargs": (dict,), "scope": (str,), "category": (str,),
}  # fmt: skip


@st.composite
def broken_graphs(draw: st.DrawFn) -> bytes:
    """A valid graph file with one mistake that no reader should accept."""
    data = draw(graphs())
    kind = draw(st.sampled_from([
        "tensor-type", "op-type", "negative-id", "huge-dim", "bad-dtype", "bad-kind",
        "dangling-input", "read-later", "swap-ops", "duplicate-id", "missing-key",
        "unknown-key", "top-level", "deep", "truncated", "not-utf8", "activation-no-producer",
        "long-int", "nonfinite-arg",
    ]))  # fmt: skip
    tensors, ops = data["tensors"], data["ops"]
    if kind == "tensor-type":
        field = draw(st.sampled_from(sorted(TENSOR_FIELDS)))
        draw(st.sampled_from(tensors))[field] = draw(_wrong(TENSOR_FIELDS[field]))
    elif kind == "op-type":
        field = draw(st.sampled_from(sorted(OP_FIELDS)))
        draw(st.sampled_from(ops))[field] = draw(_wrong(OP_FIELDS[field]))
    elif kind == "negative-id":
        draw(st.sampled_from(tensors))[draw(st.sampled_from(["id", "storage_id"]))] = -1
    elif kind == "huge-dim":
        draw(st.sampled_from(tensors))["shape"] = [2**41]
    elif kind == "bad-dtype":
        draw(st.sampled_from(tensors))["dtype"] = draw(st.sampled_from(["float33", "", "Float"]))
    elif kind == "bad-kind":
        draw(st.sampled_from(tensors))["kind"] = "weights"
    elif kind == "dangling-input":
        draw(st.sampled_from(ops))["inputs"].append(len(tensors) + 7)
    elif kind == "read-later":
        ops[0]["inputs"].append(ops[-1]["outputs"][0]) if len(ops) > 1 else ops[0]["inputs"].append(
            ops[0]["outputs"][0]
        )
    elif kind == "swap-ops":
        if len(ops) > 1:
            ops[0], ops[1] = ops[1], ops[0]
        else:
            ops[0]["index"] = 1
    elif kind == "duplicate-id":
        tensors.append(dict(tensors[0]))
    elif kind == "missing-key":
        record = draw(st.sampled_from([data, tensors[0], ops[0]]))
        optional = ("producer", "name", "released_after", "outputs", "constants", "meta")
        required = [k for k in record if k not in optional]
        del record[draw(st.sampled_from(required))]
    elif kind == "unknown-key":
        draw(st.sampled_from([data, tensors[0], ops[0]]))["surprise"] = 1
    elif kind == "top-level":
        return json.dumps(draw(st.sampled_from([[data], "graph", 3, None]))).encode()
    elif kind == "deep":
        text = json.dumps(data)
        return text.replace(
            '"meta": {', '"meta": {"deep": ' + "[" * 3000 + "]" * 3000 + ", ", 1
        ).encode()
    elif kind == "truncated":
        text = json.dumps(data)
        return text[: draw(st.integers(0, len(text) - 2))].encode()
    elif kind == "not-utf8":
        text = json.dumps(data).encode()
        at = draw(st.integers(1, len(text) - 1))
        return text[:at] + b"\xff\xfe" + text[at:]
    elif kind == "activation-no-producer":
        tensors[-1]["producer"] = None
    elif kind == "long-int":
        return json.dumps(data).replace('"batch": 1', '"batch": ' + "9" * 5000).encode()
    elif kind == "nonfinite-arg":
        ops[0]["args"].append(float(draw(st.sampled_from(["inf", "-inf", "nan"]))))
    return json.dumps(data).encode()


@FUZZ
@given(data=graphs())
def test_valid_graph_files_load_and_round_trip(tmp_path: Path, data: dict[str, Any]) -> None:
    path = tmp_path / "g.json"
    path.write_text(json.dumps(data))
    graph = load_graph(path)
    assert graph_to_dict(graph) == data
    assert json.loads(graph_json(graph)) == data


@FUZZ
@given(raw=broken_graphs())
def test_broken_graph_files_are_refused(tmp_path: Path, raw: bytes) -> None:
    path = tmp_path / "g.json"
    path.write_bytes(raw)
    with pytest.raises(EdgewiseError):
        load_graph(path)


@FUZZ
@given(data=graphs(), pick=st.data())
def test_type_mistakes_are_reported_where_they_are(
    tmp_path: Path, data: dict[str, Any], pick: st.DataObject
) -> None:
    """One field of the wrong type: the one-line message names its place in the file."""
    which, fields = pick.draw(st.sampled_from([("tensors", TENSOR_FIELDS), ("ops", OP_FIELDS)]))
    i = pick.draw(st.integers(0, len(data[which]) - 1))
    field = pick.draw(st.sampled_from(sorted(fields)))
    data[which][i][field] = pick.draw(_wrong(fields[field]))
    path = tmp_path / "g.json"
    path.write_text(json.dumps(data))
    with pytest.raises(EdgewiseError, match=re.escape(f"{which}[{i}].{field}: expected")) as e:
        load_graph(path)
    assert "\n" not in str(e.value)


# --- plan files ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def planned(tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, dict[str, Any]]:
    root = tmp_path_factory.mktemp("plans")
    graph, plan = root / "unet.json", root / "plan.json"
    assert cli("capture", "--module", "tests.models:tiny_unet", "-o", str(graph))[0] == 0
    code, _, err = cli("plan", str(graph), "--set", "sram_bytes=64KiB", "--long-lived", "3",
                       "-o", str(plan))  # fmt: skip
    assert code == 0, err
    return load_graph(graph), json.loads(plan.read_text())


PLAN_TENSOR_FIELDS: dict[str, tuple[type, ...]] = {
    "storage_id": (int,), "name": (str,), "nbytes": (int,), "action": (str,),
    "gap_start": (int,), "gap_end": (int,), "recompute_at": (int,), "segment": (list,),
    "sources": (list,), "gap": (int,),
}  # fmt: skip


@st.composite
def plan_variants(draw: st.DrawFn, base: dict[str, Any]) -> dict[str, Any]:
    """The planner's plan with decisions changed within what the graph allows."""
    plan = copy.deepcopy(base)
    for t in plan["tensors"]:
        if t["action"] != "recompute":
            t["action"] = draw(st.sampled_from(["keep", "spill"]))
    sched = plan["schedule"]
    planned = {t["gap"] for t in plan["tensors"]}
    free = [g for g in range(sched["gap_count"]) if g not in planned]
    sched["off_gaps"] = sorted(draw(st.sets(st.sampled_from(free), max_size=5))) if free else []
    sched["tiled_ops"] = sorted(draw(st.sets(st.integers(0, plan["op_count"] - 1), max_size=4)))
    plan["note"] = draw(st.text(max_size=20))
    return plan


@FUZZ
@given(data=st.data())
def test_valid_plans_load_and_round_trip(planned: tuple[Any, dict[str, Any]], data: Any) -> None:
    graph, base = planned
    plan_dict = data.draw(plan_variants(base))
    plan = parse_plan(json.dumps(plan_dict))
    check_plan(plan, graph)
    assert json.loads(plan_json(plan)) == plan_dict


@FUZZ
@given(data=st.data())
def test_broken_plans_are_refused(planned: tuple[Any, dict[str, Any]], data: Any) -> None:
    graph, base = planned
    plan = copy.deepcopy(base)
    t = data.draw(st.sampled_from(plan["tensors"]))
    kind = data.draw(
        st.sampled_from(
            [
                "type",
                "range",
                "storage",
                "gap-order",
                "schedule",
                "weights",
                "attention",
                "schema",
                "top",
                "precision",
            ]
        )
    )
    if kind == "type":
        field = data.draw(st.sampled_from(sorted(PLAN_TENSOR_FIELDS)))
        t[field] = data.draw(_wrong(PLAN_TENSOR_FIELDS[field]))
    elif kind == "range":
        field = data.draw(st.sampled_from(["gap_start", "gap_end", "storage_id", "nbytes"]))
        t[field] = data.draw(st.sampled_from([-5, -2, 10**7 if field != "nbytes" else -1]))
    elif kind == "storage":
        t["storage_id"] = 10**6 + data.draw(st.integers(0, 100))
    elif kind == "gap-order":
        t["gap_start"], t["gap_end"] = t["gap_end"], t["gap_start"]
    elif kind == "schedule":
        key = data.draw(st.sampled_from(["tiled_ops", "off_gaps"]))
        plan["schedule"][key] = [data.draw(st.sampled_from([-1, 10**7, "1", None, 1.5]))]
    elif kind == "weights":
        plan["weights"] = data.draw(st.sampled_from([None, [], {"nope": "int8"}, {"enc1": "int3"}]))
    elif kind == "attention":
        plan["attention"] = [{"op": data.draw(st.sampled_from([-1, 0, 10**7])), "scope": "",
                              "mode": data.draw(st.sampled_from(["fused", "bogus"])),
                              "scores_bytes": data.draw(st.sampled_from([-1.0, 1.0])),
                              "reread_bytes": 0.0}]  # fmt: skip
    elif kind == "schema":
        plan[data.draw(st.sampled_from(["schema", "version"]))] = data.draw(
            st.sampled_from(["edgewise.graph", 1, 3, None])
        )
    elif kind == "top":
        plan = data.draw(st.sampled_from([[plan], None, "plan"]))  # type: ignore[assignment]
    elif kind == "precision":
        plan["precision"] = data.draw(st.sampled_from([None, {"weights": "int8"}, "int8"]))
    with pytest.raises(EdgewiseError):
        check_plan(parse_plan(json.dumps(plan)), graph)


# --- sensitivity files ---------------------------------------------------------------------

ERRORS = st.floats(0, 1e6, allow_nan=False, allow_infinity=False)
LAYERS = st.dictionaries(
    st.text(max_size=12),
    st.dictionaries(st.sampled_from(["int8", "int4", "int2"]), ERRORS, max_size=3),
    max_size=6,
)


@FUZZ
@given(layers=LAYERS)
def test_valid_sensitivity_files_load(tmp_path: Path, layers: dict[str, Any]) -> None:
    path = tmp_path / "s.json"
    path.write_text(json.dumps({"metric": "relative MSE", "layers": layers}))
    assert load_sensitivity(path) == layers


@FUZZ
@given(
    layers=LAYERS,
    bad=st.sampled_from(
        [
            "-1e-9",
            "NaN",
            "Infinity",
            "-Infinity",
            "1e999",
            "true",
            "null",
            '"0.1"',
            "[0.1]",
            "9" * 5000,
        ]
    ),
)
def test_broken_sensitivity_files_are_refused(
    tmp_path: Path, layers: dict[str, Any], bad: str
) -> None:
    text = json.dumps({"layers": {**layers, "victim": {"int8": 0.5}}}).replace("0.5", bad, 1)
    path = tmp_path / "s.json"
    path.write_text(text)
    with pytest.raises(EdgewiseError):
        load_sensitivity(path)


# --- hardware specs and --set --------------------------------------------------------------

BASE_SPEC = parse_yaml(
    (Path(__file__).parents[1] / "src/edgewise/hardware/presets/generic-npu.yaml").read_text(),
    "generic-npu",
)
NUMBER_FIELDS = [
    "clock_hz",
    "vector_ops_per_cycle",
    "sram_bytes",
    "sram_bandwidth_bytes_per_s",
    "sram_energy_pj_per_byte",
    "vector_energy_pj_per_op",
    "static_power_w",
]


@FUZZ
@given(
    sram=st.integers(1, 2**40),
    clock=st.floats(1e6, 5e9),
    unit=st.sampled_from(["B", "KiB", "MiB"]),
)
def test_valid_specs_load(sram: int, clock: float, unit: str) -> None:
    raw = {**copy.deepcopy(BASE_SPEC), "clock_hz": clock}
    scale = {"B": 1, "KiB": 2**10, "MiB": 2**20}[unit]
    raw["sram_bytes"] = f"{max(1, sram // scale)} {unit}"
    spec = spec_from_dict(raw)
    assert spec.sram_bytes == max(1, sram // scale) * scale and spec.clock_hz == clock


@FUZZ
@given(
    field=st.sampled_from(NUMBER_FIELDS),
    bad=st.sampled_from([True, False, -1, -0.5, "NaN", ".inf", "1e999", 10**45, "4 parsecs", [1],
                         {"a": 1}, "", "-3 MiB"]),
)  # fmt: skip
def test_broken_specs_are_refused(field: str, bad: Any) -> None:
    raw = {**copy.deepcopy(BASE_SPEC), field: bad}
    with pytest.raises(EdgewiseError):
        spec_from_dict(raw)


@FUZZ
@given(text=st.text(max_size=40))
def test_any_set_text_loads_or_is_refused(text: str) -> None:
    """Whatever a user types after --set: a spec, or an EdgewiseError, nothing else."""
    try:
        load_spec("generic-npu", [text])
    except EdgewiseError as e:
        assert "\n" not in str(e).replace("\\n", "")


@FUZZ
@given(kib=st.integers(1, 2**30), spaced=st.booleans())
def test_set_sizes_with_units(kib: int, spaced: bool) -> None:
    spec = load_spec("generic-npu", [f"sram_bytes={kib}{' ' if spaced else ''}KiB"])
    assert spec.sram_bytes == kib * 1024


# --- safetensors headers -------------------------------------------------------------------

JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4)
    ),
    max_leaves=20,
)


@FUZZ
@given(
    header=st.dictionaries(st.text(max_size=8), JSONISH, max_size=4), tail=st.binary(max_size=64)
)
def test_safetensors_headers_load_or_are_refused(
    tmp_path: Path, header: dict[str, Any], tail: bytes
) -> None:
    from edgewise.execute.weights import read_header

    blob = json.dumps(header).encode()
    path = tmp_path / "w.safetensors"
    path.write_bytes(struct.pack("<Q", len(blob)) + blob + tail)
    with contextlib.suppress(EdgewiseError):  # refused is fine; any other exception is not
        read_header(path)


# --- the command line ----------------------------------------------------------------------

NUMBERISH = st.one_of(
    st.integers(-(10**25), 10**25).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(str),
    st.sampled_from(["", "abc", "1e999", "0x10", "1_000", "--", "nan", "-0", "١٢"]),
)


@pytest.fixture(scope="module")
def saved_graph(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("cli") / "tiny.json"
    assert cli("capture", "--module", "tests.models:tiny_cnn", "-o", str(path))[0] == 0
    return path


@FUZZ
@given(option=st.sampled_from(["--rows", "--depth"]), value=NUMBERISH)
def test_cli_numbers_exit_0_or_2_with_one_line(
    saved_graph: Path, tmp_path: Path, option: str, value: str
) -> None:
    out = tmp_path / f"out-{abs(hash((option, value)))}.json"
    code, _, err = cli("profile", str(saved_graph), option, value, "--json", str(out))
    assert code in (0, 2), err
    if code == 2:
        assert len(err.strip().splitlines()) == 1 and err.startswith("edgewise: error: ")
        assert not out.exists()
    else:
        assert json.loads(out.read_text())["rows"] is not None
        out.unlink()
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
