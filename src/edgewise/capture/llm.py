"""Language and vision-language models from transformers configs: prefill and decode graphs.

A generation has two kinds of forward. *Prefill* runs the model over the whole prompt
(for a VLM: the vision tower, the projector, then the language model over the image
tokens and the prompt). *Decode* runs it over one new token against a KV cache of
`context` tokens. The decode graph is captured with the cache as graph inputs,
preallocated for context + 1 tokens: the new token's K and V are written into position
`context` in place (as an NPU runtime or a static cache does; transformers' default
`DynamicCache` would instead copy the whole cache with `torch.cat` every step), and
attention reads all context + 1. So a decode step's MACs and bytes are affine in the
context length, which `simulate.generation` uses to cost every step of a generation from
three captures.

KV cache bytes per token = layers x 2 (K and V) x KV heads x head_dim x bytes per value,
head_dim as the config states it (Gemma 2: 256, not hidden / heads).

    graph = capture_llm("llama-3.2-1b", "decode", context=1024)
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from edgewise.errors import EdgewiseError, unknown_name

if TYPE_CHECKING:
    from edgewise.ir.graph import Graph
    from edgewise.ir.pipeline import Pipeline

Config = dict[str, Any]
PHASES = ("prefill", "decode", "generate")
MAX_TOKENS = 1_048_576  # a typo guard on token counts


def _llama(**over: Any) -> Config:
    return {"model_type": "llama", "rms_norm_eps": 1e-5, "max_position_embeddings": 131072,
            "rope_theta": 500000.0, "tie_word_embeddings": True,
            "rope_scaling": {"factor": 32.0, "high_freq_factor": 4.0, "low_freq_factor": 1.0,
                             "original_max_position_embeddings": 8192, "rope_type": "llama3"},
            "vocab_size": 128256, **over}  # fmt: skip


def _qwen2(**over: Any) -> Config:
    return {"model_type": "qwen2", "vocab_size": 151936, "rms_norm_eps": 1e-6,
            "rope_theta": 1000000.0, "max_position_embeddings": 32768,
            "tie_word_embeddings": True, **over}  # fmt: skip


# meta-llama/Llama-3.2-1B and -3B, Qwen/Qwen2.5-0.5B and -1.5B, google/gemma-2-2b and
# lmsys/vicuna-7b-v1.5 (LLaVA-1.5's language model, as llava-hf/llava-1.5-7b-hf ships it):
# config.json of each, the fields that decide the architecture
LLAMA_32_1B = _llama(hidden_size=2048, intermediate_size=8192, num_hidden_layers=16,
                     num_attention_heads=32, num_key_value_heads=8, head_dim=64)  # fmt: skip
LLAMA_32_3B = _llama(hidden_size=3072, intermediate_size=8192, num_hidden_layers=28,
                     num_attention_heads=24, num_key_value_heads=8, head_dim=128)  # fmt: skip
QWEN25_05B = _qwen2(hidden_size=896, intermediate_size=4864, num_hidden_layers=24,
                    num_attention_heads=14, num_key_value_heads=2)  # fmt: skip
QWEN25_15B = _qwen2(hidden_size=1536, intermediate_size=8960, num_hidden_layers=28,
                    num_attention_heads=12, num_key_value_heads=2)  # fmt: skip
GEMMA2_2B = {"model_type": "gemma2", "vocab_size": 256000, "hidden_size": 2304,
             "intermediate_size": 9216, "num_hidden_layers": 26, "num_attention_heads": 8,
             "num_key_value_heads": 4, "head_dim": 256, "sliding_window": 4096,
             "final_logit_softcapping": 30.0, "attn_logit_softcapping": 50.0,
             "query_pre_attn_scalar": 256, "max_position_embeddings": 8192,
             "rms_norm_eps": 1e-6, "rope_theta": 10000.0, "tie_word_embeddings": True,
             "hidden_activation": "gelu_pytorch_tanh"}  # fmt: skip
VICUNA_7B = {"model_type": "llama", "vocab_size": 32064, "hidden_size": 4096,
             "intermediate_size": 11008, "num_hidden_layers": 32, "num_attention_heads": 32,
             "num_key_value_heads": 32, "max_position_embeddings": 4096, "rms_norm_eps": 1e-5,
             "rope_theta": 10000.0, "tie_word_embeddings": False}  # fmt: skip
# openai/clip-vit-large-patch14-336 vision tower (LLaVA-1.5 reads its penultimate layer)
CLIP_L14_336 = {"hidden_size": 1024, "intermediate_size": 4096, "num_hidden_layers": 24,
                "num_attention_heads": 16, "image_size": 336, "patch_size": 14,
                "hidden_act": "quick_gelu", "layer_norm_eps": 1e-5,
                "projection_dim": 768}  # fmt: skip


# Qwen/Qwen2-VL-2B-Instruct config.json "vision_config": a ViT over 14 x 14 patches of
# two frames (an image is repeated), 2 x 2 patches merged into one LM token
QWEN2_VL_VISION = {"embed_dim": 1280, "depth": 32, "num_heads": 16, "mlp_ratio": 4,
                   "patch_size": 14, "temporal_patch_size": 2, "spatial_merge_size": 2,
                   "hidden_size": 1536}  # fmt: skip
QWEN2_VL_PIXELS = (56 * 56, 28 * 28 * 1280)  # transformers' smart_resize min and max pixels
# HuggingFaceTB/SmolVLM-256M-Instruct (Idefics3): a SigLIP-B/16 tower over 512 px crops,
# pixel shuffle by 4 (64 tokens a crop) into SmolLM2-135M's width
SMOLVLM_VISION = {"hidden_size": 768, "intermediate_size": 3072, "num_hidden_layers": 12,
                  "num_attention_heads": 12, "patch_size": 16, "image_size": 512,
                  "scale_factor": 4}  # fmt: skip
SMOLLM2_135M = {"model_type": "llama", "vocab_size": 49280, "hidden_size": 576,
                "intermediate_size": 1536, "num_hidden_layers": 30, "num_attention_heads": 9,
                "num_key_value_heads": 3, "max_position_embeddings": 8192,
                "rope_theta": 100000.0, "rms_norm_eps": 1e-5,
                "tie_word_embeddings": False}  # fmt: skip


def smart_resize(height: int, width: int, factor: int = 28) -> tuple[int, int]:
    """Qwen2-VL's resize (transformers `smart_resize`): each side to a multiple of
    `factor`, the area kept within QWEN2_VL_PIXELS."""
    low, high = QWEN2_VL_PIXELS
    h = max(factor, round(height / factor) * factor)
    w = max(factor, round(width / factor) * factor)
    if h * w > high:
        beta = math.sqrt(height * width / high)
        h = math.floor(height / beta / factor) * factor
        w = math.floor(width / beta / factor) * factor
    elif h * w < low:
        beta = math.sqrt(low / (height * width))
        h = math.ceil(height * beta / factor) * factor
        w = math.ceil(width * beta / factor) * factor
    return h, w


@dataclass(frozen=True)
class Vision:
    """A VLM's vision tower and projector: `clip` (LLaVA: the penultimate CLIP layer
    without CLS, a 2-layer MLP into the LM's width; the image at a multiple of the patch)
    or `qwen2-vl` (the image resized by `smart_resize`, one LM token per 28 x 28 pixels)."""

    config: Config
    default_image_size: int
    kind: str = "clip"

    def crops(self, image_size: int) -> int:
        """SmolVLM's image splitting: (S / 512)^2 crops, and a global view when S > 512."""
        n = (image_size // int(self.config["image_size"])) ** 2
        return n + 1 if n > 1 else 1

    def image_tokens(self, image_size: int) -> int:
        if self.kind == "idefics3":
            per_crop = (int(self.config["image_size"]) // int(self.config["patch_size"])) ** 2
            return self.crops(image_size) * per_crop // int(self.config["scale_factor"]) ** 2
        if self.kind == "qwen2-vl":
            h, w = smart_resize(image_size, image_size)
            return (h // 28) * (w // 28)
        return (image_size // int(self.config["patch_size"])) ** 2

    def check(self, image_size: int) -> None:
        if self.kind == "idefics3":
            crop = int(self.config["image_size"])
            if image_size % crop or not crop <= image_size <= 4 * crop:
                raise EdgewiseError(
                    f"--image-size must be {crop}, {2 * crop}, {3 * crop} or {4 * crop} px "
                    f"(whole {crop} px crops; got {image_size})"
                )
            return
        if self.kind == "qwen2-vl":
            if not 1 <= image_size <= 8192:
                raise EdgewiseError(f"--image-size must be 1 to 8192 px (got {image_size})")
            return
        patch = int(self.config["patch_size"])
        if image_size < patch or image_size % patch or image_size > 8192:
            raise EdgewiseError(
                f"--image-size must be a multiple of {patch} px (the patch) up to 8192 "
                f"(got {image_size})"
            )


@dataclass(frozen=True)
class LanguageEntry:
    name: str
    description: str
    config: Config  # the language model's
    params: int  # the published parameter count (the model card's, to `precision`)
    precision: int  # worth of the card's last digit
    source: str
    vision: Vision | None = None

    @property
    def head_dim(self) -> int:
        c = self.config
        return int(c.get("head_dim") or c["hidden_size"] // c["num_attention_heads"])

    @property
    def kv_heads(self) -> int:
        c = self.config
        return int(c.get("num_key_value_heads") or c["num_attention_heads"])

    def kv_bytes_per_token(self, bytes_per_value: float = 2.0) -> float:
        """layers x 2 (K, V) x KV heads x head_dim x bytes."""
        return (
            self.config["num_hidden_layers"] * 2 * self.kv_heads * self.head_dim * bytes_per_value
        )


_CARD = "model card on Hugging Face ({}): {}"
LLMS: dict[str, LanguageEntry] = {
    e.name: e
    for e in (
        LanguageEntry("llama-3.2-1b", "Meta Llama 3.2 1B (GQA, 8 KV heads, tied embeddings)",
                      LLAMA_32_1B, 1_230_000_000, 10**7,
                      _CARD.format("meta-llama/Llama-3.2-1B", "1.23B parameters")),
        LanguageEntry("llama-3.2-3b", "Meta Llama 3.2 3B (GQA, 8 KV heads, tied embeddings)",
                      LLAMA_32_3B, 3_210_000_000, 10**7,
                      _CARD.format("meta-llama/Llama-3.2-3B", "3.21B parameters")),
        LanguageEntry("qwen2.5-0.5b", "Qwen2.5 0.5B (GQA, 2 KV heads, QKV bias, tied)",
                      QWEN25_05B, 490_000_000, 10**7,
                      _CARD.format("Qwen/Qwen2.5-0.5B", "Number of Parameters: 0.49B")),
        LanguageEntry("qwen2.5-1.5b", "Qwen2.5 1.5B (GQA, 2 KV heads, QKV bias, tied)",
                      QWEN25_15B, 1_540_000_000, 10**7,
                      _CARD.format("Qwen/Qwen2.5-1.5B", "Number of Parameters: 1.54B")),
        LanguageEntry("gemma-2-2b", "Google Gemma 2 2B (GQA, head_dim 256, logit soft-capping)",
                      GEMMA2_2B, 2_610_000_000, 10**7,
                      _CARD.format("google/gemma-2-2b", "2.61B params (safetensors)")),
        LanguageEntry("llava-1.5-7b", "LLaVA-1.5 7B: CLIP ViT-L/14 at 336 (penultimate layer, "
                      "576 image tokens), 2-layer MLP projector, Vicuna-7B",
                      VICUNA_7B, 7_060_000_000, 10**7,
                      _CARD.format("llava-hf/llava-1.5-7b-hf", "7.06B params (safetensors)"),
                      Vision(CLIP_L14_336, 336)),
        LanguageEntry("qwen2-vl-2b", "Qwen2-VL 2B: a 675 M ViT over 14 px patches merged 2 x 2 "
                      "(image tokens from the image size, smart_resize), Qwen2 1.5B LM",
                      _qwen2(hidden_size=1536, intermediate_size=8960, num_hidden_layers=28,
                             num_attention_heads=12, num_key_value_heads=2),
                      2_210_000_000, 10**7,
                      _CARD.format("Qwen/Qwen2-VL-2B-Instruct", "2.21B params (safetensors)"),
                      Vision(QWEN2_VL_VISION, 448, "qwen2-vl")),
        LanguageEntry("smolvlm-256m", "SmolVLM 256M (Idefics3): SigLIP-B/16 over 512 px crops, "
                      "pixel shuffle to 64 tokens a crop, SmolLM2-135M",
                      SMOLLM2_135M, 256_000_000, 10**6,
                      _CARD.format("HuggingFaceTB/SmolVLM-256M-Instruct", "256M parameters"),
                      Vision(SMOLVLM_VISION, 512, "idefics3")),
    )
}  # fmt: skip


def is_llm(name: object) -> bool:
    return isinstance(name, str) and name in LLMS


def llm_entry(name: str) -> LanguageEntry:
    if name not in LLMS:
        raise unknown_name("language model", name, LLMS)
    return LLMS[name]


def check_tokens(option: str, value: Any, low: int = 1) -> int:
    if type(value) is not int or not low <= value <= MAX_TOKENS:
        raise EdgewiseError(
            f"{option} must be a whole number from {low} to {MAX_TOKENS:,} (got {value!r})"
        )
    return value


def _language_model(entry: LanguageEntry):  # type: ignore[no-untyped-def]
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    c = dict(entry.config)
    config = AutoConfig.for_model(c.pop("model_type"), **c)
    with torch.device("meta"):
        return AutoModelForCausalLM.from_config(config)


def _prefill_module(entry: LanguageEntry, image_size: int | None):  # type: ignore[no-untyped-def]
    """The prefill module on the meta device: the LM alone, or vision tower + projector +
    LM."""
    import torch
    from torch import nn

    lm = _language_model(entry)
    if entry.vision is None:
        return lm
    if entry.vision.kind == "qwen2-vl":
        with torch.device("meta"):
            return _qwen2_vl_prefill(entry.vision.config, lm)
    if entry.vision.kind == "idefics3":
        with torch.device("meta"):
            return _idefics3_prefill(entry.vision.config, lm)
    from transformers import CLIPVisionConfig, CLIPVisionModel

    vision_config = CLIPVisionConfig(**{**entry.vision.config, "image_size": image_size})
    width = entry.config["hidden_size"]
    with torch.device("meta"):
        tower = CLIPVisionModel(vision_config)
        projector = nn.Sequential(
            nn.Linear(vision_config.hidden_size, width), nn.GELU(), nn.Linear(width, width)
        )
    return VisionLanguagePrefill(tower, projector, lm)


def _classes() -> tuple[type, type]:
    """(InPlaceCache, DecodeStep): they subclass torch and transformers classes, so they
    are made on first use and importing this module stays cheap."""
    import torch
    from torch import nn
    from transformers import DynamicCache

    class InPlaceCache(DynamicCache):
        """The KV cache as graph inputs preallocated for context + n tokens: the new
        tokens' K and V are written in place at `context`; attention reads all of it."""

        def __init__(self, buffers: tuple[torch.Tensor, ...], context: int) -> None:
            super().__init__()
            self.buffers, self.context = buffers, context

        def update(self, key_states, value_states, layer_idx, *args, **kwargs):  # type: ignore[no-untyped-def,override]
            k, v = self.buffers[2 * layer_idx], self.buffers[2 * layer_idx + 1]
            n = key_states.shape[-2]
            k[:, :, self.context : self.context + n].copy_(key_states)
            v[:, :, self.context : self.context + n].copy_(value_states)
            return k, v

        def get_seq_length(self, layer_idx: int = 0) -> int:  # type: ignore[override]
            return self.context

        def get_mask_sizes(self, query_length: int, layer_idx: int = 0) -> tuple[int, int]:  # type: ignore[override]
            return self.context + query_length, 0

    class DecodeStep(nn.Module):
        """One new token against a KV cache of `context` tokens (the cache: inputs)."""

        def __init__(self, model: nn.Module, context: int) -> None:
            super().__init__()
            self.model, self.context = model, context

        def forward(self, input_ids: torch.Tensor, *kv: torch.Tensor) -> torch.Tensor:
            cache = InPlaceCache(kv, self.context)
            n = input_ids.shape[1]
            position = torch.arange(self.context, self.context + n, device=input_ids.device)
            out = self.model(input_ids=input_ids, cache=cache, use_cache=True,
                             cache_position=position)  # fmt: skip
            return out.logits

    return InPlaceCache, DecodeStep


def VisionLanguagePrefill(tower, projector, lm):  # type: ignore[no-untyped-def]
    """Image tokens (the tower's penultimate layer without CLS, projected) then the prompt,
    through the language model."""
    import torch
    from torch import nn

    class _Prefill(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.vision_tower, self.multi_modal_projector, self.language_model = (
                tower,
                projector,
                lm,
            )

        def forward(self, pixel_values: torch.Tensor, input_ids: torch.Tensor) -> torch.Tensor:
            hidden = self.vision_tower(pixel_values, output_hidden_states=True).hidden_states
            image = self.multi_modal_projector(hidden[-2][:, 1:])
            text = self.language_model.get_input_embeddings()(input_ids)
            embeds = torch.cat([image, text], dim=1)
            return self.language_model(inputs_embeds=embeds, use_cache=False).logits

    return _Prefill()


def _idefics3_prefill(c: Config, lm):  # type: ignore[no-untyped-def]
    """SmolVLM: SigLIP over every crop (no pooling head), pixel shuffle (each 4 x 4 block of
    patches into one vector), a bias-free projection into the LM, then the prompt."""
    import torch
    from torch import nn
    from transformers import SiglipVisionConfig, SiglipVisionModel

    config = {k: v for k, v in c.items() if k != "scale_factor"}
    tower = SiglipVisionModel(SiglipVisionConfig(**config, vision_use_head=False))
    scale, dim = int(c["scale_factor"]), int(c["hidden_size"])
    side = int(c["image_size"]) // int(c["patch_size"])

    class Connector(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.modality_projection = nn.Linear(dim * scale**2, lm.config.hidden_size, bias=False)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            n = x.shape[0]
            x = x.reshape(n, side, side // scale, dim * scale).permute(0, 2, 1, 3)
            x = x.reshape(n, side // scale, side // scale, dim * scale**2).permute(0, 2, 1, 3)
            return self.modality_projection(x.reshape(n, -1, dim * scale**2))

    class Prefill(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.vision_model, self.connector, self.language_model = tower, Connector(), lm

        def forward(self, pixel_values: torch.Tensor, input_ids: torch.Tensor) -> torch.Tensor:
            image = self.connector(self.vision_model(pixel_values).last_hidden_state)
            text = self.language_model.get_input_embeddings()(input_ids)
            embeds = torch.cat([image.reshape(1, -1, image.shape[-1]), text], dim=1)
            return self.language_model(inputs_embeds=embeds, use_cache=False).logits

    return Prefill()


def _qwen2_vl_prefill(c: Config, lm):  # type: ignore[no-untyped-def]
    """Qwen2-VL's vision tower written out with its parameter shapes (transformers' own
    builds its attention spans from `grid_thw` values at run time, which a capture on fake
    tensors cannot read): patches -> Conv3d -> blocks (LayerNorm, QKV, 2-D rotary, full
    attention over the image, projection, LayerNorm, QuickGELU MLP) -> merger (4 patches
    -> one LM token) -> the image tokens, then the prompt, through the LM."""
    import torch
    from torch import nn
    from torch.nn import functional as F

    dim, heads, ratio = int(c["embed_dim"]), int(c["num_heads"]), int(c["mlp_ratio"])
    merged = dim * int(c["spatial_merge_size"]) ** 2

    class QuickGELU(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x * torch.sigmoid(1.702 * x)

    class Attention(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.qkv, self.proj = nn.Linear(dim, 3 * dim), nn.Linear(dim, dim)

        def forward(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
            n = x.shape[0]
            q, k, v = self.qkv(x).reshape(n, 3, heads, dim // heads).permute(1, 2, 0, 3)

            def rotate(t: torch.Tensor) -> torch.Tensor:
                half = t.shape[-1] // 2
                return t * cos + torch.cat((-t[..., half:], t[..., :half]), dim=-1) * sin

            out = F.scaled_dot_product_attention(rotate(q)[None], rotate(k)[None], v[None])
            return self.proj(out[0].transpose(0, 1).reshape(n, dim))

    class Block(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.norm1, self.norm2 = nn.LayerNorm(dim, eps=1e-6), nn.LayerNorm(dim, eps=1e-6)
            self.attn = Attention()
            self.mlp = nn.Sequential(nn.Linear(dim, ratio * dim), QuickGELU(),
                                     nn.Linear(ratio * dim, dim))  # fmt: skip

        def forward(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
            x = x + self.attn(self.norm1(x), cos, sin)
            return x + self.mlp(self.norm2(x))

    class Vision(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            t, p = int(c["temporal_patch_size"]), int(c["patch_size"])
            self.patch_embed = nn.Conv3d(3, dim, (t, p, p), (t, p, p), bias=False)
            self.blocks = nn.ModuleList(Block() for _ in range(int(c["depth"])))
            self.ln_q = nn.LayerNorm(dim, eps=1e-6)
            self.merger = nn.Sequential(nn.Linear(merged, merged), nn.GELU(),
                                        nn.Linear(merged, int(c["hidden_size"])))  # fmt: skip

        def forward(self, patches: torch.Tensor) -> torch.Tensor:
            n = patches.shape[0]
            x = self.patch_embed(patches).reshape(n, dim)
            angle = torch.ones(n, dim // heads, device=x.device)  # the 2-D rotary's angles
            cos, sin = angle.cos(), angle.sin()
            for block in self.blocks:
                x = block(x, cos, sin)
            return self.merger(self.ln_q(x).reshape(-1, merged))

    class Prefill(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.visual, self.language_model = Vision(), lm

        def forward(self, patches: torch.Tensor, input_ids: torch.Tensor) -> torch.Tensor:
            image = self.visual(patches)[None]
            text = self.language_model.get_input_embeddings()(input_ids)
            embeds = torch.cat([image, text], dim=1)
            return self.language_model(inputs_embeds=embeds, use_cache=False).logits

    return Prefill()


def build_llm(
    name: str,
    phase: str,
    prompt_tokens: int = 128,
    context: int = 1024,
    image_size: int | None = None,
    tokens: int = 1,
):  # type: ignore[no-untyped-def]
    """(module, args, kwargs, meta) on the meta device: the prefill over `prompt_tokens` (and
    the image for a VLM), or one decode step of `tokens` new tokens against `context`
    cached ones. `capture_llm` captures it; `edgewise run` runs it for real."""
    import torch

    entry = llm_entry(name)
    if phase not in ("prefill", "decode"):
        raise EdgewiseError(f"--phase must be prefill, decode or generate (got '{phase}')")
    meta: dict[str, object] = {"phase": phase}
    if phase == "prefill":
        check_tokens("--prompt-tokens", prompt_tokens)
        module = _prefill_module(entry, image_size or _image_size(entry))
        ids = torch.empty(1, prompt_tokens, dtype=torch.int64, device="meta")
        if entry.vision is None:
            return module, (), {"input_ids": ids, "use_cache": False}, meta | {
                "tokens": prompt_tokens}  # fmt: skip
        side = image_size or entry.vision.default_image_size
        entry.vision.check(side)
        meta |= {"tokens": prompt_tokens, "image_size": side,
                 "image_tokens": entry.vision.image_tokens(side)}  # fmt: skip
        if entry.vision.kind == "qwen2-vl":  # the processor's patches: 2 frames of 14 x 14
            h, w = smart_resize(side, side)
            pixels = torch.empty((h // 14) * (w // 14), 3, 2, 14, 14, device="meta")
        elif entry.vision.kind == "idefics3":  # the processor's crops, 512 x 512 each
            crop = int(entry.vision.config["image_size"])
            pixels = torch.empty(entry.vision.crops(side), 3, crop, crop, device="meta")
        else:
            pixels = torch.empty(1, 3, side, side, device="meta")
        return module, (pixels, ids), {}, meta
    check_tokens("--context", context, low=0)
    _, DecodeStep = _classes()
    lm = _language_model(entry)
    kv = tuple(
        torch.empty(1, entry.kv_heads, context + tokens, entry.head_dim, device="meta")
        for _ in range(2 * entry.config["num_hidden_layers"])
    )
    ids = torch.empty(1, tokens, dtype=torch.int64, device="meta")
    return DecodeStep(lm, context), (ids, *kv), {}, meta | {"context": context, "tokens": tokens}


def capture_llm(
    name: str,
    phase: str,
    prompt_tokens: int = 128,
    context: int = 1024,
    image_size: int | None = None,
    tokens: int = 1,
):  # type: ignore[no-untyped-def]
    """The graph of `build_llm`'s forward; a decode graph names its KV cache inputs in
    `meta["kv_inputs"]`, so a workload can hold them at their own precision."""
    from edgewise.capture.torch_capture import capture

    module, args, kwargs, meta = build_llm(name, phase, prompt_tokens, context, image_size, tokens)
    graph = capture(module, *args, name=name, meta=meta, **kwargs)
    if phase == "decode":
        graph.meta["kv_inputs"] = [
            t.name
            for t in graph.tensors.values()
            if t.kind.value == "input" and len(t.shape) == 4 and t.shape[-2] == context + tokens
        ]
    return graph


def _image_size(entry: LanguageEntry) -> int | None:
    return entry.vision.default_image_size if entry.vision else None


def phase_request(
    model: str | None,
    phase: str | None,
    prompt_tokens: int | None,
    new_tokens: int | None,
    context: int | None,
    image_size: int | None,
    generate: bool = True,
) -> dict[str, Any] | None:
    """The language-model phase MODEL and the options name (None when MODEL is not a
    language model: then the options are refused). `generate`: the command takes it."""
    given = {"--phase": phase, "--prompt-tokens": prompt_tokens, "--new-tokens": new_tokens,
             "--context": context, "--image-size": image_size}  # fmt: skip
    if not is_llm(model):
        named = [k for k, v in given.items() if v is not None]
        if named:
            raise EdgewiseError(
                f"{', '.join(named)}: for language models (llama-3.2-1b, qwen2.5-0.5b, "
                f"llava-1.5-7b, ...; see `edgewise zoo`), and '{model}' is not one"
            )
        return None
    assert model is not None
    entry = llm_entry(model)
    phase = phase or "prefill"
    if phase not in PHASES or (phase == "generate" and not generate):
        allowed = PHASES if generate else PHASES[:2]
        raise EdgewiseError(f"--phase must be one of {', '.join(allowed)} (got '{phase}')")
    if image_size is not None and entry.vision is None:
        raise EdgewiseError(f"--image-size is for vision-language models; '{model}' has no image")
    if image_size is not None:
        entry.vision.check(image_size)  # type: ignore[union-attr]
    request = {
        "name": model,
        "phase": phase,
        "prompt_tokens": check_tokens("--prompt-tokens", 128 if prompt_tokens is None
                                      else prompt_tokens),
        "new_tokens": check_tokens("--new-tokens", 128 if new_tokens is None else new_tokens),
        "context": check_tokens("--context", 1024 if context is None else context, low=0),
        "image_size": image_size,
    }  # fmt: skip
    return request


def kv_precision_for(value: str | None, request: dict[str, Any] | None) -> str | None:
    """--kv-precision, checked: a precision name, and only for a language model."""
    from edgewise.ir.vocab import PRECISION_BYTES

    if value is None:
        return None
    if request is None:
        raise EdgewiseError("--kv-precision is for language models (--phase decode or generate)")
    if value not in PRECISION_BYTES:
        raise EdgewiseError(
            f"--kv-precision must be one of {', '.join(PRECISION_BYTES)} (got '{value}')"
        )
    return value


def decode_context(request: dict[str, Any], prefill: Graph) -> int:
    """Tokens cached when decoding starts: the prompt's and the image's (a VLM's prefill
    records how many tokens its image became)."""
    return int(request["prompt_tokens"]) + int(prefill.meta.get("image_tokens", 0))


def phase_graph(request: dict[str, Any]) -> Graph:
    """The prefill or decode graph a request (`phase_request`) names, from the graph cache."""
    from edgewise.capture.cache import cached_graph

    name, phase = request["name"], request["phase"]
    if phase == "prefill":  # a prefill has no cache before it, a decode step no prompt
        shape = {"prompt_tokens": request["prompt_tokens"], "image_size": request["image_size"]}
    else:
        shape = {"context": request["context"]}
    return cached_graph({"llm": {"name": name, "phase": phase, **shape}},
                        lambda: capture_llm(name, phase, **shape))  # fmt: skip


def generation_graphs(request: dict[str, Any]) -> tuple[Graph, Graph, Graph, int]:
    """(prefill, first decode step, last decode step, tokens cached before decoding: the
    prompt and the image's tokens) of `--phase generate`."""
    prefill = phase_graph({**request, "phase": "prefill"})
    prompt = decode_context(request, prefill)
    last = prompt + max(request["new_tokens"] - 2, 0)
    first, final = (phase_graph({**request, "phase": "decode", "context": c})
                    for c in (prompt, last))  # fmt: skip
    return prefill, first, final, prompt


def generation_pipeline(request: dict[str, Any]) -> Pipeline:
    """A generation as two phases: the prefill once, the decode step N - 1 times at the
    mean context of the steps (their costs are affine in it, so the mean step x N - 1 is
    their sum, to rounding the context to a whole token); weights and the KV cache may be
    held on chip across the decode steps. What `plan --phase generate` plans and
    `simulate --phase generate --plan` costs."""
    from edgewise.ir.pipeline import Phase, Pipeline

    name, new = request["name"], request["new_tokens"]
    prefill = phase_graph({**request, "phase": "prefill"})
    prompt = decode_context(request, prefill)
    phases = [Phase("prefill", prefill, 1)]
    if new > 1:
        step = phase_graph({**request, "phase": "decode", "context": prompt + (new - 2) // 2})
        phases.append(Phase("decode", step, new - 1))
    return Pipeline(f"{name} generate", tuple(phases), unit="generation",
                    description=f"{prompt} prompt tokens, {new} new")  # fmt: skip
