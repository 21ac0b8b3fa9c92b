"""Configuration checks that need more than the JSON schema, and one-line schema errors."""

from __future__ import annotations

import sys
from pathlib import Path

import yaml


def schema_error(config: dict, schema_path: str | Path) -> str | None:
    """The most relevant violation of the schema as one line naming the key, or None."""
    import jsonschema

    schema = yaml.safe_load(Path(schema_path).read_text())
    validator = jsonschema.Draft202012Validator(schema)
    errors = list(validator.iter_errors(config))
    if not errors:
        return None
    error = jsonschema.exceptions.best_match(errors)
    # an `if/then` branch reports the GAN entry; its nested errors name the offending option
    while error.context:
        error = jsonschema.exceptions.best_match(error.context)
    path = [str(p) for p in error.absolute_path]
    message = error.message
    if error.validator == "required":
        missing = [name for name in error.validator_value if name not in error.instance]
        path, message = path + missing[:1], "required key is missing"
    key = ".".join(path) or "(top level)"
    if error.validator == "additionalProperties":
        message = message.replace("Additional properties are not allowed", "unknown key(s)")
    return f"{key}: {message}"


def semantic_error(config: dict) -> str | None:
    """Cross-key rules the schema cannot state."""
    splits = config["dataset"]["splits"]
    if abs(sum(splits.values()) - 1) > 1e-6:
        return f"dataset.splits: fractions must sum to 1, got {sum(splits.values()):g}"
    return None


#: datasets of photographs: random horizontal flips are label-preserving there, not on digits
PHOTO_DATASETS = ("scenes", "celeba", "lsun")


def classifier_flip(config: dict) -> bool:
    """Whether the annotator and the diversity classifiers train with random horizontal flips:
    ``annotator.flip`` when it is a boolean; ``auto`` flips photographs only (a mirrored digit
    is not the same digit)."""
    flip = config["annotator"]["flip"]
    return config["dataset"]["name"] in PHOTO_DATASETS if flip == "auto" else bool(flip)


def diversity_architecture(config: dict) -> str:
    """The deep diversity classifier's ``--arch``: ``diversity.arch``, where ``annotator`` means
    the annotator's own ``annotator.arch`` (which may itself be ``auto``: chosen by image size)."""
    arch = config["diversity"]["arch"]
    return config["annotator"]["arch"] if arch == "annotator" else arch


def check_config(config: dict, schema_path: str | Path, source: str = "config.yaml") -> None:
    """Exit with status 1 and one line on stderr if the configuration is invalid."""
    problem = schema_error(config, schema_path) or semantic_error(config)
    if problem:
        print(f"ganaudit: error: {source}: {problem}", file=sys.stderr)
        sys.exit(1)
