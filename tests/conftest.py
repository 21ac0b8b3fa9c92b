"""Shared fixtures: prepared digits and scenes datasets and a runner for the Snakemake workflow."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
DEFAULT_SPLITS = {"train": 0.45, "val": 0.1, "pool": 0.2, "test": 0.25}


@pytest.fixture(autouse=True, scope="session")
def one_torch_thread():
    """Tests run tiny networks: one thread avoids OpenMP spin-waiting on a shared, busy machine."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def assert_cli_error(main, argv, capsys, *fragments):
    """The stage ``main`` exits 2 with one 'ganaudit: error:' line containing every fragment."""
    from audit.io import run_cli

    with pytest.raises(SystemExit) as exit_info:
        run_cli(main, argv)
    assert exit_info.value.code == 2
    # the error is the last stderr line (a progress bar may precede it on the same stream)
    err = capsys.readouterr().err.splitlines()[-1]
    assert err.startswith("ganaudit: error: "), err
    for fragment in fragments:
        assert fragment in err, (fragment, err)


def sample_args(name: str, spec: dict, data, out, n: int, seed: int = 0) -> list[str]:
    """The sample stage's arguments for GAN ``name`` with every output in the folder ``out``,
    named as the rules name them (interpolation strips for the generator-module types)."""
    from audit.gans import GENERATOR_MODULE_TYPES

    out = Path(out)
    args = ["--name", name, "--spec", json.dumps(spec), "--data", str(data), "--n", str(n), "--seed", str(seed),
            "--threads", "1", "--device", "cpu", "--samples", str(out / "samples.npy"),
            "--planted-labels", str(out / "planted_labels.npy"), "--truth", str(out / "truth.json"),
            "--preview", str(out / "preview.png")]
    if spec.get("type") in GENERATOR_MODULE_TYPES:
        args += ["--interpolation", str(out / "interpolation.png")]
    return args


@pytest.fixture(scope="session")
def digits_prepared(tmp_path_factory):
    """The digits dataset prepared once per test session (read-only for tests)."""
    from audit.data.digits import load
    from audit.data.store import prepare

    return prepare(load(), tmp_path_factory.mktemp("digits") / "data", DEFAULT_SPLITS, seed=0, progress=False)


@pytest.fixture(scope="session")
def scenes_prepared(tmp_path_factory):
    """The default scenes set (3,200 RGB patches, 64x64; pool 640, test 800), prepared once."""
    from audit.data.scenes import load
    from audit.data.store import prepare

    return prepare(load(), tmp_path_factory.mktemp("scenes") / "data", DEFAULT_SPLITS, seed=0, progress=False)


def default_config() -> dict:
    return yaml.safe_load((REPO / "config.yaml").read_text())


def reduced_config() -> dict:
    """The default config cut to CI size: what each stage computes is unchanged, only how much."""
    config = default_config()
    config["annotator"].update(epochs=40, patience=10)
    for name, spec in config["gans"].items():
        if spec["type"] in ("dcgan", "wgan-gp"):
            spec["steps"] = 30
    config["samples"]["n"] = 6000
    config["skew"]["bootstrap"] = 200
    config["diversity"].update(seeds=2, steps=100, grid=[20, 100, 500], gan_grid=[500], bootstrap=200)
    config["dynamics"].update(runs=500, steps=300, eta_g=[0.3], eta_d=[0.3])
    config["discriminators"].update(steps=50, seeds=1, bootstrap=200)
    return config


def write_generator_module(path: Path) -> None:
    """A TorchScript generator of 8x8 grey images from 4 latent dimensions (an external GAN)."""
    import torch

    class Tiny(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.linear = torch.nn.Linear(4, 64)

        def forward(self, z):
            return torch.tanh(self.linear(z)).view(-1, 1, 8, 8)

    torch.manual_seed(0)
    torch.jit.save(torch.jit.script(Tiny()), str(path))


@pytest.fixture(scope="session")
def digits_ci_run(tmp_path_factory):
    """The whole DAG on the CI-sized digits config, run once per session: (workdir, config).

    Every GAN of the default config plus an external TorchScript generator module (the sample
    stage's interpolation strips), so one run feeds the end-to-end, browser and report-input
    tests. Tests that change a file restore its bytes and mtime: the run stays up to date.
    """
    workdir = tmp_path_factory.mktemp("digits_ci_run")
    write_generator_module(workdir / "generator.pt")
    config = reduced_config()
    config["gans"]["module"] = {"type": "torchscript", "path": "generator.pt", "latent_dim": 4}
    run_snakemake(workdir, config, "--cores", "2")
    return workdir, config


def run_snakemake(workdir: Path, config: dict, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    """Run the repository's workflow in ``workdir`` with ``config`` written to workdir/config.yaml."""
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    result = subprocess.run(
        [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "--directory", str(workdir),
         "--configfile", str(workdir / "config.yaml"), *args],
        cwd=workdir, env=env, capture_output=True, text=True,
    )
    if check and result.returncode != 0:
        logs = "\n".join(f"--- {p}\n{p.read_text()[-3000:]}" for p in sorted((workdir / "results" / "logs").rglob("*.log")))
        raise AssertionError(f"snakemake {' '.join(args)} failed:\n{result.stderr[-5000:]}\n{logs}")
    return result
