# Config access, output paths and wildcard constraints shared by every rule.

import json
import shlex
import sys

from snakemake.utils import validate

from audit.config import check_config

# A violation stops the workflow before any job starts, with one line naming the key;
# then Snakemake's validate fills the schema's defaults into config.
check_config(config, workflow.basedir + "/rules/config.schema.yaml",
             source=" + ".join(str(f) for f in workflow.configfiles) or "config")
validate(config, "config.schema.yaml")

RESULTS = "results"
DATASET = config["dataset"]["name"]
#: every output of one dataset's audit lives under results/<dataset>/
OUT = f"{RESULTS}/{DATASET}"
LOGS = f"{RESULTS}/logs/{DATASET}"
BENCH = f"{RESULTS}/benchmarks/{DATASET}"
#: torch threads of each training or inference job (config `threads`); Snakemake runs
#: --cores / threads jobs at once, and the stages cap torch at the machine's cores
HEAVY_THREADS = config["threads"]

#: random horizontal flips for classifiers: `auto` flips photos (scenes, CelebA, LSUN), not digits
_FLIP = config["annotator"].get("flip", "auto")
ANNOTATOR_FLIP = DATASET != "digits" if _FLIP == "auto" else _FLIP

GANS = list(config["gans"])
TRAINED_TYPES = ("dcgan", "wgan-gp")
TRAINED_GANS = [g for g, spec in config["gans"].items() if spec["type"] in TRAINED_TYPES]


wildcard_constraints:
    gan="|".join(GANS),
    trained="|".join(TRAINED_GANS) if TRAINED_GANS else "(?!)",


def gan_spec(gan):
    return config["gans"][gan]


def generator_input(wildcards):
    """A trained GAN's generator file, an external GAN's file or folder (so Snakemake tracks
    it and reports it missing before any job); nothing for planted generators."""
    spec = gan_spec(wildcards.gan)
    if spec["type"] in TRAINED_TYPES:
        return [f"{OUT}/gans/{wildcards.gan}/generator.pt"]
    if "path" in spec:
        return [directory(spec["path"]) if spec["type"] == "folder" else spec["path"]]
    return []


def cli_options(options):
    """{key: value} -> '--key value ...' for a stage's argparse flags (JSON for non-scalars)."""
    parts = []
    for key, value in options.items():
        flag = "--" + key.replace("_", "-")
        if isinstance(value, bool):
            parts += [flag] if value else []
        else:
            parts += [flag, json.dumps(value) if isinstance(value, (list, dict)) else str(value)]
    return " ".join(f"'{p}'" if " " in p or "{" in p else p for p in parts)
