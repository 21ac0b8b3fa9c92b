"""Real labelled image data behind one interface.

Each dataset module exposes ``load(**options) -> SourceDataset``: labels, class names, an
optional official partition and a way to read images in chunks. :mod:`audit.data.store`
streams a ``SourceDataset`` into the prepared on-disk form every later stage reads
(:class:`audit.data.store.PreparedDataset`). A composed dataset (``stacked_mnist``) returns a
:class:`audit.data.store.ComposedSource` instead: its images are built from a base dataset's
after the base is split (:func:`audit.data.store.prepare`).
"""

from audit.data.base import SPLITS, SourceDataset

__all__ = ["COMPOSED_DATASETS", "SPLITS", "SourceDataset", "load_source"]

#: datasets composed from a base dataset after it is split: their prepared folder holds base/
COMPOSED_DATASETS = ("stacked_mnist",)


def load_source(name: str, **options) -> SourceDataset:
    """Open the real dataset ``name`` (``digits``, ``scenes``, ``celeba``, ``lsun``, ``mnist``,
    ``stacked_mnist``)."""
    from importlib import import_module

    from audit.io import AuditInputError

    modules = {"digits": "audit.data.digits", "scenes": "audit.data.scenes",
               "celeba": "audit.data.celeba", "lsun": "audit.data.lsun", "mnist": "audit.data.mnist",
               "stacked_mnist": "audit.data.stacked_mnist"}
    if name not in modules:
        raise AuditInputError(f"dataset.name: unknown dataset '{name}', expected one of {sorted(modules)}")
    return import_module(modules[name]).load(**options)
