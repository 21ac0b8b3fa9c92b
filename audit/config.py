"""The configuration: how its files are read and merged, checks beyond the JSON schema, one-line
errors, and the policies rules need.

A run's configuration is ``config.yaml`` (the working directory's), then every ``--configfile``
in order, then ``--config key=value`` (:func:`resolve_config`). Each is merged key by key into
what came before, except ``gans:``: a later file's ``gans:`` replaces the GANs before it as a
whole, so a user's file lists exactly the GANs to audit (Snakemake's own merge would add the
six default GANs to them). Every file is read with a YAML loader that refuses a key given twice
in one mapping (PyYAML keeps the last one, silently).
"""

from __future__ import annotations

import copy
import math
import os
import sys
from pathlib import Path

import yaml

from audit.io import AuditInputError

#: the default configuration, in the working directory
DEFAULT_CONFIG = "config.yaml"
#: top-level keys whose value a later source replaces whole instead of merging into
REPLACED_KEYS = ("gans",)
#: GAN types that read a file or folder named by ``path``: checked when the config is
#: (a missing path or a symlink loop would otherwise stop Snakemake's DAG building)
PATH_TYPES = {"folder": True, "array": False, "torchscript": False}  # type -> path is a directory
#: the verdict table's Monte Carlo tests: (stage, key of the number of draws behind its p-value)
MONTE_CARLO_DRAWS = (("skew", "null_draws"), ("feature_metrics", "permutations"), ("spectrum", "null_draws"))


class _StrictLoader(yaml.SafeLoader):
    """YAML's safe loader, refusing a key given twice in one mapping."""

    def construct_mapping(self, node, deep=False):
        first_line = {}
        for key_node, _ in node.value:
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else None
            if key is not None and key != "<<" and key in first_line:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key '{key}' (first at line {first_line[key]}); YAML would keep "
                                "only the last", key_node.start_mark)
            first_line.setdefault(key, key_node.start_mark.line + 1)
        return super().construct_mapping(node, deep)


def display_path(path: str | os.PathLike) -> str:
    """``path`` relative to the working directory when it is inside it, else as given."""
    relative = os.path.relpath(path)
    return relative if not relative.startswith("..") else str(path)


def load_config_file(path: str | os.PathLike) -> dict:
    """One configuration file (YAML or JSON) as a dict; :class:`AuditInputError` naming the file
    and line for unreadable YAML or a duplicate key."""
    name = display_path(path)
    try:
        text = Path(path).read_text()
    except OSError as err:
        raise AuditInputError(f"{name}: cannot read the configuration ({err.strerror})") from None
    try:
        data = yaml.load(text, Loader=_StrictLoader)
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark
        where = f"line {mark.line + 1}: " if mark is not None else ""
        raise AuditInputError(f"{name}: {where}{err.problem or err.context}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise AuditInputError(f"{name}: expected a mapping of configuration keys, got {type(data).__name__}")
    return data


def merge_config(base: dict, override: dict, origin: str, provenance: dict, prefix: tuple = ()) -> dict:
    """``override`` merged into a copy of ``base``: mappings key by key, anything else (and the
    top-level :data:`REPLACED_KEYS`) replaced. ``provenance`` ({key path: origin}) records
    which source set each value."""
    merged = dict(base)
    for key, value in override.items():
        path = prefix + (str(key),)
        if isinstance(value, dict) and isinstance(merged.get(key), dict) and not (not prefix and key in REPLACED_KEYS):
            merged[key] = merge_config(merged[key], value, origin, provenance, path)
            continue
        merged[key] = copy.deepcopy(value)
        for known in [p for p in provenance if p[:len(path)] == path]:
            del provenance[known]
        provenance[path] = origin
    return merged


def resolve_config(configfiles=(), overrides=None, default: str | None = DEFAULT_CONFIG) -> tuple[dict, dict, list, list]:
    """The configuration of a run, its provenance ({key path: source}), its sources in order and
    those of them that list GANs (``gans:``).

    ``default`` (config.yaml; None with ``--replace-workflow-config``) if it exists, then each of
    ``configfiles`` (a file given twice counts once), then ``overrides`` (``--config``).
    """
    files = []
    if default is not None and Path(default).is_file():
        files.append(Path(default))
    elif default is not None and not configfiles:
        raise AuditInputError(f"{default}: not found in {Path.cwd()}; run in the repository or pass --configfile")
    for path in map(Path, configfiles):
        if not any(path.exists() and os.path.samefile(path, seen) for seen in files):
            files.append(path)
    loaded = [(display_path(path), load_config_file(path)) for path in files]
    if overrides:
        loaded.append(("--config", {key: overrides[key] for key in overrides}))
    config, provenance = {}, {}
    for source, values in loaded:
        config = merge_config(config, values, source, provenance)
    return config, provenance, [source for source, _ in loaded], [source for source, v in loaded if "gans" in v]


def origin_of(path: list[str], provenance: dict, fallback: str) -> str:
    """The source that set key ``path`` (or its nearest parent that a source set)."""
    for end in range(len(path), 0, -1):
        if tuple(path[:end]) in provenance:
            return provenance[tuple(path[:end])]
    return fallback


def schema_violation(config: dict, schema_path: str | Path) -> tuple[list[str], str] | None:
    """The most relevant violation of the schema as (key path, message), or None. A violated
    bound is followed by the schema's ``description`` of the key (why the bound is what it is)."""
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
    if error.validator == "additionalProperties":
        message = message.replace("Additional properties are not allowed", "unknown key(s)")
    description = error.schema.get("description") if isinstance(error.schema, dict) else None
    if description and error.validator in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
        message = f"{message} ({description})"
    return path, message


def schema_error(config: dict, schema_path: str | Path) -> str | None:
    """The most relevant violation of the schema as one line naming the key, or None."""
    violation = schema_violation(config, schema_path)
    return None if violation is None else f"{'.'.join(violation[0]) or '(top level)'}: {violation[1]}"


def semantic_error(config: dict) -> str | None:
    """Cross-key rules the schema cannot state, and the external GANs' paths (relative to the
    working directory): each must exist and be of its kind, and not be a symlink loop."""
    splits = config["dataset"]["splits"]
    if abs(sum(splits.values()) - 1) > 1e-6:
        return f"dataset.splits: fractions must sum to 1, got {sum(splits.values()):g}"
    problem = monte_carlo_floor_error(config)
    if problem:
        return problem
    for name, spec in config["gans"].items():
        if spec["type"] in PATH_TYPES:
            from audit.gans.external import existing_path

            try:
                existing_path(name, spec, directory=PATH_TYPES[spec["type"]])
            except AuditInputError as err:
                return str(err)
    return None


def monte_carlo_floor_error(config: dict) -> str | None:
    """A Monte Carlo test whose smallest p-value, 1 / (1 + draws), could not pass the first step
    of the verdict table's Holm adjustment (level alpha / number of columns): in a row where no
    other test rejects, it could never be flagged."""
    from audit.reporting.verdicts import COLUMNS

    for stage, key in MONTE_CARLO_DRAWS:
        section = config.get(stage) or {}
        if key not in section or "alpha" not in section:
            continue
        draws, level = section[key], section["alpha"] / len(COLUMNS)
        if 1 / (1 + draws) >= level:
            return (f"{stage}.{key}: {draws} draws cannot give a p-value below {stage}.alpha / {len(COLUMNS)} = "
                    f"{level:g}, the first level of the verdict table's Holm adjustment over {len(COLUMNS)} "
                    f"columns; use at least {math.floor(1 / level)}")
    return None


def configure(schema_path: str | Path, configfiles=(), overrides=None, default: str | None = DEFAULT_CONFIG) -> dict:
    """The checked configuration of a run (:func:`resolve_config`), or exit with status 2 and
    one line on stderr naming the file and the key. When a ``--configfile`` replaced the GANs of
    config.yaml, one line says which GANs are audited."""
    try:
        config, provenance, sources, gans_sources = resolve_config(configfiles, overrides, default)
    except AuditInputError as err:
        fail(str(err))
    fallback = " + ".join(sources)
    violation = schema_violation(config, schema_path)
    if violation:
        path, message = violation
        fail(f"{origin_of(path, provenance, fallback)}: {'.'.join(path) or '(top level)'}: {message}")
    problem = semantic_error(config)
    if problem:
        key = problem.split(":")[0].split(".")
        fail(f"{origin_of(key, provenance, fallback)}: {problem}")
    if len(gans_sources) > 1:
        print(f"ganaudit: the gans of {gans_sources[-1]} replace those of {', '.join(gans_sources[:-1])}: "
              f"auditing {', '.join(config['gans'])}", file=sys.stderr)
    return config


def fail(message: str) -> None:
    print(f"ganaudit: error: {message}", file=sys.stderr, flush=True)
    sys.exit(2)


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
