"""Real labelled image data behind one interface.

Each dataset module exposes ``load(**options) -> SourceDataset``: labels, class names, an
optional official partition and a way to read images in chunks. :mod:`audit.data.store`
streams a ``SourceDataset`` into the prepared on-disk form every later stage reads
(:class:`audit.data.store.PreparedDataset`).
"""

from audit.data.base import SPLITS, SourceDataset

__all__ = ["SPLITS", "SourceDataset", "load_source"]


def load_source(name: str, **options) -> SourceDataset:
    """Open the real dataset ``name`` (``digits``, ``scenes``, ``celeba``, ``lsun``)."""
    from importlib import import_module

    from audit.io import AuditInputError

    modules = {"digits": "audit.data.digits", "scenes": "audit.data.scenes",
               "celeba": "audit.data.celeba", "lsun": "audit.data.lsun"}
    if name not in modules:
        raise AuditInputError(f"dataset.name: unknown dataset '{name}', expected one of {sorted(modules)}")
    return import_module(modules[name]).load(**options)
