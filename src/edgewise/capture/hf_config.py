"""A Hugging Face model from its `config.json` alone: built on the meta device, no weights.

MODEL may be a `config.json` (as shipped beside a checkpoint, or written by
`save_pretrained` / `save_config`) or a folder holding one. The class comes from the
config: `_class_name` for diffusers (`UNet2DConditionModel`, `AutoencoderKL`, ...),
`architectures[0]` for transformers (`ViTModel`, `LlamaForCausalLM`, ...); a class the
installed library does not have is a one-line error that names it. Inputs, batch from
`--batch` (1):
- a diffusers U-Net: latent (B, in_channels, S, S), S = `--resolution` / 8 or the config's
  `sample_size`; one timestep; text (B, 77, cross_attention_dim); SDXL's pooled text and
  time ids when `addition_embed_type` is `text_time`;
- a diffusers VAE (`AutoencoderKL`): an image (B, in_channels, S, S), S = `--resolution`
  or `sample_size` (the forward encodes and decodes);
- a transformers model with both a text and a vision config (CLIP, SigLIP): 77 token ids
  and an image at the vision config's size;
- one with `image_size` and `num_channels` (ViT, DeiT, BEiT, Swin, ConvNeXt, DINOv2, ...):
  an image (B, num_channels, S, S), S = `--resolution` or `image_size`;
- any other (text models): 128 token ids.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from edgewise.errors import EdgewiseError
from edgewise.ir.files import parse_json, read_text

MAX_CONFIG_BYTES = 4 << 20
TEXT_TOKENS = 128


def hf_config_path(model: str) -> Path | None:
    """The config.json MODEL names (itself, or inside the folder), or None when MODEL is no
    Hugging Face config (a zoo name, an edgewise graph file)."""
    path = Path(model)
    if path.is_dir():
        found = path / "config.json"
        if not found.is_file():
            raise EdgewiseError(f"'{model}' is a folder without a config.json: give the "
                                "folder of a Hugging Face model, or its config.json")  # fmt: skip
        return found
    if path.is_file() and path.suffix == ".json":
        head = path.read_bytes()[:4096]
        if b'"edgewise.' in head[:64]:  # an edgewise file (a graph, a plan)
            return None
        if b'"_class_name"' in head or b'"architectures"' in head or b'"model_type"' in head:
            return path
    return None


def build_from_hf_config(
    path: Path, batch: int = 1, resolution: int | None = None
) -> tuple[Any, tuple[Any, ...], dict[str, Any]]:
    """(module on the meta device, args, kwargs) for the config at `path`."""
    data = parse_json(read_text(path, "config file", MAX_CONFIG_BYTES), f"config file '{path}'")
    if not isinstance(data, dict):
        raise EdgewiseError(f"config file '{path}' must be a JSON object")
    if "_class_name" in data:
        return _diffusers(path, data, batch, resolution)
    if "architectures" in data or "model_type" in data:
        return _transformers(path, data, batch, resolution)
    raise EdgewiseError(f"config file '{path}' names no model class ('_class_name' for "
                        "diffusers, 'architectures' for transformers)")  # fmt: skip


def _meta(*shape: int, integer: bool = False) -> Any:
    import torch

    return torch.empty(shape, dtype=torch.int64 if integer else torch.float32, device="meta")


def _diffusers(path: Path, data: dict[str, Any], batch: int, resolution: int | None):  # type: ignore[no-untyped-def]
    import diffusers
    import torch

    name = str(data["_class_name"])
    cls = getattr(diffusers, name, None)
    if cls is None or not hasattr(cls, "from_config"):
        raise EdgewiseError(f"config file '{path}': diffusers has no model class '{name}'")
    config = {k: v for k, v in data.items() if not k.startswith("_")}
    try:
        with torch.device("meta"):
            model = cls.from_config(config)
    except Exception as e:
        raise EdgewiseError(f"config file '{path}': {name} rejects it ({type(e).__name__}: "
                            f"{str(e).splitlines()[0] if str(e) else ''})") from None  # fmt: skip
    c = model.config
    if name.startswith("UNet2DCondition"):
        side = resolution // 8 if resolution else int(c.sample_size)
        kwargs: dict[str, Any] = {
            "sample": _meta(batch, c.in_channels, side, side),
            "timestep": _meta(integer=True),
            "encoder_hidden_states": _meta(batch, 77, c.cross_attention_dim),
        }
        if getattr(c, "addition_embed_type", None) == "text_time":
            pooled = int(c.projection_class_embeddings_input_dim) - 6 * int(
                c.addition_time_embed_dim)  # fmt: skip
            kwargs["added_cond_kwargs"] = {"text_embeds": _meta(batch, pooled),
                                           "time_ids": _meta(batch, 6)}  # fmt: skip
        return model, (), kwargs
    if name.startswith("Autoencoder"):
        side = resolution or int(c.sample_size)
        return model, (_meta(batch, c.in_channels, side, side),), {}
    raise EdgewiseError(f"config file '{path}': no default inputs for diffusers' {name} (U-Nets "
                        "and VAEs have them): build it in a --module factory")  # fmt: skip


def _transformers(path: Path, data: dict[str, Any], batch: int, resolution: int | None):  # type: ignore[no-untyped-def]
    import torch
    import transformers

    archs = data.get("architectures") or []
    name = str(archs[0]) if archs else ""
    cls = getattr(transformers, name, None) if name else None
    if cls is None:
        kind, shown = data.get("model_type", "?"), name or "(architectures is empty)"
        raise EdgewiseError(f"config file '{path}': transformers has no model class "
                            f"'{shown}' (model_type '{kind}')")  # fmt: skip
    fields = {k: v for k, v in data.items() if k not in ("architectures", "transformers_version")}
    try:
        config = transformers.AutoConfig.for_model(**fields)
        with torch.device("meta"):
            model = cls(config)
    except Exception as e:
        raise EdgewiseError(f"config file '{path}': {name} rejects it ({type(e).__name__}: "
                            f"{str(e).splitlines()[0] if str(e) else ''})") from None  # fmt: skip
    model.eval()
    vision = getattr(config, "vision_config", None)
    if vision is not None and getattr(config, "text_config", None) is not None:
        side = resolution or int(vision.image_size)
        pixels = _meta(batch, vision.num_channels, side, side)
        return model, (), {"input_ids": _meta(batch, 77, integer=True), "pixel_values": pixels}
    if hasattr(config, "image_size") and hasattr(config, "num_channels"):
        size = config.image_size
        side = resolution or int(size[0] if isinstance(size, list | tuple) else size)
        return model, (_meta(batch, config.num_channels, side, side),), {}
    return model, (), {"input_ids": _meta(batch, TEXT_TOKENS, integer=True)}
