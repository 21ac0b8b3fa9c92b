"""The installable package and the ganaudit command: workflow files found in a clone and in an
installed copy, `ganaudit check` agreeing with the DAG line for line, and (slow) a fresh virtual
environment outside the repository that installs the repository and runs `ganaudit init && ganaudit
run` to a report, whose skew and FD figures the Python API reproduces from the run's own files."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import numpy as np
import pytest
import yaml

from audit import workflow_files as wf
from tests.conftest import REPO, reduced_config

PYTHON = Path(sys.executable)


def requirement_lines() -> list[str]:
    lines = (line.split("#", 1)[0].strip() for line in (REPO / "requirements.txt").read_text().splitlines())
    return [line for line in lines if line]


def ganaudit(*args: str, cwd: Path, python: Path = PYTHON) -> subprocess.CompletedProcess:
    """``python -m audit <args>`` in ``cwd``; the repository importable only through this python's
    own installation or (for the repo's .venv) PYTHONPATH."""
    env = {**os.environ, "PATH": f"{python.parent}{os.pathsep}{os.environ['PATH']}"}
    env.pop("PYTHONPATH", None)
    if python == PYTHON:
        env["PYTHONPATH"] = str(REPO)
    return subprocess.run([str(python), "-m", "audit", *args], cwd=cwd, env=env, capture_output=True, text=True)


def test_workflow_dir_is_the_repository_in_a_clone():
    assert wf.workflow_dir() == REPO
    assert wf.profile("slurm") == REPO / "profiles" / "slurm" and wf.profile("nonesuch") is None
    for name in wf.WORKFLOW_FILES:  # every packaged path exists, so the build hook copies something real
        assert (REPO / name).exists(), name


def test_dependencies_are_requirements_txt():
    """pyproject declares the dependencies dynamic (setup.py reads requirements.txt), with no static
    list beside them that could drift; the installed metadata is compared in the slow test."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert "dependencies" in project["dynamic"] and "dependencies" not in project
    assert "install_requires=requirements()" in (REPO / "setup.py").read_text()
    assert project["version"] == ganaudit("--version", cwd=REPO).stdout.split()[-1]


def test_init_writes_the_default_config_and_refuses_to_overwrite(tmp_path):
    done = ganaudit("init", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "config.yaml").read_text() == (REPO / "config.yaml").read_text()
    again = ganaudit("init", cwd=tmp_path)
    assert again.returncode == 2 and again.stderr.strip() == (
        "ganaudit: error: config.yaml: already exists; ganaudit init never overwrites a configuration")
    assert ganaudit("check", cwd=tmp_path).returncode == 0


def test_run_command_line(tmp_path, monkeypatch):
    """`run` passes the packaged Snakefile, the user's files as --configfile, a packaged profile by
    name, and every option it does not know to Snakemake unchanged."""
    from audit.__main__ import parser, snakemake_command

    monkeypatch.chdir(tmp_path)
    (tmp_path / "my.yaml").write_text("seed: 1\n")
    args, extra = parser().parse_known_args(["run", "--config", "my.yaml", "--profile", "slurm", "-n", "--keep-going"])
    command = snakemake_command(args, extra)
    assert command[1:5] == ["-m", "snakemake", "--snakefile", str(REPO / "Snakefile")]
    assert command[command.index("--profile") + 1] == str(REPO / "profiles" / "slurm")
    assert command[command.index("--configfile") + 1] == str(tmp_path / "my.yaml")
    assert command[-2:] == ["-n", "--keep-going"] and "--cores" not in command
    args, extra = parser().parse_known_args(["run", "--config", "my.yaml"])
    command = snakemake_command(args, extra)
    assert command[-4:] == ["--cores", "all", "--configfile", str(tmp_path / "my.yaml")]
    args, extra = parser().parse_known_args(["run", "--config", "my.yaml", "--cores", "3", "--forceall"])
    assert snakemake_command(args, extra)[-5:] == ["--cores", "3", "--configfile", str(tmp_path / "my.yaml"),
                                                   "--forceall"]
    missing = ganaudit("run", cwd=tmp_path)  # no config.yaml here and no --config
    assert missing.returncode == 2 and "config.yaml: not found" in missing.stderr and "ganaudit init" in missing.stderr
    unknown = ganaudit("run", "--config", "my.yaml", "--profile", "nonesuch", cwd=tmp_path)
    assert unknown.returncode == 2 and "--profile nonesuch: neither a packaged profile" in unknown.stderr


def bad_configs() -> dict[str, str]:
    """Three ways a config is wrong: a schema bound, a cross-key rule, a duplicate YAML key."""
    base = (REPO / "config.yaml").read_text()
    steps = yaml.safe_load(base)
    steps["gans"]["dcgan"]["steps"] = 0
    splits = yaml.safe_load(base)
    splits["dataset"]["splits"]["train"] = 0.5
    return {"steps.yaml": yaml.safe_dump(steps), "splits.yaml": yaml.safe_dump(splits),
            "duplicate.yaml": base.replace("seed: 0 ", "seed: 0\nseed: 1 ", 1)}


@pytest.mark.parametrize("name", sorted(bad_configs()))
def test_check_prints_the_dags_line_and_status(tmp_path, name):
    (tmp_path / name).write_text(bad_configs()[name])
    env = {**os.environ, "PATH": f"{PYTHON.parent}{os.pathsep}{os.environ['PATH']}"}
    dag = subprocess.run([str(PYTHON), "-m", "snakemake", "-s", str(REPO / "Snakefile"), "-n", "--configfile", name],
                         cwd=tmp_path, env=env, capture_output=True, text=True)
    check = ganaudit("check", name, cwd=tmp_path)
    dag_errors = [line for line in dag.stderr.splitlines() if line.startswith("ganaudit: error:")]
    assert check.stderr.splitlines() == dag_errors and len(dag_errors) == 1, (dag.stderr, check.stderr)
    assert dag_errors[0].startswith(f"ganaudit: error: {name}: ")
    assert check.returncode == dag.returncode == 2


# ------------------------------------------------------------------------------------------------
# slow: a fresh virtual environment outside the repository


def ci_config(text: str) -> dict:
    """``ganaudit init``'s config cut as tests/conftest.py's reduced_config() cuts the default, with
    one trained GAN and one planted control (the planted skew) to keep the run within minutes."""
    config = yaml.safe_load(text)
    reduced = reduced_config()
    for section in ("annotator", "samples", "skew", "diversity", "dynamics"):
        config[section] = reduced[section]
    config["samples"]["n"] = 2000
    config["gans"] = {name: reduced["gans"][name] for name in ("dcgan", "skewed")}
    return config


def fresh_venv(root: Path) -> Path:
    """A new virtual environment at ``root`` seeing the repo's .venv packages through a .pth file;
    its python. The venv's bundled setuptools (65.x: no bdist_wheel without `wheel`) is removed so
    the .venv's pinned one builds the package."""
    base_python = Path(getattr(sys, "_base_executable", sys.executable))
    subprocess.run([str(base_python), "-m", "venv", str(root)], check=True)
    site = root / "lib" / f"python{sys.version_info.major}.{sys.version_info.minor}" / "site-packages"
    (site / "deps.pth").write_text(next(p for p in sys.path if p.endswith("site-packages")) + "\n")
    python = root / "bin" / "python"
    subprocess.run([str(python), "-m", "pip", "uninstall", "-q", "-y", "setuptools"], check=True)
    return python


def pip_install(python: Path, *args: str) -> None:
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    done = subprocess.run([str(python), "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", *args],
                          cwd=python.parents[2], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]


@pytest.mark.slow
def test_editable_install_finds_the_repository(tmp_path):
    python = fresh_venv(tmp_path / "venv")
    pip_install(python, "-e", str(REPO))
    probe = subprocess.run([str(python), "-c", "import audit, audit.workflow_files as w; print(w.workflow_dir())"],
                           cwd=tmp_path, capture_output=True, text=True,
                           env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"})
    assert probe.stdout.strip() == str(REPO), probe.stderr
    assert not (REPO / "audit" / "workflow").exists()  # an editable install copies nothing into the tree


@pytest.fixture(scope="module")
def installed_run(tmp_path_factory):
    """`pip install --no-deps --no-build-isolation <repo>` into a fresh venv that sees the repo's
    .venv packages through a .pth file (torch again would take minutes and the network), then
    `ganaudit init`, the config reduced, `ganaudit run --cores 2` in an empty folder."""
    root = tmp_path_factory.mktemp("fresh")
    workdir = root / "work"
    python = fresh_venv(root / "venv")
    pip_install(python, str(REPO))
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    workdir.mkdir()
    ganaudit_bin = str(python.parent / "ganaudit")
    init = subprocess.run([ganaudit_bin, "init"], cwd=workdir, env=env, capture_output=True, text=True)
    assert init.returncode == 0, init.stderr
    config = ci_config((workdir / "config.yaml").read_text())
    (workdir / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    run = subprocess.run([ganaudit_bin, "run", "--cores", "2"], cwd=workdir, env=env, capture_output=True, text=True)
    return python, workdir, config, run


@pytest.mark.slow
def test_fresh_install_runs_to_a_report(installed_run):
    python, workdir, config, run = installed_run
    assert run.returncode == 0, run.stderr[-5000:]
    out = workdir / "results" / config["dataset"]["name"]
    assert (out / "report.html").stat().st_size > 0 and (out / "summary.csv").is_file()
    # nothing but the config and the run's own folders in the workdir: the workflow came from the package
    assert sorted(p.name for p in workdir.iterdir()) == [".snakemake", "config.yaml", "results"]
    probe = subprocess.run([str(python), "-c", "import audit, importlib.metadata as m, audit.workflow_files as w; "
                            "print(audit.__file__); print(w.workflow_dir()); print(m.version('ganaudit')); "
                            "print('\\n'.join(m.requires('ganaudit')))"],
                           cwd=workdir, capture_output=True, text=True, env={k: v for k, v in os.environ.items()
                                                                             if k != "PYTHONPATH"})
    module, folder, version, *requires = probe.stdout.splitlines()
    assert Path(module).is_relative_to(python.parents[1]) and Path(folder) == Path(module).parent / "workflow"
    assert version == tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]
    assert requires == requirement_lines()
    # the report rule globs the captions under workflow.basedir: the packaged copy's, every one of them
    dry = subprocess.run([str(python.parent / "ganaudit"), "run", "--cores", "1", "-n", "-p", "--forcerun", "report"],
                         cwd=workdir, capture_output=True, text=True)
    captions = re.search(r"--captions ((?:\S+\.rst ?)+)", dry.stdout)
    assert dry.returncode == 0 and captions, dry.stdout[-3000:] + dry.stderr[-3000:]
    packaged = Path(folder) / "report" / "captions"
    assert sorted(captions.group(1).split()) == sorted(str(p) for p in packaged.glob("*.rst"))
    assert {p.name for p in packaged.glob("*.rst")} == {p.name for p in (REPO / "report" / "captions").glob("*.rst")}


def docs_namespace() -> dict:
    """The last python block of docs/API.md (skew_from_run), executed."""
    blocks = re.findall(r"```python\n(.*?)```", (REPO / "docs" / "API.md").read_text(), re.S)
    namespace: dict = {}
    exec(compile(blocks[-1], "docs/API.md", "exec"), namespace)
    return namespace


@pytest.mark.slow
def test_api_reproduces_the_runs_skew_and_fd(installed_run):
    """The skew stage's and the feature_metrics stage's input files of the finished run, fed to the
    API (docs/API.md's skew_from_run; api.frechet_distance) with the run's options, give the
    numbers of the run's JSON and summary.csv."""
    import pandas as pd

    from audit import api

    _, workdir, config, run = installed_run
    assert run.returncode == 0, run.stderr[-3000:]
    out = workdir / "results" / config["dataset"]["name"]
    summary = pd.read_csv(out / "summary.csv")
    for gan in config["gans"]:
        stage = json.loads((out / "skew" / f"{gan}.json").read_text())
        skew = docs_namespace()["skew_from_run"](out, gan, config)
        for name, entry in stage["estimates"].items():
            assert skew.estimates[name].value == entry["tv"], (gan, name)
            assert skew.estimates[name].interval == (entry["tv_ci"]["low"], entry["tv_ci"]["high"]), (gan, name)
            assert skew.estimates[name].verdict.to_json() == next(v for v in stage["verdicts"]
                                                                  if v["test"] == f"skew.{name}"), (gan, name)
        fm_stage = json.loads((out / "feature_metrics" / f"{gan}.json").read_text())
        options = config["feature_metrics"]
        fd = api.frechet_distance(np.load(out / "features" / "real_test.npy"), np.load(out / "features" / f"{gan}.npy"),
                                  bootstrap=options["bootstrap"], permutations=options["permutations"],
                                  alpha=options["alpha"], seed=config["seed"],
                                  reference=np.load(out / "features" / "real_pool.npy"))
        assert fd.value == fm_stage["fd"]["value"] and list(fd.interval) == fm_stage["fd"]["interval"], gan
        assert fd.verdict.p_value == fm_stage["fd"]["p_value"], gan
        # and the figures summary.csv prints for this GAN (CSV text: equal to 1e-12, far below any shown digit)
        row = summary.set_index("gan").loc[gan]
        for name, estimate in skew.estimates.items():
            assert [row[f"{name}_tv"], row[f"{name}_tv_low"], row[f"{name}_tv_high"], row[f"{name}_p_value"]] == \
                pytest.approx([estimate.value, *estimate.interval, estimate.verdict.p_value], rel=1e-12), (gan, name)
        assert [row["fd_annotator"], row["fd_annotator_low"], row["fd_annotator_high"], row["fd_annotator_p_value"]] == \
            pytest.approx([fd.value, *fd.interval, fd.verdict.p_value], rel=1e-12), gan
