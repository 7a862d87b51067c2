"""`edgewise hw`: the shipped accelerator presets, one spec in full, and the spec schema.

A thin layer over `edgewise.hardware`: loading, overrides and validation live there, so
`edgewise hw show FILE --set ...` checks a spec exactly as a simulation would.
"""

from __future__ import annotations

from typing import Annotated

import typer

from edgewise.cli.common import JsonOpt, SetOpt, console, to_json, write_output

hw_app = typer.Typer(
    rich_markup_mode=None,
    no_args_is_help=True,
    help="Accelerator specs: list the presets, show one in full (with overrides), the schema.",
)

SpecArg = Annotated[
    str,
    typer.Argument(
        metavar="NAME|FILE", help="a preset (see `edgewise hw list`) or a YAML/JSON file"
    ),
]


@hw_app.command("list")
def list_presets() -> None:
    """The shipped presets and their headline figures (see docs/hardware.md for sources)."""
    from rich.table import Table

    from edgewise.hardware import PRESETS, load_spec
    from edgewise.report.format import binary_bytes
    from edgewise.report.spec_report import bandwidth, tops

    table = Table(title="edgewise hardware presets (TOPS = 2 ops per MAC, dense)")
    for col in ("preset", "peak TOPS by precision", "SRAM", "DRAM", "DRAM bandwidth"):
        table.add_column(col, overflow="fold")
    table.add_column("description", overflow="fold", ratio=1)
    for name in PRESETS:
        spec = load_spec(name)
        peaks = ", ".join(f"{p} {tops(spec, p)}" for p in spec.macs_per_cycle)
        dram = binary_bytes(spec.dram_bytes) if spec.dram_bytes else "none"
        table.add_row(name, peaks, binary_bytes(spec.sram_bytes), dram,
                      bandwidth(spec.dram_bandwidth_bytes_per_s), spec.description)  # fmt: skip
    console.print(table)


@hw_app.command()
def show(spec_name: SpecArg, json_out: JsonOpt = None, overrides: SetOpt = None) -> None:
    """One spec in full: every figure with its unit and its source."""
    from rich.table import Table

    from edgewise.hardware import load_spec
    from edgewise.hardware.spec import UNSTATED
    from edgewise.report.spec_report import spec_rows

    spec = load_spec(spec_name, overrides or ())
    if json_out:
        write_output(json_out, to_json(spec.model_dump(mode="json")))
        if json_out == "-":
            return
    table = Table(title=f"{spec.name}: {spec.description}", title_justify="left")
    for col in ("field", "value", "source"):
        table.add_column(col, overflow="fold")
    for field, value, source in spec_rows(spec):
        table.add_row(field, value, source, style="yellow" if source == UNSTATED else None)
    console.print(table)
    unstated = [f for f, text in spec.sources.items() if text == UNSTATED]
    if unstated:
        console.print(f"no source given for {len(unstated)} figures ({', '.join(unstated)}): "
                      "each is an unstated assumption; add a citation, a derivation or "
                      "'assumption: <why>' under sources")  # fmt: skip


_TEMPLATE = """\
# A hardware spec for edgewise (`edgewise hw schema` has every field, its unit and bounds).
# Values take units: 1 GHz, 4 MiB, 25.6 GB/s. Give each figure a source under `sources`
# (a citation, a derivation, or 'assumption: <why>'); one left out is shown as unstated.
# Check it with `edgewise hw show {path}`; use it with `--hw {path}`.

name: "{name}"
description: "{name}: describe the chip (array, SRAM, memory) in one line"
clock_hz: 1 GHz                       # MAC array clock
mac_array: {{rows: 32, cols: 32}}       # the systolic array's shape
macs_per_cycle: {{int8: 1024, fp16: 512}}  # dense MACs per cycle at each precision
vector_ops_per_cycle: 32              # non-MAC ops (activations, norms, softmax) per cycle
sram_bytes: 4 MiB                     # on-chip memory for activations (and weights, if held)
sram_bandwidth_bytes_per_s: 128 GB/s
sram_energy_pj_per_byte: 0.625
dram_bytes: 8 GiB                     # 0 = no DRAM: everything must fit on chip
dram_bandwidth_bytes_per_s: 25.6 GB/s
dram_energy_pj_per_byte: 162.5
energy_pj_per_mac: {{int8: 0.075, fp16: 0.375}}  # one per precision in macs_per_cycle
vector_energy_pj_per_op: 0.1875
static_power_w: 0.5                   # drawn whatever the chip computes
overlap_compute_dma: true             # DMA double-buffered: transfers overlap compute
weights_resident: false               # weights stream from DRAM each call
sources:
  clock_hz: "assumption: the figures above are generic-npu's; replace them with your chip's"
"""


@hw_app.command()
def new(
    name: Annotated[str, typer.Argument(help="the spec's name (letters, digits, - and _)")],
    output: Annotated[
        str | None,
        typer.Option("-o", "--output", help="file to write (default: NAME.yaml here)"),
    ] = None,
) -> None:
    """Write a commented spec template to fill in (it validates as written)."""
    import re
    from pathlib import Path

    from edgewise.errors import EdgewiseError

    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}", name):
        raise EdgewiseError(f"hw new: '{name}' is not a spec name (letters, digits, - _ .)")
    path = output or f"{name}.yaml"
    if Path(path).exists():
        raise EdgewiseError(f"hw new: '{path}' exists; remove it or give -o another file")
    write_output(path, _TEMPLATE.format(name=name, path=path))
    console.print(f"wrote {path}: fill in your chip's figures and sources, then "
                  f"`edgewise hw show {path}`")  # fmt: skip


@hw_app.command()
def schema(json_out: JsonOpt = "-") -> None:
    """The JSON schema of a spec file (the fields, their units, bounds and meaning)."""
    from edgewise.hardware import hardware_json_schema

    write_output(json_out or "-", to_json(hardware_json_schema()))
