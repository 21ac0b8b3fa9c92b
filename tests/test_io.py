"""audit/io.py: file modes, byte-reproducible torch files, no temporary file left by SIGTERM or
SIGKILL, one-line errors with their detail, the run lock, and the stage errors onerror prints."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pandas as pd
import pytest
import torch

from audit.io import AuditInputError, atomic_path, run_cli, save_array, save_json, save_table
from tests.conftest import REPO


@pytest.fixture
def umask():
    """Set the process umask for one test and restore it."""
    before = os.umask(0o022)
    os.umask(before)
    yield lambda mask: os.umask(mask)
    os.umask(before)


def write_every_kind(folder, checkpoint):
    """One file through each writer of audit.io, audit.plots and the models; their paths."""
    from audit.models.gan import save_generator
    from audit.plots import save_grid

    save_json(folder / "a.json", {"x": 1})
    save_array(folder / "a.npy", np.zeros(3))
    save_table(folder / "a.csv", pd.DataFrame({"x": [1]}))
    torch.save({"generator": {"w": torch.zeros(2)}, "config": {}, "step": 1}, checkpoint)
    save_generator(checkpoint, folder / "a.pt")
    save_grid(np.zeros((4, 8, 8, 1), dtype=np.uint8), folder / "a.png")
    with atomic_path(folder / "a.html") as tmp:
        tmp.write_text("<p>")
    return sorted(folder.iterdir())


@pytest.mark.parametrize("mask, mode", [(0o022, 0o644), (0o002, 0o664), (0o077, 0o600)])
def test_results_follow_the_umask(tmp_path, umask, mask, mode):
    """Issue 11.6: mkstemp made every result 0600 whatever the umask; a shared cluster group
    could not read summary.csv. Fails if any writer creates its file with a fixed mode."""
    umask(mask)
    (tmp_path / "out").mkdir()
    files = write_every_kind(tmp_path / "out", tmp_path / "checkpoint.pt")
    assert len(files) == 6
    assert {f.name: oct(f.stat().st_mode & 0o777) for f in files} == {f.name: oct(mode) for f in files}


def test_torch_files_do_not_depend_on_their_name(tmp_path):
    """Issue 11.7: torch.save given a path names the zip entries after the (random) temporary
    file; the GAN's generator and checkpoint and the classifiers are written through save_torch.
    Fails if two saves of one object under different names differ in any byte."""
    from audit.models.classifier import build_classifier, save_classifier
    from audit.models.gan import save_generator

    torch.manual_seed(0)
    checkpoint = tmp_path / "checkpoint.pt"
    torch.save({"generator": {"w": torch.randn(5)}, "config": {"latent_dim": 4}, "step": 3}, checkpoint)
    save_generator(checkpoint, tmp_path / "one" / "generator.pt")
    save_generator(checkpoint, tmp_path / "two" / "another_name.pt")
    assert (tmp_path / "one" / "generator.pt").read_bytes() == (tmp_path / "two" / "another_name.pt").read_bytes()
    model = build_classifier("smallcnn", (8, 8, 1), 10)
    for name in ("model.pt", "other.pt"):
        save_classifier(tmp_path / name, model, "smallcnn", (8, 8, 1), [str(k) for k in range(10)], 0.8)
    assert (tmp_path / "model.pt").read_bytes() == (tmp_path / "other.pt").read_bytes()


WRITER = textwrap.dedent("""
    import sys, time
    from audit.io import atomic_path, run_cli

    def main(argv):
        with atomic_path(sys.argv[1]) as tmp:
            tmp.write_text("half")
            print("writing", flush=True)
            time.sleep(60)

    run_cli(main)
""")


def test_sigterm_during_a_write_leaves_nothing(tmp_path):
    """Issue 11.8: a SIGTERM (cluster cancellation) during a write left the hidden .part file.
    Fails if the temporary file or the target survives, or the stage does not exit 128 + 15."""
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(tmp_path / "out.npy")], cwd=REPO,
                              stdout=subprocess.PIPE, text=True)
    assert writer.stdout.readline().strip() == "writing"
    assert len(list(tmp_path.iterdir())) == 1  # the .part file exists while the stage writes
    writer.send_signal(signal.SIGTERM)
    assert writer.wait(timeout=30) == 128 + signal.SIGTERM
    assert list(tmp_path.iterdir()) == []


def test_stale_parts_are_removed_and_nothing_else(tmp_path):
    """What a SIGKILL leaves (the temporary file of atomic_path, old mkstemp names included) goes;
    a user's hidden file or a file merely called *.part stays."""
    from audit.io import remove_stale_parts

    stale = [tmp_path / "a" / ".samples.1f3a9c0e.part.npy", tmp_path / ".report.k2_x9ab1.part.html",
             tmp_path / "b" / ".generator.00ff00ff.part.pt"]
    kept = [tmp_path / ".hidden", tmp_path / "a" / "samples.part.npy", tmp_path / "a" / ".x.part",
            tmp_path / "b" / "generator.pt"]
    for path in stale + kept:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("x")
    assert sorted(remove_stale_parts(tmp_path)) == sorted(stale)
    assert sorted(p for p in tmp_path.rglob("*") if p.is_file()) == sorted(kept)


def test_one_line_then_the_detail(capsys):
    """Issue 11.5: the one line comes first (the terminal shows it), the detail after (the log)."""
    def main(argv):
        raise AuditInputError("gans.g: target 'm:f': raised ValueError: boom", detail="Traceback ...\nValueError: boom\n")

    with pytest.raises(SystemExit) as exit_info:
        run_cli(main, [])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.splitlines() == [
        "ganaudit: error: gans.g: target 'm:f': raised ValueError: boom", "Traceback ...", "ValueError: boom"]


HOLDER = textwrap.dedent("""
    import sys, time
    from audit.io import RunLock

    assert RunLock(sys.argv[1]).acquire("running")
    print("held", flush=True)
    time.sleep(60)
""")


def test_run_lock_is_exclusive_and_dies_with_its_holder(tmp_path):
    """Issue 11.9: the project lock. Fails if a second holder gets it while the first lives, or
    if a kill -9 of the holder leaves it taken (a stale lock)."""
    from audit.io import RunLock

    path = tmp_path / ".snakemake" / "ganaudit.lock"
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(path)], cwd=REPO, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        lock = RunLock(path)
        started = time.monotonic()
        assert not lock.acquire(wait=0.5)
        assert time.monotonic() - started >= 0.5
        assert lock.holder().startswith(f"pid {holder.pid} on ") and lock.holder().endswith("running")
        assert lock.clear_stale(tmp_path) == []  # not held: nothing is deleted
    finally:
        holder.kill()
        holder.wait()
    assert lock.acquire("starting")
    assert lock.holder().startswith(f"pid {os.getpid()} ")
    lock.release()


def test_the_holder_clears_snakemakes_stale_locks(tmp_path):
    from audit.io import RunLock

    locks = tmp_path / "locks"
    locks.mkdir()
    for name in ("0.input.lock", "0.output.lock"):
        (locks / name).write_text("results/x\n")
    lock = RunLock(tmp_path / "ganaudit.lock")
    assert lock.acquire()
    assert [p.name for p in lock.clear_stale(locks)] == ["0.input.lock", "0.output.lock"]
    assert list(locks.iterdir()) == []
    lock.release()


def test_stage_errors_of_this_run_only(tmp_path):
    """Issue 11.11: onerror prints the failed stages' one-line errors whatever the profile; the
    logs of an earlier run (older than the run's start) are not repeated."""
    from audit.io import stage_errors

    old, new, fine = tmp_path / "sample" / "old.log", tmp_path / "sample" / "g.log", tmp_path / "label" / "h.log"
    for path, text in ((old, "ganaudit: error: stale\n"), (new, "loading\nganaudit: error: gans.g: bad\nTraceback\n"),
                       (fine, "ganaudit: warning: fine\n")):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    os.utime(old, (time.time() - 3600, time.time() - 3600))
    assert stage_errors(tmp_path, since=time.time() - 60) == [f"ganaudit: error: gans.g: bad (log: {new})"]


SNAKEMAKE_LOG = """
Error in rule sample:
    message: None
    jobid: 3
    log: {sample} (check log file(s) for error details)
    shell:
        python -m audit.sample ... > {sample} 2>&1
Error in rule skew:
    jobid: 4
    log: {skew} (check log file(s) for error details)
Error in rule report:
    jobid: 5
Exiting because a job execution failed. Look above for error messages
"""


def test_failure_lines_name_every_failed_job(tmp_path):
    """One line per failed job read from Snakemake's own log: the stage's one-line error, else
    the last line of its log (a crash ends with the exception), else that it left no log."""
    from audit.io import failure_lines

    sample, skew = tmp_path / "sample.log", tmp_path / "skew.log"
    sample.write_text("ganaudit: error: gans.g: no PNG\nTraceback (most recent call last):\n  ...\n")
    skew.write_text("Traceback (most recent call last):\n  File x\nKeyError: 'p_0'\n\n")
    main_log = tmp_path / "run.snakemake.log"
    main_log.write_text(SNAKEMAKE_LOG.format(sample=sample, skew=skew))
    assert failure_lines([main_log], tmp_path / "none", since=0) == [
        f"ganaudit: error: gans.g: no PNG (log: {sample})",
        f"ganaudit: error: rule skew failed: KeyError: 'p_0' (log: {skew})",
        "ganaudit: error: rule report failed: no message (log: none; see above)"]
    # a Snakemake log naming no failed job: the error lines of this run's stage logs
    main_log.write_text("Exiting because a job execution failed.\n")
    assert failure_lines(main_log, tmp_path, since=0) == [f"ganaudit: error: gans.g: no PNG (log: {sample})"]


def test_a_resumed_training_state_is_byte_identical(tmp_path):
    """Issue 11.7/11.8: training 4 steps at once and training 2, then resuming to 4 from the
    checkpoint, must write the same checkpoint bytes (the loaded keys of the resumed state
    pickled differently from fresh ones). Fails on any difference in content or pickling."""
    from audit.models.gan import train_gan

    images = np.random.default_rng(0).integers(0, 256, (32, 8, 8, 1), dtype=np.uint8)
    options = dict(batch_size=4, latent_dim=2, width=4, checkpoint_every=2, progress=False)
    train_gan(images, tmp_path / "once" / "checkpoint.pt", steps=4, **options)
    train_gan(images, tmp_path / "resumed" / "checkpoint.pt", steps=2, **options)
    train_gan(images, tmp_path / "resumed" / "checkpoint.pt", steps=4, **options)
    assert (tmp_path / "once/checkpoint.pt").read_bytes() == (tmp_path / "resumed/checkpoint.pt").read_bytes()
