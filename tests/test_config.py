"""Bad configuration stops the workflow before any job, with one line naming the key."""

import copy
import subprocess
import sys
import textwrap

import pytest

from tests.conftest import REPO, default_config, run_snakemake


def broken(edit):
    config = copy.deepcopy(default_config())
    edit(config)
    return config


@pytest.mark.parametrize("edit, expected", [
    (lambda c: c["gans"]["dcgan"].update(type="stylegan9"), "gans.dcgan.type:"),
    (lambda c: c["samples"].update(n=-5), "samples.n:"),
    (lambda c: c.pop("skew"), "skew:"),
    (lambda c: c["label"].pop("confidence_threshold"), "label.confidence_threshold:"),
    (lambda c: c["gans"]["skewed"].update(colour="red"), "gans.skewed:"),
    (lambda c: c["dataset"]["splits"].update(train=0.9), "dataset.splits:"),
    (lambda c: c["dataset"].update(name="imagenet"), "dataset.name:"),
    # issue 11.2: without `type`, every `if type == ...` branch applied and named the wrong key
    (lambda c: c["gans"].update(g={"path": "s.npy", "layout": "NHWC_uint8"}), "gans.g.type: required key is missing"),
    (lambda c: c["gans"].update(g={"steps": 10}), "gans.g.type: required key is missing"),
    # issue 11.10: one sample passed the schema and failed at the spectrum stage, after three stages
    (lambda c: c["samples"].update(n=1), "samples.n: 1 is less than the minimum of 2 (the smallest N every stage "
                                         "can use: a covariance spectrum needs 2 samples)"),
    # a Monte Carlo p-value floor above the first Holm level alpha / 8 could never be flagged in the table
    (lambda c: c["spectrum"].update(null_draws=50), "spectrum.null_draws: 50 draws cannot give a p-value below "
                                                    "spectrum.alpha / 8 = 0.00625"),
    (lambda c: c["feature_metrics"].update(permutations=159, alpha=0.05), "feature_metrics.permutations: 159 draws"),
])
def test_bad_config_fails_before_any_job(tmp_path, edit, expected):
    """One line naming config.yaml and the key, exit status 2 (issue 11.11: it was 1), no job."""
    result = run_snakemake(tmp_path, broken(edit), "-n", check=False)
    assert result.returncode == 2
    assert error_lines(result)[0].startswith(f"ganaudit: error: config.yaml: {expected}"), result.stderr
    assert not (tmp_path / "results").exists()


def error_lines(result) -> list[str]:
    """The one 'ganaudit: error:' line of a run (a list, to compare with one element)."""
    lines = [line for line in result.stderr.splitlines() if line.startswith("ganaudit: error:")]
    assert len(lines) == 1, result.stderr
    return lines


def user_file(tmp_path, text: str):
    """A user's config file, passed as `--configfile` on top of the default config.yaml."""
    path = tmp_path / "my.yaml"
    path.write_text(textwrap.dedent(text))
    return path


def test_a_configfile_names_exactly_the_gans_to_audit(tmp_path):
    """Issue 11.1: Snakemake merged a user's three GANs into config.yaml's six (the 2,000-step
    DCGAN included). Now its `gans:` replaces them; its other keys still merge key by key."""
    my = user_file(tmp_path, """
        gans:
          a: {type: resample, class_probs: real}
          b: {type: memoriser, k: 5}
          c: {type: dropmodes, n_classes_kept: 3}
        samples: {n: 500}
        """)
    result = run_snakemake(tmp_path, default_config(), "-n", "--configfile", str(my))
    gans = {line.split("gan=")[1].strip() for line in result.stdout.splitlines() if "wildcards: gan=" in line}
    assert gans == {"a", "b", "c"}
    assert "train_gan" not in result.stdout
    assert "--n 500 " in result.stdout and "--bootstrap 1000 " in result.stdout  # my.yaml, then config.yaml
    assert "ganaudit: the gans of my.yaml replace those of config.yaml: auditing a, b, c" in result.stderr


@pytest.mark.parametrize("text, error", [
    ("gans: {}\n", "my.yaml: gans: {} should be non-empty"),
    ("gans:\n  a: {type: memoriser, k: 5}\n  b: {type: blank}\n  a: {type: resample}\n",
     "my.yaml: line 4: duplicate key 'a' (first at line 2); YAML would keep only the last"),
    ("samples: {n: 50}\nskew: {bootstrap: 20}\nsamples: {n: 60}\n",
     "my.yaml: line 3: duplicate key 'samples' (first at line 1); YAML would keep only the last"),
    ("gans: [a, b]\n", "my.yaml: gans: ['a', 'b'] is not of type 'object'"),
    ("samples: {n: 1}\n", "my.yaml: samples.n: 1 is less than the minimum of 2"),
])
def test_a_configfile_error_names_the_file(tmp_path, text, error):
    """Issues 11.1 and 11.3: `gans: {}` ran the six defaults, a duplicate key kept the last value
    silently; the error names the file that set the key (my.yaml, not config.yaml)."""
    result = run_snakemake(tmp_path, default_config(), "-n", "--configfile", str(user_file(tmp_path, text)),
                           check=False)
    assert result.returncode == 2
    assert error_lines(result)[0].startswith(f"ganaudit: error: {error}")
    assert not (tmp_path / "results").exists()


@pytest.mark.parametrize("kind", ["loop", "broken", "missing"])
def test_a_bad_folder_path_is_one_line_before_any_job(tmp_path, kind):
    """Issue 11.4: a folder GAN whose path is a symlink loop crashed DAG building with a 53-line
    traceback (a missing path: Snakemake's MissingInputException); now one line, exit 2."""
    target = tmp_path / "samples"
    if kind == "loop":
        target.symlink_to(tmp_path / "back")
        (tmp_path / "back").symlink_to(target)
    elif kind == "broken":
        target.symlink_to(tmp_path / "gone")
    config = default_config()
    config["gans"] = {"mine": {"type": "folder", "path": str(target)}}
    result = run_snakemake(tmp_path, config, check=False)
    assert result.returncode == 2
    expected = {"loop": f"gans.mine.path: {target}: a symlink loop (Too many levels of symbolic links)",
                "broken": f"gans.mine.path: {target}: a broken symlink (to {tmp_path / 'gone'})",
                "missing": f"gans.mine: {target}: directory not found"}[kind]
    assert error_lines(result) == [f"ganaudit: error: config.yaml: {expected}"]
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
