"""A saved graph reloads to the same graph and the same profile."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import pytest

from edgewise import EdgewiseError, capture, profile
from edgewise.ir.serialize import graph_to_dict, load_graph, save_graph
from tests.models import tiny_cnn


def test_round_trip_preserves_graph_and_profile(tmp_path: Path) -> None:
    model, args = tiny_cnn()
    graph = capture(model, *args, name="tiny")
    path = tmp_path / "g.json"
    save_graph(graph, path)
    again = load_graph(path)
    assert graph_to_dict(again) == graph_to_dict(graph)
    assert again.ops == graph.ops
    assert again.tensors == graph.tensors
    for by in ("op", "layer", "block"):
        assert asdict(profile(again, by=by)) == asdict(profile(graph, by=by))


def test_schema_is_versioned(tmp_path: Path) -> None:
    model, args = tiny_cnn()
    data = graph_to_dict(capture(model, *args))
    assert data["schema"] == "edgewise.graph" and data["version"] == 1
    data["version"] = 99
    path = tmp_path / "future.json"
    path.write_text(json.dumps(data))
    with pytest.raises(EdgewiseError, match="version 99"):
        load_graph(path)


def test_bad_files_are_one_line_errors(tmp_path: Path) -> None:
    with pytest.raises(EdgewiseError, match="does not exist"):
        load_graph(tmp_path / "missing.json")
    junk = tmp_path / "junk.json"
    junk.write_text("{not json")
    with pytest.raises(EdgewiseError, match="not valid JSON"):
        load_graph(junk)
    other = tmp_path / "other.json"
    other.write_text('{"schema": "something-else"}')
    with pytest.raises(EdgewiseError, match="not an edgewise graph"):
        load_graph(other)
