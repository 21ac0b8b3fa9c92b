# Config access, output paths and wildcard constraints shared by every rule.

import glob
import json
import os
import shlex

from snakemake.utils import validate

from audit.config import DEFAULT_CONFIG, classifier_flip, configure, diversity_architecture
from audit.gans import GENERATOR_MODULE_TYPES, TRAINED_TYPES

# The configuration (audit.config): config.yaml, then every --configfile, then --config, merged
# key by key except `gans:`, which a later file replaces whole (Snakemake's own merge, which the
# Snakefile does not ask for, would audit config.yaml's GANs as well); every file read refusing
# duplicate keys. A violation stops the workflow before any job starts, with exit status 2 and
# one line naming the file and the key; then Snakemake's validate fills in the schema's defaults.
_settings = workflow.config_settings
_resolved = configure(workflow.basedir + "/rules/config.schema.yaml", configfiles=_settings.configfiles,
                      overrides=_settings.config,
                      default=None if _settings.replace_workflow_config else DEFAULT_CONFIG)
config.clear()
config.update(_resolved)
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

#: random horizontal flips for the annotator and every diversity classifier (audit.config)
CLASSIFIER_FLIP = classifier_flip(config)

GANS = list(config["gans"])
TRAINED_GANS = [g for g, spec in config["gans"].items() if spec["type"] in TRAINED_TYPES]
#: the GANs whose sample job also writes latent interpolation strips (rule sample_module)
MODULE_GANS = [g for g, spec in config["gans"].items() if spec["type"] in GENERATOR_MODULE_TYPES]


def one_of(names):
    """A wildcard constraint matching exactly these names; none of them: a regex matching nothing."""
    return "|".join(names) if names else "(?!)"


wildcard_constraints:
    gan=one_of(GANS),
    trained=one_of(TRAINED_GANS),


def gan_spec(gan):
    return config["gans"][gan]


def prepared_dir(files):
    """The prepared dataset's directory (a stage's --data) from its declared files
    (rules.prepare.output: images.npy, index.csv, meta.json, all in that one folder)."""
    folders = {os.path.dirname(str(f)) for f in files}
    if len(folders) != 1:
        raise ValueError(f"a prepared dataset is one folder, got files in {sorted(folders)}")
    return folders.pop()


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
    """{key: value} -> '--key value ...' for a stage's argparse flags (JSON for non-scalars);
    a boolean is '--key' or '--no-key' (argparse.BooleanOptionalAction)."""
    parts = []
    for key, value in options.items():
        flag = "--" + key.replace("_", "-")
        if isinstance(value, bool):
            parts += [flag if value else "--no-" + flag[2:]]
        else:
            parts += [flag, json.dumps(value) if isinstance(value, (list, dict)) else str(value)]
    return " ".join(f"'{p}'" if " " in p or "{" in p else p for p in parts)
