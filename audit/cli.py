"""What every stage's command line shares: its parser, the run options and the entry point.

A stage is a module directly under ``audit/`` with ``main(argv)``; its rule passes every value
explicitly (``{input}``, ``{output}``, ``{params}``, ``{threads}``), so the stage's options have
no defaults of their own: the one source of every default is ``rules/config.schema.yaml``.
Library packages (``audit.metrics``, ``models``, ``data``, ``gans``, ``dynamics``) never parse
arguments.
"""

from __future__ import annotations

import argparse

from audit.io import run_cli

__all__ = ["stage_parser", "add_inputs", "add_outputs", "run_cli"]


def stage_parser(module: str, doc: str, *, seed: bool = True, threads: bool = True,
                 device: bool = True) -> argparse.ArgumentParser:
    """The parser of stage ``module`` (``"audit.skew"``), described by the first line of ``doc``,
    with the run options the stage uses:

    ``--seed``    the config's ``seed`` (int >= 0): same seed, same outputs;
    ``--threads`` Snakemake's ``{threads}`` (torch threads or worker processes, capped at the
                  machine's cores by :func:`audit.runtime.configure_torch`);
    ``--device``  the config's ``device`` (auto | cpu | cuda | cuda:N | mps).
    """
    parser = argparse.ArgumentParser(prog=f"python -m {module}", description=doc.strip().splitlines()[0])
    if seed:
        parser.add_argument("--seed", type=int, required=True, help="seed of every random choice")
    if threads:
        parser.add_argument("--threads", type=int, required=True, help="CPU threads (Snakemake's threads:)")
    if device:
        parser.add_argument("--device", required=True, help="auto | cpu | cuda | cuda:N | mps")
    return parser


def add_inputs(parser: argparse.ArgumentParser, **inputs: str) -> None:
    """One required flag per file (or prepared-dataset directory) the stage reads:
    ``annotator_test="the annotator's test predictions (.csv)"`` adds ``--annotator-test``."""
    for name, what in inputs.items():
        parser.add_argument(f"--{name.replace('_', '-')}", required=True, help=what)


def add_outputs(parser: argparse.ArgumentParser, **outputs: str) -> None:
    """One required flag per file the stage writes: ``losses_plot="smoothed losses (.png)"``
    adds ``--losses-plot`` with the help ``output: smoothed losses (.png)``."""
    for name, what in outputs.items():
        parser.add_argument(f"--{name.replace('_', '-')}", required=True, help=f"output: {what}")
