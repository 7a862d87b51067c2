"""Zoo pipelines: a whole generation as phases of zoo models, each with its call count.

Stable Diffusion per image: the text encoder(s) once, the U-Net once per denoising step,
the VAE decoder once. Classifier-free guidance (`cfg`) runs the denoiser on the prompt
and on the empty prompt: as one batch-2 call per step (`cfg_mode="batch"`, as diffusers
does; one weight read serves both halves) or as two batch-1 calls (`"sequential"`, as
memory-starved runtimes do). The text encoders see both prompts the same way.

    pipeline = capture_pipeline("sd15", PipelineOptions(steps=25, cfg=True))
"""

from __future__ import annotations

from dataclasses import dataclass

from edgewise.errors import EdgewiseError, unknown_name
from edgewise.ir.pipeline import MAX_CALLS, Phase, Pipeline

CFG_MODES = ("batch", "sequential")
DEFAULT_STEPS = 25


@dataclass(frozen=True)
class PipelineOptions:
    """What a user varies about one generation."""

    steps: int = DEFAULT_STEPS
    cfg: bool = False
    cfg_mode: str = "batch"
    batch: int = 1  # images per run
    resolution: int | None = None  # image size (None: the pipeline's default)

    def check(self) -> None:
        if type(self.steps) is not int or not 1 <= self.steps <= MAX_CALLS // 2:
            raise EdgewiseError(
                f"--steps must be a whole number from 1 to {MAX_CALLS // 2:,} (got {self.steps!r})"
            )
        if self.cfg_mode not in CFG_MODES:
            raise EdgewiseError(f"--cfg-mode must be batch or sequential (got '{self.cfg_mode}')")


@dataclass(frozen=True)
class PipelineEntry:
    name: str
    description: str
    text_encoders: tuple[tuple[str, str], ...]  # (phase name, zoo model)
    denoiser: str  # zoo model, one call per step
    decoder: str  # zoo model, once per image
    default_resolution: int


PIPELINES: dict[str, PipelineEntry] = {
    e.name: e
    for e in (
        PipelineEntry(
            "sd15",
            "Stable Diffusion 1.5 text-to-image: CLIP text encoder, U-Net x steps, VAE decoder",
            (("text-encoder", "sd15-text-encoder"),),
            "sd15-unet",
            "sd15-vae-decoder",
            512,
        ),
        PipelineEntry(
            "sdxl",
            "SDXL 1.0 base text-to-image: CLIP-L and OpenCLIP-bigG text encoders, U-Net x "
            "steps, VAE decoder (SDXL's VAE has SD 1.5's architecture)",
            (("text-encoder", "sd15-text-encoder"), ("text-encoder-2", "sdxl-text-encoder-2")),
            "sdxl-unet",
            "sd15-vae-decoder",
            1024,
        ),
    )
}


def is_pipeline(name: str | None) -> bool:
    return name in PIPELINES


def pipeline_entry(name: str) -> PipelineEntry:
    if name not in PIPELINES:
        raise unknown_name("pipeline", name, PIPELINES)
    return PIPELINES[name]


def pipeline_named(
    model: str | None,
    batch: int | None = None,
    resolution: int | None = None,
    frames: int | None = None,
    cfg: bool = False,
    steps: int | None = None,
    cfg_mode: str | None = None,
) -> Pipeline | None:
    """The pipeline MODEL names at the options given (captured), or None when MODEL is not
    a pipeline (then --steps and --cfg-mode are refused: they mean nothing to one graph).
    The CLI, the API and a sweep's space all build pipelines here."""
    if not is_pipeline(model):
        if steps is not None or cfg_mode is not None:
            raise EdgewiseError(
                "--steps and --cfg-mode are for pipelines (sd15, sdxl; see `edgewise zoo`): "
                f"'{model}' is one graph"
            )
        return None
    if frames is not None:
        raise EdgewiseError(f"pipeline '{model}' does not take --frames")
    if cfg_mode is not None and not cfg:
        raise EdgewiseError("--cfg-mode says how guidance runs: give --cfg with it")
    options = PipelineOptions(steps=DEFAULT_STEPS if steps is None else steps, cfg=cfg,
                              cfg_mode=cfg_mode or "batch", batch=batch or 1,
                              resolution=resolution)  # fmt: skip
    assert model is not None  # is_pipeline(None) is False
    return capture_pipeline(model, options)


def capture_pipeline(name: str, options: PipelineOptions = PipelineOptions()) -> Pipeline:
    """Capture every phase of pipeline `name` (each distinct model and input once)."""
    from edgewise.capture.source import zoo_graph as capture_zoo
    from edgewise.capture.workload import Workload

    entry = pipeline_entry(name)
    options.check()
    guided = options.cfg
    batched = guided and options.cfg_mode == "batch"
    per_call = 2 if batched else 1  # prompts in one call
    calls = 2 if guided and not batched else 1  # calls per step (or per encoding)
    resolution = options.resolution or entry.default_resolution
    b = options.batch
    phases = [
        Phase(phase, capture_zoo(model, Workload(batch=b * per_call)), calls)
        for phase, model in entry.text_encoders
    ]
    unet = capture_zoo(entry.denoiser, Workload(batch=b, resolution=resolution, cfg=batched))
    phases.append(Phase("unet", unet, options.steps * calls, steps_per_call=1 / calls))
    vae = capture_zoo(entry.decoder, Workload(batch=b, resolution=resolution))
    phases.append(Phase("vae-decoder", vae, 1))
    guidance = f", CFG {options.cfg_mode}" if guided else ""
    return Pipeline(
        name,
        tuple(phases),
        unit="image" if b == 1 else f"{b} images",
        description=f"{entry.description}; {options.steps} steps at {resolution} px{guidance}",
    )
