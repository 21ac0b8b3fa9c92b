"""ganaudit: did a GAN learn the data distribution, or a small, skewed imitation of it?

Library code only: every stage reads explicit arguments, never Snakemake objects.
Stages run as ``python -m audit.<stage> --help``; the whole audit as ``ganaudit run``
(``python -m audit``). The metrics on arrays: :mod:`audit.api` (``from audit import api``, or
``audit.class_skew(...)``), imported on first use so that ``import audit`` stays cheap.
"""

import importlib
import importlib.util


def __getattr__(name: str):
    # the public API, loaded on first use (import audit never imports numpy, torch or snakemake)
    if name == "__version__":
        from audit.workflow_files import package_version

        return package_version()
    # a submodule wins over an API function of the same name (audit.feature_metrics, the stage;
    # audit.memorisation): `from audit import feature_metrics` must keep meaning the module
    if importlib.util.find_spec(f"audit.{name}") is not None:
        return importlib.import_module(f"audit.{name}")
    api = importlib.import_module("audit.api")
    if name in api.__all__:
        return getattr(api, name)
    raise AttributeError(f"module 'audit' has no attribute {name!r}")
