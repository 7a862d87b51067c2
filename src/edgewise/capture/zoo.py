"""The model zoo: named architectures, their workloads, and the figures they must reproduce.

Every model is built from a config dict shipped in `zoo_configs.py`, on the meta device:
no download, no weight bytes. An entry owns its workload semantics (what "resolution"
means for a latent U-Net, that classifier-free guidance doubles the batch), and cites the
published parameter and MAC figures the test suite holds it to. A figure is compared at
the entry's default workload, under the counting convention its source used, to within
one unit of its last published digit (`PublishedFigure.precision`).

    graph = capture_zoo("sd15-unet", Workload(cfg=True))
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from typing import TYPE_CHECKING, Any

from edgewise.capture import zoo_configs as configs
from edgewise.capture.workload import DEFAULT_WORKLOAD, Workload
from edgewise.errors import EdgewiseError, unknown_name
from edgewise.ir.graph import Graph

if TYPE_CHECKING:
    import torch
    from torch import nn

# torch (2 s to import) is imported by the builders, not here: `edgewise zoo` lists the
# entries without it
Built = tuple["nn.Module", tuple[Any, ...], dict[str, Any]]  # model, example args, kwargs

OPTIONS = ("batch", "resolution", "frames", "cfg")
_LIMITS = {"batch": 1024, "resolution": 8192, "frames": 1024}  # typo guards, not model limits


@dataclass(frozen=True)
class PublishedFigure:
    """A number published outside this project that an entry must reproduce."""

    quantity: str  # "params", "macs", or "ops": a tool's headline total (thop's "MACs")
    value: int
    convention: str  # edgewise convention matching the source's counting ("-" for params)
    source: str  # where it is published
    workload: str = ""  # the input it refers to (always the entry's default workload)
    precision: int = 1  # worth of the last published digit: 1 = exact, 10**6 for "675 M"

    def matches(self, measured: int) -> bool:
        """True when `measured` agrees to within one unit of the last published digit."""
        return abs(measured - self.value) < self.precision


@dataclass(frozen=True)
class ZooEntry:
    """One zoo model: how to build it, which workloads it takes, what it must reproduce."""

    name: str
    description: str
    inputs: str  # the default inputs, for people
    options: frozenset[str]  # the Workload fields this entry takes
    published: tuple[PublishedFigure, ...]
    build: Callable[[Workload], Built]  # meta-device model and meta example inputs
    default_resolution: int | None = None
    resolution_step: int = 1  # resolution must be a multiple of this
    min_resolution: int = 1  # and at least this
    resolution_why: str = ""  # the reason for the step or minimum, for the error message
    default_frames: int | None = None
    frames_step: int = 1

    def resolve(self, workload: Workload) -> Workload:
        """Check `workload` against this entry; fill in the default resolution and frames."""
        given = {
            "batch": workload.batch != 1,
            "resolution": workload.resolution is not None,
            "frames": workload.frames is not None,
            "cfg": workload.cfg is not False,
        }
        for option, is_given in given.items():
            if is_given and option not in self.options:
                takes = ", ".join(o for o in OPTIONS if o in self.options)
                raise EdgewiseError(
                    f"model '{self.name}' does not take option '{option}': it takes {takes}"
                )
        _check_count("batch", workload.batch, 1, "")
        if not isinstance(workload.cfg, bool):
            raise EdgewiseError(f"cfg must be true or false (got {workload.cfg!r})")
        resolution = workload.resolution
        if "resolution" in self.options:
            resolution = resolution if resolution is not None else self.default_resolution
            why = f" ({self.resolution_why})" if self.resolution_why else ""
            _check_count(
                "resolution", resolution, self.resolution_step, f" pixels for {self.name}{why}"
            )
            assert resolution is not None, "_check_count passed it"
            if resolution < self.min_resolution:
                raise EdgewiseError(
                    f"resolution must be at least {self.min_resolution} pixels for "
                    f"{self.name}{why} (got {resolution})"
                )
        frames = workload.frames
        if "frames" in self.options:
            frames = frames if frames is not None else self.default_frames
            _check_count(
                "frames",
                frames,
                self.frames_step,
                f" for {self.name} (tubelets span {self.frames_step} frames)",
            )
        return replace(workload, resolution=resolution, frames=frames)


def _check_count(option: str, value: Any, step: int, unit: str) -> None:
    """A positive whole multiple of `step`, below the typo guard."""
    limit = _LIMITS[option]
    if type(value) is not int or value < 1 or value % step or value > limit:
        multiple = f"a positive multiple of {step}" if step > 1 else "a whole number of 1 or more"
        raise EdgewiseError(f"{option} must be {multiple}{unit}, at most {limit} (got {value!r})")


def _resolving(entry: ZooEntry) -> ZooEntry:
    """The entry whose `build` checks the workload and fills defaults before building."""
    make = entry.build

    def build(workload: Workload = DEFAULT_WORKLOAD) -> Built:
        return make(entry.resolve(workload))

    return replace(entry, build=build)


# --------------------------------------------------------------------------- builders


def _on_meta(cls: Callable[..., Any], *args: Any, **kwargs: Any) -> nn.Module:
    """`cls(*args, **kwargs)` with every parameter and buffer on the meta device."""
    import torch
    from torch import nn

    with torch.device("meta"):
        model = cls(*args, **kwargs)
    assert isinstance(model, nn.Module), f"{cls} did not build an nn.Module"
    return model


def _meta(*shape: int, dtype: str = "float32") -> torch.Tensor:
    import torch

    return torch.empty(shape, dtype=getattr(torch, dtype), device="meta")


def _side(w: Workload, downscale: int = 1) -> int:
    assert w.resolution is not None, "resolve() fills the resolution in"
    return w.resolution // downscale


# Model classes are imported inside the builders: diffusers and transformers take seconds
# to import, and only the entry being built needs its library.


def _sd_unet(
    config: configs.Config, text_dim: int, sdxl: bool = False
) -> Callable[[Workload], Built]:
    """A Stable Diffusion U-Net step: latent = image / 8, 77 text tokens, one timestep."""

    def build(w: Workload) -> Built:
        from diffusers import UNet2DConditionModel

        unet = _on_meta(UNet2DConditionModel, **config)
        batch, side = w.batch * (2 if w.cfg else 1), _side(w, 8)
        kwargs: dict[str, Any] = {
            "sample": _meta(batch, 4, side, side),
            "timestep": _meta(dtype="int64"),
            "encoder_hidden_states": _meta(batch, 77, text_dim),
        }
        if sdxl:  # pooled OpenCLIP-bigG text embedding + (size, crop, target size) ids
            kwargs["added_cond_kwargs"] = {"text_embeds": _meta(batch, 1280),
                                           "time_ids": _meta(batch, 6)}  # fmt: skip
        return unet, (), kwargs

    return build


def _sd15_vae_decoder(w: Workload) -> Built:
    from diffusers import AutoencoderKL

    vae = _on_meta(AutoencoderKL, **configs.SD15_VAE)
    from edgewise.capture.zoo_builtin import VaeDecoder

    decode = VaeDecoder(vae.get_submodule("post_quant_conv"), vae.get_submodule("decoder"))
    side = _side(w, 8)
    return decode, (), {"latent": _meta(w.batch, 4, side, side)}


def _sd15_text_encoder(w: Workload) -> Built:
    from transformers import CLIPTextConfig, CLIPTextModel

    model = _on_meta(CLIPTextModel, CLIPTextConfig(**configs.CLIP_L14_TEXT))
    return model, (), {"input_ids": _meta(w.batch, 77, dtype="int64")}


def _sdxl_text_encoder_2(w: Workload) -> Built:
    from transformers import CLIPTextConfig, CLIPTextModelWithProjection

    config = CLIPTextConfig(**configs.OPENCLIP_BIGG_TEXT)
    model = _on_meta(CLIPTextModelWithProjection, config)
    return model, (), {"input_ids": _meta(w.batch, 77, dtype="int64")}


def _image_classifier(
    model_class: str, config: configs.Config, sized: bool = False
) -> Callable[[Workload], Built]:
    """transformers' `model_class` (a class name) built from `config`, on one image.

    `sized`: the config's image_size is set to the workload's resolution, for models
    whose parameters depend on it (a ViT's position table); the others take any size.
    """

    def build(w: Workload) -> Built:
        import transformers

        side = _side(w)
        cls = getattr(transformers, model_class)
        model = _on_meta(
            cls, cls.config_class(**{**config, **({"image_size": side} if sized else {})})
        )
        return model, (), {"pixel_values": _meta(w.batch, 3, side, side)}

    return build


def _clip_vision(w: Workload) -> Built:
    from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection

    side = _side(w)
    config = CLIPVisionConfig(**{**configs.CLIP_L14_VISION, "image_size": side})
    model = _on_meta(CLIPVisionModelWithProjection, config)
    return model, (), {"pixel_values": _meta(w.batch, 3, side, side)}


def _vivit_b(w: Workload) -> Built:
    from transformers import VivitConfig, VivitForVideoClassification

    side, frames = _side(w), w.frames
    assert frames is not None, "resolve() fills the frames in"
    config = VivitConfig(**{**configs.VIVIT_B, "image_size": side, "num_frames": frames})
    model = _on_meta(VivitForVideoClassification, config)
    return model, (), {"pixel_values": _meta(w.batch, frames, 3, side, side)}


def _sam_vit_h(w: Workload) -> Built:
    from transformers import SamVisionConfig
    from transformers.models.sam.modeling_sam import SamVisionEncoder

    model = _on_meta(SamVisionEncoder, SamVisionConfig(**configs.SAM_VIT_H))
    return model, (), {"pixel_values": _meta(w.batch, 3, 1024, 1024)}


def _mamba_130m(fused: bool) -> Callable[[Workload], Built]:
    def build(w: Workload) -> Built:
        from transformers import MambaConfig, MambaForCausalLM

        from edgewise.capture.ssm import use_fused_scan

        model = _on_meta(MambaForCausalLM, MambaConfig(**configs.MAMBA_130M))
        model = use_fused_scan(model) if fused else model
        tokens = _meta(w.batch, 128, dtype="int64")
        return model, (), {"input_ids": tokens, "use_cache": False}

    return build


def _vim_s(fused: bool) -> Callable[[Workload], Built]:
    def build(w: Workload) -> Built:
        from edgewise.capture.ssm import VisionMamba

        model = _on_meta(VisionMamba, fused=fused)
        return model, (), {"pixel_values": _meta(w.batch, 3, 224, 224)}

    return build


def _builtin(class_name: str) -> Callable[[Workload], Built]:
    """A zoo_builtin image classifier (by class name: imported when built), on one image."""

    def build(w: Workload) -> Built:
        from edgewise.capture import zoo_builtin

        side = _side(w)
        model = _on_meta(getattr(zoo_builtin, class_name))
        return model, (), {"pixel_values": _meta(w.batch, 3, side, side)}

    return build


def _bert_base(w: Workload) -> Built:
    from transformers import BertConfig, BertModel

    model = _on_meta(BertModel, BertConfig(**configs.BERT_BASE))
    return model, (), {"input_ids": _meta(w.batch, 384, dtype="int64")}


def _whisper_tiny_encoder(w: Workload) -> Built:
    """The encoder alone: it takes exactly 30 s of audio, 3000 10-ms mel frames."""
    from transformers import WhisperConfig
    from transformers.models.whisper.modeling_whisper import WhisperEncoder

    model = _on_meta(WhisperEncoder, WhisperConfig(**configs.WHISPER_TINY))
    return model, (), {"input_features": _meta(w.batch, 80, 3000)}


def _digits_cnn(w: Workload) -> Built:
    from edgewise.capture.zoo_builtin import DigitsCNN

    return _on_meta(DigitsCNN), (_meta(w.batch, 1, 8, 8),), {}


def _dit_xl2(w: Workload) -> Built:
    """DiT-XL/2 with one shared timestep/class embedder, as in the original model.

    diffusers gives every block its own copy of the embedder (its conversion script copies
    the one original embedder into all 28); tying the copies restores the published
    parameter count. Each block still runs its copy, as diffusers' forward does.
    """
    from diffusers import DiTTransformer2DModel

    side = _side(w, 8)
    model = _on_meta(DiTTransformer2DModel, **{**configs.DIT_XL2_256, "sample_size": side})
    first, *rest = (
        model.get_submodule(f"transformer_blocks.{i}.norm1.emb")
        for i in range(configs.DIT_XL2_256["num_layers"])
    )
    for embedder in rest:
        from edgewise.capture.zoo_builtin import share_parameters

        share_parameters(first, embedder)
    batch = w.batch * (2 if w.cfg else 1)
    return (
        model,
        (),
        {
            "hidden_states": _meta(batch, 4, side, side),
            "timestep": _meta(batch, dtype="int64"),
            "class_labels": _meta(batch, dtype="int64"),
        },
    )


# --------------------------------------------------------------------------- published figures
# Each figure refers to its entry's default workload.

_TORCHVISION = (
    "torchvision {} weight meta: num_params, and _ops in GMACs of conv and matmul ops "
    "(dispatch-level counter, pytorch/vision#6936)"
)
_SDXL_TABLE1 = "Podell et al. 2023, SDXL (arXiv:2307.01952), Table 1, #UNet params: "
_OPENCLIP = (
    "mlfoundations/open_clip docs/model_profile.csv, {}: image_mparams {} (image tower with "
    "its projection); image_gflops {} by torch FlopCounterMode, 2 FLOPs per MAC, attention "
    "included"
)
_DIT = "Peebles & Xie 2022, DiT (arXiv:2212.09748), Table 4: DiT-XL/2 "
_TIMM = (
    "huggingface/pytorch-image-models results/results-imagenet.csv, {}: param_count {} "
    "(millions, 2 decimals)"
)


def _params(value: int, source: str, precision: int = 1) -> PublishedFigure:
    return PublishedFigure("params", value, "-", source, precision=precision)


def _macs(
    value: int, convention: str, source: str, workload: str, precision: int
) -> PublishedFigure:
    return PublishedFigure("macs", value, convention, source, workload, precision)


def _torchvision(
    weights: str, params: int, macs: int, convention: str
) -> tuple[PublishedFigure, ...]:
    """num_params exact; _ops given to 3 decimals of a GMAC."""
    source = _TORCHVISION.format(weights)
    return _params(params, source), _macs(macs, convention, source, "1x3x224x224", 10**6)


def _timm_params(model: str, mparams: str, note: str = "") -> PublishedFigure:
    """timm's param_count, in millions to 2 decimals: 0.01 M."""
    return _params(round(float(mparams) * 1e6), _TIMM.format(model, mparams) + note, 10**4)


def _openclip(model: str, image: str, mparams: str, gflops: str) -> tuple[PublishedFigure, ...]:
    """Parameters to 0.01 M; MACs = FLOPs / 2, so 0.01 GFLOPs is 0.005 GMACs."""
    source = _OPENCLIP.format(model, mparams, gflops)
    return (
        _params(round(float(mparams) * 1e6), source, precision=10**4),
        _macs(round(float(gflops) * 1e9 / 2), "default", source, image, 5 * 10**6),
    )


# --------------------------------------------------------------------------- the zoo

_SD_OPTIONS = frozenset({"batch", "resolution", "cfg"})
_IMAGE_OPTIONS = frozenset({"batch", "resolution"})
_LATENT = "latents are 1/8 of the image"

_ENTRIES = (
    ZooEntry(
        name="sd15-unet",
        description="Stable Diffusion 1.5 denoising U-Net (diffusers UNet2DConditionModel), "
        "one step",
        inputs="latent 1x4x64x64, text 1x77x768, timestep",
        options=_SD_OPTIONS,
        published=(
            _params(859_520_964, "diffusers ModelMixin.num_parameters docstring: the SD 1.5 "
                    "U-Net's num_parameters() is 859520964"),
        ),
        build=_sd_unet(configs.SD15_UNET, text_dim=768),
        default_resolution=512, resolution_step=8, resolution_why=_LATENT,
    ),
    ZooEntry(
        name="bk-sdm-base",
        description="BK-SDM-Base (Kim et al. 2023, block-removed knowledge distillation): "
        "the SD 1.5 U-Net with one residual + attention pair per down stage and two per up "
        "stage (layers_per_block 1), one step",
        inputs="latent 1x4x64x64, text 1x77x768, timestep",
        options=_SD_OPTIONS,
        published=(
            _params(579_384_964, "BK-SDM-Base U-Net, 0.58 B in the BK-SDM paper's Table 1; "
                    "the exact count as issue 16 states it (nota-ai/bk-sdm-base "
                    "unet/config.json: SD 1.5's with layers_per_block 1)"),
            PublishedFigure("ops", 223_755_632_640, "thop", "BK-SDM-Base U-Net under thop "
                            "(its repository's MACs figure, 223.8 G; exact as issue 16 states "
                            "it): thop.profile's total, which thop calls MACs",
                            "latent 1x4x64x64, text 1x77x768"),
        ),
        build=_sd_unet(configs.BK_SDM_BASE_UNET, text_dim=768),
        default_resolution=512, resolution_step=8, resolution_why=_LATENT,
    ),
    *(
        ZooEntry(
            name=f"bk-sdm-{size}",
            description=f"BK-SDM-{size.title()} (Kim et al. 2023): {what}, one step",
            inputs="latent 1x4x64x64, text 1x77x768, timestep",
            options=_SD_OPTIONS,
            published=(
                _params(value, f"BK-SDM-{size.title()} U-Net, {text} B in the nota-ai/bk-sdm-"
                        f"{size} model card and the BK-SDM paper's Table 1 (their figures round "
                        "up: Base's 579.4 M is 0.58 B)", precision=10**7),
            ),
            build=_sd_unet(config, text_dim=768),
            default_resolution=512, resolution_step=8, resolution_why=_LATENT,
        )
        for size, what, config, value, text in (
            ("small", "BK-SDM-Base without the mid stage", configs.BK_SDM_SMALL_UNET,
             490_000_000, "0.49"),
            ("tiny", "BK-SDM-Small without the innermost down and up stages",
             configs.BK_SDM_TINY_UNET, 330_000_000, "0.33"),
        )
    ),
    ZooEntry(
        name="sd15-vae-decoder",
        description="Stable Diffusion 1.5 VAE decode path (post_quant_conv + decoder of "
        "AutoencoderKL); no figure is published for the decoder alone",
        inputs="latent 1x4x64x64 -> image 1x3x512x512",
        options=_IMAGE_OPTIONS,
        published=(),
        build=_sd15_vae_decoder,
        default_resolution=512, resolution_step=8, resolution_why=_LATENT,
    ),
    ZooEntry(
        name="sd15-text-encoder",
        description="Stable Diffusion 1.5 text encoder: the CLIP ViT-L/14 text tower "
        "(CLIPTextModel)",
        inputs="token ids 1x77",
        options=frozenset({"batch"}),
        published=(
            _params(123_060_480, "microsoft/DeepSpeed-MII README.md, 'SD param count' note: "
                    "text_encoder 123060480"),
        ),
        build=_sd15_text_encoder,
    ),
    ZooEntry(
        name="sdxl-text-encoder-2",
        description="SDXL's second text encoder: the OpenCLIP ViT-bigG/14 text tower with its "
        "projection (CLIPTextModelWithProjection); SDXL's first is sd15-text-encoder",
        inputs="token ids 1x77",
        options=frozenset({"batch"}),
        published=(
            _params(694_659_840, "diffusers-based module table of the SD 3 pipeline, which "
                    "shares this tower: text_encoder_2 694659840 params"),
        ),
        build=_sdxl_text_encoder_2,
    ),
    ZooEntry(
        name="sd21-unet",
        description="Stable Diffusion 2.1 (768-v) denoising U-Net: per-level head widths, "
        "OpenCLIP-H text features, linear projections; one step",
        inputs="latent 1x4x96x96, text 1x77x1024, timestep",
        options=_SD_OPTIONS,
        published=(_params(865_000_000, _SDXL_TABLE1 + "865M (SD 2.x)", precision=10**6),),
        build=_sd_unet(configs.SD21_UNET, text_dim=1024),
        default_resolution=768, resolution_step=8, resolution_why=_LATENT,
    ),
    ZooEntry(
        name="sdxl-unet",
        description="SDXL 1.0 base denoising U-Net: 3 levels, up to 10 transformer blocks "
        "per level, text_time conditioning; one step",
        inputs="latent 1x4x128x128, text 1x77x2048, text_embeds 1x1280, time_ids 1x6, timestep",
        options=_SD_OPTIONS,
        published=(_params(2_600_000_000, _SDXL_TABLE1 + "2.6B (SDXL)", precision=10**8),),
        build=_sd_unet(configs.SDXL_UNET, text_dim=2048, sdxl=True),
        default_resolution=1024, resolution_step=8, resolution_why=_LATENT,
    ),
    *(
        ZooEntry(
            name=f"koala-{size}",
            description=f"KOALA-{size.upper()} (Lee et al. 2024): the SDXL U-Net with {what}; "
            "one step",
            inputs="latent 1x4x128x128, text 1x77x2048, text_embeds 1x1280, time_ids 1x6, "
            "timestep",
            options=_SD_OPTIONS,
            published=(
                _params(value, f"KOALA (arXiv:2312.04005), Table 2: KOALA-{size.upper()} "
                        f"U-Net {text}", precision=10**6),
            ),
            build=_sd_unet(config, text_dim=2048, sdxl=True),
            default_resolution=1024, resolution_step=8, resolution_why=_LATENT,
        )
        for size, what, config, value, text in (
            ("700m", "one block pair per stage, 5 transformer blocks in the deepest stage "
             "(10 in SDXL) and no mid block", configs.KOALA_700M_UNET, 782_000_000, "782M"),
            ("1b", "one block pair per stage and 6 transformer blocks in the deepest stage "
             "and the mid block", configs.KOALA_1B_UNET, 1_161_000_000, "1,161M"),
        )
    ),
    ZooEntry(
        name="vit-b16",
        description="ViT-B/16 image classifier, 1000 classes (transformers "
        "ViTForImageClassification, torchvision vit_b_16's parameters); other resolutions "
        "get a position table of their size",
        inputs="image 1x3x224x224",
        options=_IMAGE_OPTIONS,
        published=_torchvision("ViT_B_16_Weights.IMAGENET1K_V1", 86_567_656, 17_564_000_000,
                               "default"),
        build=_image_classifier("ViTForImageClassification", configs.VIT_B16, sized=True),
        default_resolution=224, resolution_step=16, resolution_why="16-pixel patches",
    ),
    ZooEntry(
        name="clip-vit-l14",
        description="CLIP ViT-L/14 image encoder with its 768-d projection "
        "(CLIPVisionModelWithProjection); other resolutions get a position table of their size",
        inputs="image 1x3x224x224",
        options=_IMAGE_OPTIONS,
        published=_openclip("ViT-L-14", "1x3x224x224", "303.97", "162.03"),
        build=_clip_vision,
        default_resolution=224, resolution_step=14, resolution_why="14-pixel patches",
    ),
    ZooEntry(
        name="clip-vit-l14-336",
        description="CLIP ViT-L/14 at 336 pixels (openai/clip-vit-large-patch14-336) with its "
        "projection",
        inputs="image 1x3x336x336",
        options=_IMAGE_OPTIONS,
        published=_openclip("ViT-L-14-336", "1x3x336x336", "304.29", "381.92"),
        build=_clip_vision,
        default_resolution=336, resolution_step=14, resolution_why="14-pixel patches",
    ),
    ZooEntry(
        name="vivit-b",
        description="ViViT-B/16x2 video classifier, joint space-time attention, Kinetics-400 "
        "(transformers VivitForVideoClassification); other frame counts and resolutions get a "
        "position table of their size. ViViT's Table 2 gives Model 1 455.2 GFLOPs, counted as "
        "multiply-adds: edgewise's 451.52 GMACs plus 3.70 G, which is one more tubelet "
        "embedding (3136 x 768 x 1536 MACs), i.e. that counter took the 3-D convolution at 2 "
        "per MAC; tests/test_zoo.py holds both",
        inputs="video 1x32x3x224x224",
        options=frozenset({"batch", "resolution", "frames"}),
        published=(
            _params(88_900_000, "Arnab et al. 2021, ViViT (arXiv:2103.15691), Table 2: "
                    "Model 1 (spatio-temporal), 88.9 M parameters", precision=10**5),
        ),
        build=_vivit_b,
        default_resolution=224, resolution_step=16, resolution_why="16-pixel tubelets",
        default_frames=32, frames_step=2,
    ),
    ZooEntry(
        name="sam-vit-h",
        description="Segment Anything ViT-H image encoder at 1024 px (transformers "
        "SamVisionEncoder, the facebook/sam-vit-huge vision config: 32 blocks, 14x14 windows "
        "but for four global ones, relative positions, the 256-channel neck). timm's 2982.23 "
        "GMACs is fvcore's count: these MACs plus 5 per layer-norm element; "
        "tests/test_zoo.py holds it",
        inputs="image 1x3x1024x1024",
        options=frozenset({"batch"}),
        published=(_timm_params("samvit_huge_patch16.sa1b", "637.03"),),
        build=_sam_vit_h,
    ),
    *(
        ZooEntry(
            name=f"mamba-130m{suffix}",
            description="Mamba-130M language model (Gu & Dao 2023; transformers "
            f"MambaForCausalLM, the state-spaces/mamba-130m-hf config) on a 128-token prompt; "
            f"{how}",
            inputs="token ids 1x128",
            options=frozenset({"batch"}),
            published=(
                _params(130_000_000, "Gu & Dao 2023, Mamba (arXiv:2312.00752), Table 3: "
                        "Mamba 130M (the language-model head shares the embedding)",
                        precision=10**7),
            ),
            build=_mamba_130m(fused),
        )
        for suffix, fused, how in (
            ("", True, "the selective scan as one fused kernel, counted by its published "
             "rule"),
            ("-reference", False, "the selective scan on the reference path, one step per "
             "token, counted op by op"),
        )
    ),
    *(
        ZooEntry(
            name=f"vim-s{suffix}",
            description="Vision Mamba Vim-S (Zhu et al. 2024): 24 bidirectional Mamba "
            f"blocks of width 384, 16-pixel patches, middle class token; {how}",
            inputs="image 1x3x224x224",
            options=frozenset({"batch"}),
            published=(
                _params(26_000_000, "Zhu et al. 2024, Vision Mamba (arXiv:2401.09417), "
                        "Table 1: Vim-S 26M", precision=10**6),
            ),
            build=_vim_s(fused),
        )
        for suffix, fused, how in (
            ("", True, "each scan one fused kernel, counted by its published rule"),
            ("-reference", False, "each scan on the reference path, counted op by op"),
        )
    ),
    ZooEntry(
        name="resnet50",
        description="ResNet-50 v1.5 image classifier (transformers ResNetForImageClassification "
        "with the microsoft/resnet-50 config: torchvision resnet50's architecture); any "
        "resolution, e.g. 299 for Coral's ResNet-50",
        inputs="image 1x3x224x224",
        options=_IMAGE_OPTIONS,
        published=_torchvision("ResNet50_Weights.IMAGENET1K_V1", 25_557_032, 4_089_000_000,
                               "thop"),
        build=_image_classifier("ResNetForImageClassification", configs.RESNET50),
        default_resolution=224,
    ),
    ZooEntry(
        name="mobilenetv2",
        description="MobileNetV2 image classifier, width 1.0 (torchvision mobilenet_v2's "
        "architecture, written out in zoo_builtin)",
        inputs="image 1x3x224x224",
        options=_IMAGE_OPTIONS,
        published=_torchvision("MobileNet_V2_Weights.IMAGENET1K_V1", 3_504_872, 301_000_000,
                               "thop"),
        build=_builtin("MobileNetV2"),
        default_resolution=224,
    ),
    ZooEntry(
        name="resnet18",
        description="ResNet-18 image classifier (transformers ResNetForImageClassification "
        "with the microsoft/resnet-18 config: basic blocks, torchvision resnet18's "
        "architecture)",
        inputs="image 1x3x224x224",
        options=_IMAGE_OPTIONS,
        published=_torchvision("ResNet18_Weights.IMAGENET1K_V1", 11_689_512, 1_814_000_000,
                               "default"),
        build=_image_classifier("ResNetForImageClassification", configs.RESNET18),
        default_resolution=224,
    ),
    ZooEntry(
        name="efficientnet-b0",
        description="EfficientNet-B0 image classifier (transformers "
        "EfficientNetForImageClassification with the google/efficientnet-b0 config: "
        "torchvision efficientnet_b0's parameters)",
        inputs="image 1x3x224x224",
        options=_IMAGE_OPTIONS,
        # default, not thop: thop hooks exact classes and misses HF's depthwise Conv2d subclass
        published=_torchvision("EfficientNet_B0_Weights.IMAGENET1K_V1", 5_288_548, 386_000_000,
                               "default"),
        build=_image_classifier("EfficientNetForImageClassification", configs.EFFICIENTNET_B0),
        default_resolution=224,
    ),
    ZooEntry(
        name="convnext-tiny",
        description="ConvNeXt-T image classifier (transformers ConvNextForImageClassification "
        "with the facebook/convnext-tiny-224 config: torchvision convnext_tiny's architecture)",
        inputs="image 1x3x224x224",
        options=_IMAGE_OPTIONS,
        published=_torchvision("ConvNeXt_Tiny_Weights.IMAGENET1K_V1", 28_589_128, 4_456_000_000,
                               "default"),
        build=_image_classifier("ConvNextForImageClassification", configs.CONVNEXT_TINY),
        default_resolution=224,
    ),
    ZooEntry(
        name="deit-small",
        description="DeiT-S (ViT-S/16) image classifier without distillation token "
        "(transformers ViTForImageClassification, the facebook/deit-small-patch16-224 "
        "config); other resolutions get a position table of their size",
        inputs="image 1x3x224x224",
        options=_IMAGE_OPTIONS,
        published=(_timm_params("deit_small_patch16_224.fb_in1k", "22.05",
                                "; Touvron et al. 2021, DeiT (arXiv:2012.12877), Table 1: 22M"),),
        build=_image_classifier("ViTForImageClassification", configs.DEIT_SMALL, sized=True),
        default_resolution=224, resolution_step=16, resolution_why="16-pixel patches",
    ),
    ZooEntry(
        name="swin-tiny",
        description="Swin-T image classifier (transformers SwinForImageClassification with "
        "the microsoft/swin-tiny-patch4-window7-224 config: torchvision swin_t's "
        "architecture); any resolution whose last stage fills a 7x7 window",
        inputs="image 1x3x224x224",
        options=_IMAGE_OPTIONS,
        # default: torchvision's counter counts the window attention matmuls, as default does
        published=_torchvision("Swin_T_Weights.IMAGENET1K_V1", 28_288_354, 4_491_000_000,
                               "default"),
        build=_image_classifier("SwinForImageClassification", configs.SWIN_TINY),
        default_resolution=224, min_resolution=193,
        resolution_why="the last stage, 1/32 of the image rounded up, must fill a 7x7 window",
    ),
    ZooEntry(
        name="mobilevit-s",
        description="MobileViT-S image classifier (transformers MobileViTForImageClassification "
        "with the apple/mobilevit-small config); trained at 256 pixels, run at 224 as "
        "Qualcomm AI Hub does; any resolution",
        inputs="image 1x3x224x224",
        options=_IMAGE_OPTIONS,
        published=(_timm_params("mobilevit_s.cvnets_in1k", "5.58",
                                "; Mehta & Rastegari 2021, MobileViT (arXiv:2110.02178): 5.6 M"),),
        build=_image_classifier("MobileViTForImageClassification", configs.MOBILEVIT_S),
        default_resolution=224,
    ),
    ZooEntry(
        name="bert-base",
        description="BERT-Base encoder (transformers BertModel with the bert-base-uncased "
        "config: embeddings, 12 layers and the pooler, no MLM head) on Qualcomm AI Hub's "
        "384-token input",
        inputs="token ids 1x384",
        options=frozenset({"batch"}),
        published=(
            _params(110_000_000, "Devlin et al. 2018, BERT (arXiv:1810.04805), section 3: "
                    "BERT-Base total parameters 110M", precision=10**6),
        ),
        build=_bert_base,
    ),
    ZooEntry(
        name="whisper-tiny-encoder",
        description="Whisper tiny audio encoder (transformers WhisperEncoder with the "
        "openai/whisper-tiny config) on 30 s of 80-bin log-mel frames; no figure is published "
        "for the encoder alone (Radford et al. 2022, Whisper, Table 1: 39M is both halves)",
        inputs="mel features 1x80x3000",
        options=frozenset({"batch"}),
        published=(),
        build=_whisper_tiny_encoder,
    ),
    ZooEntry(
        name="googlenet",
        description="GoogLeNet (Inception v1) image classifier, inference form without the "
        "auxiliary heads (torchvision googlenet's architecture, written out in zoo_builtin)",
        inputs="image 1x3x224x224",
        options=_IMAGE_OPTIONS,
        published=_torchvision("GoogLeNet_Weights.IMAGENET1K_V1", 6_624_904, 1_498_000_000,
                               "default"),
        build=_builtin("GoogLeNet"),
        default_resolution=224,
    ),
    ZooEntry(
        name="dit-xl2-256",
        description="DiT-XL/2 class-conditional latent diffusion transformer for 256x256 "
        "images (diffusers DiTTransformer2DModel, embedder copies tied); one step",
        inputs="latent 1x4x32x32, timestep 1, class label 1",
        options=_SD_OPTIONS,
        published=(
            _params(675_000_000, _DIT + "675M params", precision=10**6),
            _macs(118_600_000_000, "default", _DIT + "118.6 Gflops (reproduced as MACs with "
                  "attention matmuls counted, not as FLOPs)", "latent 1x4x32x32", 10**8),
        ),
        build=_dit_xl2,
        default_resolution=256, resolution_step=16,
        resolution_why="latents are 1/8 of the image, cut in 2x2 patches",
    ),
    ZooEntry(
        name="digits-cnn",
        description="the 40,394-parameter CNN `edgewise digits` trains on scikit-learn's 8x8 "
        "digits (architecture only; its trained weights come from `edgewise digits --train`)",
        inputs="image 1x1x8x8",
        options=frozenset({"batch"}),
        published=(),
        build=_digits_cnn,
    ),
)  # fmt: skip

ZOO: dict[str, ZooEntry] = {e.name: _resolving(e) for e in _ENTRIES}


def zoo_entry(name: str) -> ZooEntry:
    """The entry called `name`, or an error listing the known names."""
    from edgewise.capture.llm import LLMS
    from edgewise.capture.pipelines import PIPELINES

    if name in LLMS:
        raise EdgewiseError(
            f"'{name}' is a language model: profile, memory, simulate, plan and capture take "
            "it with --phase prefill|decode (simulate, profile and memory also generate)"
        )
    if name in PIPELINES:
        p = PIPELINES[name]
        phases = ", ".join([m for _, m in p.text_encoders] + [p.denoiser, p.decoder])
        raise EdgewiseError(
            f"'{name}' is a pipeline of several graphs: this command takes one; give a phase "
            f"({phases}), or use profile, memory, simulate or plan, which take pipelines"
        )
    if name not in ZOO:
        raise unknown_name("model", name, ZOO)
    return ZOO[name]


def capture_zoo(name: str, workload: Workload = DEFAULT_WORKLOAD) -> Graph:
    """Build zoo model `name` on the meta device and capture one forward at `workload`."""
    entry = zoo_entry(name)
    resolved = entry.resolve(workload)
    model, args, kwargs = entry.build(resolved)
    from edgewise.capture.torch_capture import capture

    return capture(model, *args, name=name, meta=asdict(resolved), **kwargs)
