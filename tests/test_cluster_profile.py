"""The SLURM profile resolves: a dry run with the executor plugin plans every job, and the rules
that train or run networks carry a GPU request with their memory and runtime."""

from __future__ import annotations

import re

import yaml

from tests.conftest import REPO, default_config, run_snakemake

GPU_RULES = {"annotator", "train_gan", "real_curve", "diversity", "discriminators", "label", "features",
             "features_real"}


def planned_jobs(dry_run: str) -> dict[str, dict[str, str]]:
    """{rule: its resources} from a Snakemake dry run's job blocks (the first job of each rule)."""
    jobs, rule = {}, None
    for line in dry_run.splitlines():
        started = re.match(r"^(?:local)?rule (\w+):", line)
        if started:
            rule = started.group(1)
        elif rule and line.strip().startswith("resources:") and rule not in jobs:
            jobs[rule] = dict(item.split("=", 1) for item in line.split(":", 1)[1].strip().split(", "))
    return jobs


def test_slurm_profile_dry_run_requests_gpus_for_network_rules(tmp_path):
    result = run_snakemake(tmp_path, default_config(), "-n", "--profile", str(REPO / "profiles" / "slurm"))
    jobs = planned_jobs(result.stdout)
    assert GPU_RULES <= set(jobs), sorted(jobs)
    for rule in GPU_RULES:
        assert jobs[rule]["gpu"] == "1", (rule, jobs[rule])
        assert int(jobs[rule]["mem_mb"]) >= 16000 and int(jobs[rule]["runtime"]) >= 120, (rule, jobs[rule])
    for rule in set(jobs) - GPU_RULES - {"all"}:
        assert "gpu" not in jobs[rule], (rule, jobs[rule])
    profile = yaml.safe_load((REPO / "profiles" / "slurm" / "config.yaml").read_text())
    assert profile["executor"] == "slurm"
    # every rule the profile sizes exists in the workflow (a renamed rule would silently lose its GPU)
    assert set(profile["set-resources"]) <= set(jobs), set(profile["set-resources"]) - set(jobs)
