"""Issue 11, end to end on a small config: two runs in one directory (the second is refused), two
clean runs in two directories (byte-identical results, file modes from the umask), and a run
killed with SIGKILL during `train_gan` and again during `diversity`, resumed as the README says
(rerun the same command, no --unlock), ending byte-identical to an uninterrupted run.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO, reduced_config

pytestmark = pytest.mark.slow


def small_config() -> dict:
    """One reference GAN, 300 training steps (a checkpoint every 50: long enough to be killed in
    between), 300 samples, tiny classifiers; every stage of the DAG runs."""
    config = reduced_config()
    config["annotator"].update(epochs=3, patience=2)
    config["gans"] = {"dcgan": {"type": "dcgan", "steps": 300, "checkpoint_every": 50, "batch_size": 32,
                                "latent_dim": 16, "width": 16, "lr": 0.0002}}
    config["samples"]["n"] = 300
    config["skew"]["bootstrap"] = 20
    config["diversity"].update(seeds=1, steps=20, grid=[20, 50], gan_grid=[100], bootstrap=20)
    config["spectrum"]["max_samples"] = 300
    config["dynamics"].update(runs=20, steps=20, eta_g=[0.3], eta_d=[0.3])
    return config


def start(workdir: Path, *args: str, umask: int = 0o022) -> subprocess.Popen:
    """`snakemake --cores 2 <args>` on workdir/config.yaml in its own process group (so a kill -9
    reaches its jobs too, as a node failure would), its output in workdir/run<k>.txt."""
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    command = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "--directory", str(workdir),
               "--configfile", str(workdir / "config.yaml"), "--cores", "2", *args]
    output = workdir / f"run{len(list(workdir.glob('run*.txt')))}.txt"
    with open(output, "w") as stream:
        run = subprocess.Popen(command, cwd=workdir, env=env, umask=umask, start_new_session=True,
                               stdout=stream, stderr=subprocess.STDOUT)
    run.output = output
    return run


def finish(run: subprocess.Popen, timeout: float = 300) -> tuple[int, str]:
    run.wait(timeout=timeout)
    return run.returncode, run.output.read_text()


def new_workdir(tmp_path_factory, name: str) -> Path:
    workdir = tmp_path_factory.mktemp(name)
    (workdir / "config.yaml").write_text(yaml.safe_dump(small_config(), sort_keys=False))
    return workdir


def wait_for(condition, run: subprocess.Popen, what: str, timeout: float = 240) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if run.poll() is not None:
            raise AssertionError(f"the run ended ({run.returncode}) before {what}:\n{run.output.read_text()[-3000:]}")
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def kill_group(run: subprocess.Popen) -> None:
    os.killpg(run.pid, signal.SIGKILL)
    run.wait()


def result_files(workdir: Path) -> dict[str, Path]:
    """Every file under results/ but the per-job logs and benchmark files, by relative path."""
    root = workdir / "results"
    return {p.relative_to(root).as_posix(): p for p in root.rglob("*")
            if p.is_file() and p.relative_to(root).parts[0] not in ("logs", "benchmarks")}


def differing(first: Path, second: Path) -> list[str]:
    one, two = result_files(first), result_files(second)
    assert sorted(one) == sorted(two)
    return [name for name in sorted(one) if one[name].read_bytes() != two[name].read_bytes()]


@pytest.fixture(scope="module")
def second_run(tmp_path_factory):
    """A clean run in another directory under umask 002, started first: it runs beside the first
    (the machine's two cores are shared by both; each alone leaves one idle much of the time)."""
    workdir = new_workdir(tmp_path_factory, "second")
    run = start(workdir, umask=0o002)
    yield workdir, run
    if run.poll() is None:  # its test was not selected
        kill_group(run)


@pytest.fixture(scope="module")
def first_run(tmp_path_factory, second_run):
    """An uninterrupted run (umask 022). While it runs, a run with nothing to do exits in the same
    directory (Snakemake 9.27.1 then deletes the whole .snakemake/locks/, the running run's locks
    included), then a second full run starts there: it must be refused."""
    workdir = new_workdir(tmp_path_factory, "first")
    run = start(workdir)
    wait_for(lambda: (workdir / "results/digits/data/meta.json").is_file(), run, "prepare finished")
    nothing_to_do = start(workdir, "results/digits/data/meta.json")
    assert finish(nothing_to_do)[0] == 0
    second = start(workdir)
    code, stderr = finish(second)
    first_still_running = run.poll() is None
    code_first, stderr_first = finish(run)
    assert code_first == 0, stderr_first[-3000:]
    return workdir, (code, stderr, first_still_running)


def test_a_second_run_in_one_directory_is_refused(first_run):
    """Issue 11.9. Fails if the second run starts jobs beside the first (today's main: Snakemake's
    lock files were deleted by the run with nothing to do, so nothing stops it)."""
    _, (code, stderr, first_still_running) = first_run
    assert code == 2, stderr[-3000:]
    refusals = [line for line in stderr.splitlines() if line.startswith("ganaudit: error: another run is active")]
    assert len(refusals) == 1, stderr[-3000:]
    assert "Execute " not in stderr  # no job of the second run started
    assert first_still_running, "the first run had ended when the second was refused: the test proves nothing"


def test_two_clean_runs_are_byte_identical(first_run, second_run):
    """Issue 11.7 and 11.6: same seed, same config, another directory and umask 002: every result
    file byte-identical (logs and benchmarks aside), modes 0644 under umask 022 and 0664 under
    002. Fails on any embedded path, temporary name, timing or other run-to-run difference."""
    first, _ = first_run
    second, run = second_run
    code, stderr = finish(run)
    assert code == 0, stderr[-3000:]
    assert differing(first, second) == []
    for workdir, mode in ((first, 0o644), (second, 0o664)):
        files = [p for p in (workdir / "results").rglob("*") if p.is_file()]
        assert len(files) > 40
        assert {oct(p.stat().st_mode & 0o777) for p in files} == {oct(mode)}


def test_killed_twice_and_resumed_is_identical(first_run, tmp_path_factory):
    """Issue 11.8: SIGKILL (the whole run, jobs included) during `train_gan`, then during
    `diversity`; each time the README's resume (rerun the same command) must work without
    --unlock, remove what the kill left half-written, and the end must be byte-identical to the
    uninterrupted run. Fails on today's main: the rerun is refused until `snakemake --unlock`."""
    first, _ = first_run
    workdir = new_workdir(tmp_path_factory, "killed")
    gan = workdir / "results/digits/gans/dcgan"
    run = start(workdir)
    wait_for(lambda: (gan / "checkpoint.pt").is_file(), run, "the first training checkpoint")
    kill_group(run)
    assert not (gan / "generator.pt").exists(), "training ended before the kill: raise the steps"
    # what a SIGKILL during a write leaves (audit.io.atomic_path's temporary file)
    stale = gan / ".generator.0123abcd.part.pt"
    stale.write_bytes(b"half")

    diversity = workdir / "results/digits/diversity"
    run = start(workdir)
    wait_for(lambda: (workdir / "results/logs/digits/diversity/dcgan.log").is_file(), run, "diversity started")
    time.sleep(0.5)
    kill_group(run)
    assert not (diversity / "dcgan.json").exists(), "diversity ended before the kill"
    assert not stale.exists()

    code, stderr = finish(start(workdir))
    assert code == 0, stderr[-3000:]
    assert not [p for p in (workdir / "results").rglob(".*") if ".part" in p.name]
    assert differing(first, workdir) == []


def test_smallest_sample_count_runs_every_stage(first_run, tmp_path_factory):
    """Issue 11.10: the schema's minimum of samples.n (2, refused below with its reason, see
    tests/test_config.py) is usable by every stage of the DAG. The first run's directory is
    copied and samples.n set to the minimum: every job downstream of the samples reruns. Fails
    if any stage cannot use 2 samples (then the minimum and its description must rise)."""
    first, _ = first_run
    workdir = tmp_path_factory.mktemp("smallest") / "run"
    shutil.copytree(first, workdir, symlinks=True)
    schema = yaml.safe_load((REPO / "rules/config.schema.yaml").read_text())
    minimum = schema["properties"]["samples"]["properties"]["n"]["minimum"]
    assert minimum == 2
    config = small_config()
    config["samples"]["n"] = minimum
    (workdir / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    code, output = finish(start(workdir))
    assert code == 0, output[-5000:]
    rerun = {line.split()[-1].rstrip(":") for line in output.splitlines() if line.startswith(("rule ", "localrule "))}
    assert {"sample", "label", "skew", "spectrum", "diversity", "report"} <= rerun, rerun
    assert "train_gan" not in rerun and "annotator" not in rerun


def test_a_stage_error_reaches_the_terminal_without_a_profile(tmp_path):
    """Issue 11.11: a stage's one line reached the terminal only through the default profile's
    show-failed-logs; the workflow's onerror prints it (and how to resume) under any profile or
    none. Fails if the line is missing, repeated, or does not name its log."""
    (tmp_path / "empty").mkdir()
    config = small_config()
    config["gans"] = {"mine": {"type": "folder", "path": str(tmp_path / "empty")}}
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    code, output = finish(start(tmp_path, "--workflow-profile", "none", "results/digits/samples/mine/samples.npy"))
    assert code == 1
    errors = [line for line in output.splitlines() if line.startswith("ganaudit: error:")]
    assert errors == [f"ganaudit: error: gans.mine: {tmp_path / 'empty'}: no PNG or JPEG images found (searched "
                      "recursively) (log: results/logs/digits/sample/mine.log)"]
    assert "ganaudit: to resume, fix the cause and rerun the same command" in output
