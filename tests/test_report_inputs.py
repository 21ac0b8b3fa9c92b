"""The report rule declares every file the report stage reads (issue 10): Snakemake, and only
Snakemake, decides that a report is stale.

After a CI-sized run, the report's own command (as Snakemake prints it) is rerun under a Python
audit hook that records every file it opens under results/; this does not rely on the rule, so
a file the stage reads without the rule declaring it is found. Every such file must be among the
inputs Snakemake lists for the report job itself (a forced dry run): a file that reaches the
report only through another rule (meta.json through the annotator, which reruns and so makes
the report rerun too) does not count, the report must declare what it reads. Then one declared
file is changed (one byte appended, mtime moved forward: Snakemake ignores a newer mtime when a
small file's checksum is the one it recorded) and ``snakemake -n report`` must schedule the
report for it; bytes and mtime are restored, and the whole run is up to date again.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from tests.conftest import REPO, run_snakemake

pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore:`torch.jit.:FutureWarning")]

#: installed as sitecustomize in the rerun report process: records the files it opens for reading
HOOK = '''
import atexit, json, os, sys

_opened = []


def _hook(event, args):
    if event == "open" and isinstance(args[0], (str, bytes, os.PathLike)):
        mode, flags = args[1], args[2]
        reading = ("r" in mode and "+" not in mode) if isinstance(mode, str) else (flags & 3) == os.O_RDONLY
        if reading:
            _opened.append(os.path.abspath(os.fsdecode(args[0])))


def _save():
    with open(os.environ["REPORT_OPENED"], "w") as out:
        json.dump(_opened, out)


atexit.register(_save)
sys.addaudithook(_hook)
'''


@pytest.fixture(scope="module")
def finished_run(digits_ci_run):
    """The session's CI-sized digits run (tests/conftest.py): a trained GAN (train_gan's
    interpolation strips), planted ones (no strips) and an external generator module (the sample
    stage's strips): every kind of report input."""
    return digits_ci_run


def scheduled_report_inputs(workdir: Path, config: dict, *args: str) -> set[str] | None:
    """The inputs of the report job as a dry run of ``snakemake -n report`` (plus ``args``)
    lists them; None when Snakemake does not schedule the report."""
    lines = iter(run_snakemake(workdir, config, "-n", *args, "report").stdout.splitlines())
    for line in lines:
        if line.strip() == "rule report:":
            break
    else:
        return None
    for line in lines:
        if line.strip().startswith("input:"):
            return set(line.strip().removeprefix("input:").strip().split(", "))
    raise AssertionError("the report job has no input line")


def report_command(workdir: Path, config: dict) -> str:
    """The report's shell command as Snakemake runs it (printed by a forced dry run)."""
    stdout = run_snakemake(workdir, config, "-n", "-p", "--forcerun", "report", "report").stdout
    commands = [line.split(":", 1)[1].strip() for line in stdout.splitlines()
                if line.startswith("Shell command:") and "audit.report" in line]
    assert len(commands) == 1, stdout
    return commands[0]


def files_the_report_opens(workdir: Path, config: dict, tmp_path: Path) -> list[Path]:
    """Every existing file under results/ that the report command opens for reading."""
    (tmp_path / "hook").mkdir()
    (tmp_path / "hook" / "sitecustomize.py").write_text(textwrap.dedent(HOOK))
    record = tmp_path / "opened.json"
    env = {**os.environ, "REPORT_OPENED": str(record),
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
           "PYTHONPATH": os.pathsep.join([str(tmp_path / "hook"), str(REPO)])}
    result = subprocess.run(["bash", "-c", "set -euo pipefail; " + report_command(workdir, config)],
                            cwd=workdir, env=env, capture_output=True, text=True)
    assert result.returncode == 0, (result.stderr, (workdir / "results/logs/digits/report.log").read_text())
    results = (workdir / "results").resolve()
    outputs = {results / "digits" / "summary.csv", results / "digits" / "report.html"}
    opened = {Path(p).resolve() for p in json.loads(record.read_text())}
    return sorted(p for p in opened if p.is_relative_to(results) and p.is_file() and p not in outputs)


def test_every_file_the_report_opens_makes_it_rerun(finished_run, tmp_path):
    workdir, config = finished_run
    opened = files_the_report_opens(workdir, config, tmp_path)
    seen = [str(p.relative_to(workdir.resolve() / "results")) for p in opened]
    # the hook saw the report at work: every kind of file it reads or embeds
    for kind in ("digits/data/meta.json", "digits/annotator/metrics.json", "digits/annotator/confusion.png",
                 "digits/skew/skewed.json", "digits/skew/skewed.png", "digits/samples/skewed/truth.json",
                 "digits/samples/skewed/preview.png", "digits/gans/dcgan/interpolation.png",
                 "digits/samples/module/interpolation.png", "digits/spectrum/skewed.json",
                 "digits/spectrum/skewed.png", "digits/diversity/skewed.json", "digits/diversity/skewed.png",
                 "digits/diversity/real_curve.json", "dynamics/summary.json", "dynamics/figure1.png"):
        assert kind in seen, (kind, seen)

    assert scheduled_report_inputs(workdir, config) is None
    declared = scheduled_report_inputs(workdir, config, "--forcerun", "report")
    relative = {p: str(p.relative_to(workdir.resolve())) for p in opened}
    undeclared = sorted(name for name in relative.values() if name not in declared)
    assert not undeclared, f"the report reads files its rule does not declare: {undeclared}"

    # a declared file that changes makes Snakemake itself schedule the report
    path = workdir.resolve() / "results/digits/skew/skewed.json"
    before, content = path.stat(), path.read_bytes()
    path.write_bytes(content + b"\n")
    os.utime(path, ns=(before.st_atime_ns, time.time_ns() + 60 * 10**9))
    try:
        assert relative[path] in (scheduled_report_inputs(workdir, config) or set())
    finally:
        path.write_bytes(content)
        os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    # the state is restored: the whole workflow is up to date again
    assert "Nothing to be done" in run_snakemake(workdir, config, "-n").stdout
