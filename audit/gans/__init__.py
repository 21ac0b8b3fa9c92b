"""Sample sources: everything ganaudit can audit, behind one interface.

A GAN entry in the config is ``{type: ..., <options>}``. :func:`make_sampler` turns it into a
:class:`Sampler`, whose ``sample(n, seed)`` returns uint8 (n, H, W, C) images matching the real
dataset. Planted-truth generators also return what they planted (:attr:`Sampler.truth`) so
every metric can be checked against a known answer.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib import import_module

import numpy as np

from audit.io import AuditInputError

#: type -> "module:factory"; a factory takes (name, kind, options, context) and returns a Sampler.
SAMPLER_TYPES = {
    "dcgan": "audit.gans.trained:make_trained",
    "wgan-gp": "audit.gans.trained:make_trained",
    "resample": "audit.gans.planted:make_resample",
    "memoriser": "audit.gans.planted:make_memoriser",
    "lowrank": "audit.gans.planted:make_lowrank",
    "dropmodes": "audit.gans.planted:make_dropmodes",
    "blank": "audit.gans.planted:make_blank",
    "folder": "audit.gans.external:make_folder",
    "array": "audit.gans.external:make_array",
    "torchscript": "audit.gans.external:make_torchscript",
    "python": "audit.gans.external:make_python",
}

#: GAN types trained inside the DAG (they need a ``train_gan`` job before sampling).
TRAINED_TYPES = ("dcgan", "wgan-gp")

#: external types that load a generator module (a ``python`` target may instead return a
#: sampling function): the sample stage writes their latent interpolation strips.
GENERATOR_MODULE_TYPES = ("torchscript", "python")


@dataclass
class SampleBatch:
    """``images``: uint8 (n, H, W, C). ``planted_labels``: (n,) int class of each sample when the
    generator knows it (planted resamplers), else None."""

    images: np.ndarray
    planted_labels: np.ndarray | None = None


@dataclass
class SamplerContext:
    """What a factory may need: the prepared real data, a trained checkpoint, the device."""

    data: object = None  # audit.data.store.PreparedDataset
    checkpoint: str | None = None
    device: str = "cpu"


@dataclass
class Sampler:
    name: str
    sample: "callable"  # (n: int, seed: int) -> SampleBatch
    #: the planted answer, e.g. {"class_distribution": [...]} or {"support_size": k}; {} if unknown
    truth: dict = field(default_factory=dict)
    #: for external generator modules: ``interpolate(n_rows, n_steps, seed)`` -> uint8 images along
    #: straight latent paths (row-major); None for samplers without a latent space
    interpolate: "callable | None" = None


def make_sampler(name: str, spec: dict, context: SamplerContext) -> Sampler:
    """Build the sampler of GAN ``name`` from its config entry ``spec``."""
    kind = spec.get("type")
    if kind not in SAMPLER_TYPES:
        raise AuditInputError(f"gans.{name}.type: unknown type '{kind}', expected one of {sorted(SAMPLER_TYPES)}")
    module, factory = SAMPLER_TYPES[kind].split(":")
    options = {k: v for k, v in spec.items() if k != "type"}
    return getattr(import_module(module), factory)(name, kind, options, context)
