"""Where the workflow files are: the packaged copy when ganaudit is installed, the repository
root in a clone or an editable install.

The repository keeps its layout (``Snakefile``, ``config.yaml``, ``rules/``, ``report/`` at the
top); ``setup.py``'s build hook copies :data:`WORKFLOW_FILES` into ``audit/workflow/`` of the
build, so a wheel carries them as package data. Standard library only: ``setup.py`` loads this
module by path, before anything is installed.
"""

from __future__ import annotations

from pathlib import Path

#: the workflow's files and folders, relative to the repository root (folders copied whole)
WORKFLOW_FILES = ("Snakefile", "config.yaml", "config", "rules", "profiles", "report/captions")
#: the packaged copy's folder inside the ``audit`` package
PACKAGED = "workflow"


def workflow_dir() -> Path:
    """The folder holding ``Snakefile``, ``rules/``, ``config.yaml``, ``profiles/`` and
    ``report/captions/``: ``audit/workflow/`` of an installed package, else the repository root
    (the folder above the ``audit`` package). FileNotFoundError when neither has a Snakefile."""
    package = Path(__file__).resolve().parent
    for folder in (package / PACKAGED, package.parent):
        if (folder / "Snakefile").is_file() and (folder / "rules").is_dir():
            return folder
    raise FileNotFoundError(f"no workflow files beside the audit package at {package}: reinstall ganaudit "
                            "(pip install <repository>) or run from a clone of the repository")


def snakefile() -> Path:
    return workflow_dir() / "Snakefile"


def default_config() -> Path:
    """The commented default configuration (digits) that ``ganaudit init`` copies."""
    return workflow_dir() / "config.yaml"


def schema() -> Path:
    """The JSON schema every configuration is checked against (``rules/config.schema.yaml``)."""
    return workflow_dir() / "rules" / "config.schema.yaml"


def profile(name: str) -> Path | None:
    """The packaged profile folder ``profiles/<name>`` (``slurm``, ``default``), or None."""
    folder = workflow_dir() / "profiles" / name
    return folder if (folder / "config.yaml").is_file() else None


def package_version() -> str:
    """ganaudit's version: the installed distribution's metadata, else (a clone that was never
    installed) the ``version`` of the repository's pyproject.toml."""
    from importlib import metadata

    try:
        return metadata.version("ganaudit")
    except metadata.PackageNotFoundError:
        import tomllib

        pyproject = Path(__file__).resolve().parent.parent / "pyproject.toml"
        return tomllib.loads(pyproject.read_text())["project"]["version"]
