"""Bad configuration stops the workflow before any job, with one line naming the key."""

import copy
import subprocess
import sys

import pytest

from tests.conftest import REPO, default_config, run_snakemake


def broken(edit):
    config = copy.deepcopy(default_config())
    edit(config)
    return config


@pytest.mark.parametrize("edit, key", [
    (lambda c: c["gans"]["dcgan"].update(type="stylegan9"), "gans.dcgan.type"),
    (lambda c: c["samples"].update(n=-5), "samples.n"),
    (lambda c: c.pop("skew"), "skew"),
    (lambda c: c["label"].pop("confidence_threshold"), "label.confidence_threshold"),
    (lambda c: c["gans"]["skewed"].update(colour="red"), "gans.skewed"),
    (lambda c: c["dataset"]["splits"].update(train=0.9), "dataset.splits"),
    (lambda c: c["dataset"].update(name="imagenet"), "dataset.name"),
])
def test_bad_config_fails_before_any_job(tmp_path, edit, key):
    result = run_snakemake(tmp_path, broken(edit), "-n", check=False)
    assert result.returncode != 0
    error_lines = [line for line in result.stderr.splitlines() if line.startswith("ganaudit: error:")]
    assert len(error_lines) == 1, result.stderr
    assert f": {key}:" in error_lines[0], error_lines[0]
    assert not (tmp_path / "results").exists()


def test_default_config_dry_run_lists_the_dag(tmp_path):
    result = run_snakemake(tmp_path, default_config(), "-n")
    for rule in ("prepare", "annotator", "train_gan", "sample", "label", "skew", "report"):
        assert rule in result.stdout


def test_stage_error_is_one_line_with_exit_2(tmp_path):
    result = subprocess.run([sys.executable, "-m", "audit.prepare", "--dataset", "digits", "--out", str(tmp_path / "d"),
                             "--seed", "0", "--splits", "train=0.5", "val=0.5", "pool=0.5", "test=0.5", "--option"],
                            cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [result.stderr.strip()]
    assert "dataset.splits" in result.stderr
    assert not (tmp_path / "d" / "images.npy").exists()
