"""Loading real weights: safetensors only, names mapped, every mismatch named."""

from __future__ import annotations

import json
import pickle
import struct
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file, save_model
from torch import nn

from edgewise.errors import EdgewiseError
from edgewise.execute.weights import load_weights, read_header, read_weights
from tests.models import TinyCNN


def _trained_like(seed: int = 0) -> TinyCNN:
    """A TinyCNN with non-trivial parameters and BN statistics."""
    torch.manual_seed(seed)
    model = TinyCNN()
    with torch.no_grad():
        model.get_buffer("bn.running_mean").uniform_(-1, 1)
        model.get_buffer("bn.running_var").uniform_(0.5, 2)
        model.get_buffer("bn.num_batches_tracked").fill_(7)
    return model.eval()


def _meta_cnn() -> TinyCNN:
    with torch.device("meta"):
        return TinyCNN()


def _save(state: dict[str, torch.Tensor], path: Path) -> Path:
    save_file({k: v.contiguous() for k, v in state.items()}, str(path))
    return path


def test_meta_model_gets_the_saved_model_exactly(tmp_path: Path) -> None:
    saved = _trained_like()
    path = _save(saved.state_dict(), tmp_path / "cnn.safetensors")
    model, loaded = read_weights(_meta_cnn(), path)
    assert loaded.materialized and loaded.tensors == len(saved.state_dict())
    assert not any(t.is_meta for t in model.state_dict().values())
    x = torch.randn(2, 3, 16, 16)
    with torch.no_grad():
        assert torch.equal(model(x), saved(x))
    assert int(model.get_buffer("bn.num_batches_tracked")) == 7


def test_wrong_shapes_are_named_with_expected_and_found(tmp_path: Path) -> None:
    state = _trained_like().state_dict()
    state["head.weight"] = torch.zeros(10, 4)
    state["stem.bias"] = torch.zeros(9)
    path = _save(state, tmp_path / "bad.safetensors")
    with pytest.raises(EdgewiseError) as e:
        load_weights(_meta_cnn(), path)
    message = str(e.value)
    assert "misshapen (2)" in message
    assert "head.weight (expected float32 [10, 8], found F32 [10, 4])" in message
    assert "stem.bias (expected float32 [8], found F32 [9])" in message
    assert "missing" not in message and "unexpected" not in message


def test_missing_and_unexpected_keys_are_listed_one_line_each(tmp_path: Path) -> None:
    state = _trained_like().state_dict()
    del state["body.weight"]
    state["extra.weight"] = torch.zeros(3)
    path = _save(state, tmp_path / "odd.safetensors")
    with pytest.raises(EdgewiseError) as e:
        load_weights(_meta_cnn(), path)
    lines = str(e.value).splitlines()
    assert "  missing (1): body.weight" in lines
    assert "  unexpected (1): extra.weight" in lines
    assert len(lines) == 3


def test_long_lists_are_truncated_with_a_count(tmp_path: Path) -> None:
    path = _save({f"other.{i}": torch.zeros(1) for i in range(20)}, tmp_path / "x.safetensors")
    with pytest.raises(EdgewiseError) as e:
        load_weights(_meta_cnn(), path)
    assert "unexpected (20): " in str(e.value)
    assert "... and 12 more" in str(e.value)
    assert "missing (10): " in str(e.value)  # 7 parameters and 3 BN buffers


def test_prefix_is_stripped_and_other_components_ignored(tmp_path: Path) -> None:
    saved = _trained_like()
    state = {f"unet.{k}": v for k, v in saved.state_dict().items()}
    state["vae.decoder.weight"] = torch.zeros(2, 2)
    model, loaded = read_weights(_meta_cnn(), _save(state, tmp_path / "pipe.safetensors"))
    assert (loaded.strip_prefix, loaded.add_prefix, loaded.ignored) == ("unet.", "", 1)
    assert torch.equal(model.get_parameter("head.weight"), saved.head.weight)


def test_prefix_is_added_when_the_model_wraps_the_saved_one(tmp_path: Path) -> None:
    saved = _trained_like()
    with torch.device("meta"):
        wrapper = nn.Sequential()
        wrapper.add_module("inner", TinyCNN())
    model, loaded = read_weights(wrapper, _save(saved.state_dict(), tmp_path / "w.safetensors"))
    assert loaded.add_prefix == "inner."
    assert torch.equal(model.get_parameter("inner.stem.weight"), saved.stem.weight)


def test_original_sd_layout_gets_a_conversion_hint(tmp_path: Path) -> None:
    state = {"model.diffusion_model.input_blocks.0.0.weight": torch.zeros(2)}
    with pytest.raises(EdgewiseError, match="original Stable Diffusion checkpoint"):
        load_weights(_meta_cnn(), _save(state, tmp_path / "sd.safetensors"))


def test_dtype_is_converted_to_the_models(tmp_path: Path) -> None:
    saved = _trained_like()
    half = {k: v.half() if v.is_floating_point() else v for k, v in saved.state_dict().items()}
    model, loaded = read_weights(_meta_cnn(), _save(half, tmp_path / "half.safetensors"))
    assert loaded.converted == {"F16->float32": 9}
    head = model.get_parameter("head.weight")
    assert head.dtype == torch.float32
    assert torch.equal(head, saved.head.weight.half().float())


class Tied(nn.Module):
    position_ids: torch.Tensor

    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Embedding(10, 4)
        self.out = nn.Linear(4, 10, bias=False)
        self.out.weight = self.embed.weight
        self.register_buffer("position_ids", torch.arange(6).expand(1, -1), persistent=False)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.out(self.embed(ids + self.position_ids))


def test_tied_weights_stay_tied_and_position_ids_are_rebuilt(tmp_path: Path) -> None:
    torch.manual_seed(0)
    saved = Tied()
    path = tmp_path / "tied.safetensors"
    save_model(saved, str(path))  # stores the shared tensor under one name
    with torch.device("meta"):
        empty = Tied()
    model = load_weights(empty, path)
    assert model.get_submodule("out").weight is model.get_submodule("embed").weight
    assert torch.equal(model.get_buffer("position_ids"), torch.arange(6).expand(1, -1))
    ids = torch.zeros(1, 6, dtype=torch.int64)
    with torch.no_grad():
        assert torch.equal(model(ids), saved(ids))


def test_other_non_persistent_buffers_are_refused_on_meta(tmp_path: Path) -> None:
    class Scaled(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.lin = nn.Linear(2, 2)
            self.register_buffer("table", torch.linspace(0, 1, 2), persistent=False)

    path = _save(Scaled().state_dict(), tmp_path / "s.safetensors")
    with torch.device("meta"):
        empty = Scaled()
    with pytest.raises(EdgewiseError, match=r"not restorable \(1\): table"):
        load_weights(empty, path)


# --------------------------------------------------------------------------- untrusted files


def test_pickle_is_refused_with_the_reason(tmp_path: Path) -> None:
    state = _trained_like().state_dict()
    for name in ("weights.pkl", "disguised.safetensors"):
        path = tmp_path / name
        with path.open("wb") as f:
            pickle.dump(state, f)
        with pytest.raises(EdgewiseError) as e:
            load_weights(_meta_cnn(), path)
        assert "is a pickle" in str(e.value) and "run code" in str(e.value)
        assert "save_file" in str(e.value)  # how to convert
        assert "\n" not in str(e.value)


def test_torch_save_files_are_refused_by_content_and_suffix(tmp_path: Path) -> None:
    state = _trained_like().state_dict()
    for name in ("model.pt", "renamed.safetensors"):
        torch.save(state, tmp_path / name)
        with pytest.raises(EdgewiseError, match=r"zip archive .*run code"):
            load_weights(_meta_cnn(), tmp_path / name)
    path = _save(state, tmp_path / "real.ckpt")  # safetensors inside, pickle name
    with pytest.raises(EdgewiseError, match=r"suffix of a pickle checkpoint \('\.ckpt'\)"):
        load_weights(_meta_cnn(), path)


def _raw(path: Path, header: object, data: bytes = b"", length: int | None = None) -> Path:
    text = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(text) if length is None else length) + text + data)
    return path


@pytest.mark.parametrize(
    ("header", "data", "length", "expected"),
    [
        ({}, b"", 10**12, "header claims 1,000,000,000,000 bytes"),
        ("[1, 2]", b"", None, "header is not an object"),
        ({"w": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}}, b"\0" * 8, None,
         "data_offsets [0, 16], expected [begin, end] within the 8 data bytes"),
        ({"w": {"dtype": "F32", "shape": [4], "data_offsets": [0, 8]}}, b"\0" * 8, None,
         "is F32 [4] (16 bytes) but spans 8 bytes"),
        ({"w": {"dtype": "Q3", "shape": [1], "data_offsets": [0, 1]}}, b"\0", None,
         "dtype 'Q3'"),
        ({"w": {"dtype": "F32", "shape": [-1], "data_offsets": [0, 0]}}, b"", None,
         "shape [-1]"),
    ],
)  # fmt: skip
def test_invalid_headers_are_refused_before_reading_data(
    tmp_path: Path, header: object, data: bytes, length: int | None, expected: str
) -> None:
    if header == "[1, 2]":
        header = [1, 2]
    path = _raw(tmp_path / "h.safetensors", header, data, length)
    with pytest.raises(EdgewiseError, match="not a valid safetensors file") as e:
        read_header(path)
    assert expected in str(e.value)


def test_missing_file_and_other_suffixes(tmp_path: Path) -> None:
    with pytest.raises(EdgewiseError, match="does not exist"):
        load_weights(_meta_cnn(), tmp_path / "nope.safetensors")
    (tmp_path / "w.npz").write_bytes(b"\x93NUMPY....")
    with pytest.raises(EdgewiseError, match=r"must be a \.safetensors file"):
        load_weights(_meta_cnn(), tmp_path / "w.npz")
