"""The ``ganaudit`` command (also ``python -m audit``): run the packaged workflow, start or check
a configuration.

    ganaudit init [path]                 write the commented default config.yaml to start from
    ganaudit check [my.yaml ...]         check a configuration as the workflow does (same line, exit 2)
    ganaudit run [--config my.yaml] [--cores N] [--profile slurm] [snakemake options ...]
    ganaudit --version

``run`` runs the workflow of :func:`audit.workflow_files.workflow_dir` with the current directory
as the working directory (results under ``./results``). The configuration is read as the
workflow always reads it (:mod:`audit.config`): ``./config.yaml`` if there is one, then each
``--config`` file merged over it key by key, except ``gans:``, which a later file replaces whole.
Any other option goes to Snakemake unchanged (``-n``, ``--keep-going``, ``--report``, ...).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from pathlib import Path

from audit import workflow_files as wf
from audit.config import DEFAULT_CONFIG, configure, fail


def parser() -> argparse.ArgumentParser:
    main = argparse.ArgumentParser(prog="ganaudit", description="Audit a trained GAN against its real data: "
                                   "class skew, diversity, support size, each against planted truth.",
                                   allow_abbrev=False)
    main.add_argument("--version", action="version", version=f"ganaudit {wf.package_version()}")
    commands = main.add_subparsers(dest="command", required=True, metavar="{run,init,check}")
    run = commands.add_parser("run", help="run the audit here (results under ./results)", allow_abbrev=False,
                              description="Run the packaged workflow in the current directory; options "
                                          "ganaudit does not know go to Snakemake unchanged.")
    run.add_argument("--config", action="append", default=[], metavar="YAML",
                     help="a configuration file merged over ./config.yaml (Snakemake's --configfile); repeatable")
    run.add_argument("--cores", default=None, help="CPU cores for the jobs (Snakemake's --cores; default: all)")
    run.add_argument("--profile", default=None,
                     help="a Snakemake profile: a packaged one by name (slurm) or a folder")
    init = commands.add_parser("init", help="write the commented default config.yaml to start from")
    init.add_argument("path", nargs="?", default=DEFAULT_CONFIG, help="file or folder (default: ./config.yaml)")
    check = commands.add_parser("check", help="check a configuration exactly as the workflow does")
    check.add_argument("configs", nargs="*", metavar="YAML",
                       help="configuration files merged over ./config.yaml, as `run --config` merges them")
    return main


def snakemake_command(args, extra: list[str]) -> list[str]:
    """The Snakemake command line of ``ganaudit run``."""
    command = [sys.executable, "-m", "snakemake", "--snakefile", str(wf.snakefile())]
    if args.profile is not None:
        packaged = wf.profile(args.profile)
        if packaged is None and not Path(args.profile).is_dir():
            fail(f"--profile {args.profile}: neither a packaged profile "
                 f"({', '.join(p.name for p in (wf.workflow_dir() / 'profiles').iterdir())}) nor a folder")
        command += ["--profile", str(packaged or Path(args.profile).resolve())]
    elif args.cores is None and not any(a in ("--cores", "-c", "--jobs", "-j") or a.startswith(("--cores=", "--jobs="))
                                        for a in extra):
        command += ["--cores", "all"]
    if args.cores is not None:
        command += ["--cores", str(args.cores)]
    for path in args.config:
        if not Path(path).is_file():
            fail(f"{path}: not found (--config)")
        command += ["--configfile", str(Path(path).resolve())]
    if not args.config and not Path(DEFAULT_CONFIG).is_file():
        fail(f"{DEFAULT_CONFIG}: not found in {Path.cwd()}; write one with `ganaudit init` or pass --config my.yaml")
    return command + extra


def run(args, extra: list[str]) -> int:
    # the rules' `python -m audit.<stage>` must be this interpreter, with this installation
    env = {**os.environ, "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])}
    return subprocess.run(snakemake_command(args, extra), env=env).returncode


def init(path: str) -> int:
    target = Path(path)
    if target.is_dir():
        target = target / DEFAULT_CONFIG
    if target.exists():
        fail(f"{target}: already exists; ganaudit init never overwrites a configuration")
    if not target.parent.is_dir():
        fail(f"{target.parent}: no such folder")
    shutil.copyfile(wf.default_config(), target)
    print(f"ganaudit: wrote {target} (the default audit of the digits dataset, every option commented); "
          f"edit it, check it with `ganaudit check {target}`, then `ganaudit run"
          f"{'' if target.resolve() == Path(DEFAULT_CONFIG).resolve() else f' --config {target}'}`")
    return 0


def check(configs: list[str]) -> int:
    """The checks of rules/common.smk, in the same order, with the same one-line errors (exit 2)."""
    config = configure(wf.schema(), configfiles=configs)
    sources = ([DEFAULT_CONFIG] if Path(DEFAULT_CONFIG).is_file() else []) + list(configs)
    print(f"ganaudit: {' + '.join(dict.fromkeys(sources))}: valid; dataset {config['dataset']['name']}, "
          f"GANs: {', '.join(config['gans'])}")
    return 0


def main(argv: list[str] | None = None) -> int:
    args, extra = parser().parse_known_args(argv)
    if extra and args.command != "run":
        parser().error(f"unrecognized arguments: {' '.join(extra)}")
    try:
        if args.command == "run":
            return run(args, extra)
        return init(args.path) if args.command == "init" else check(args.configs)
    except FileNotFoundError as err:  # a broken installation: no workflow files beside the package
        fail(str(err))


if __name__ == "__main__":
    sys.exit(main())
