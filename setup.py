"""Build hook: the workflow files become package data (``audit/workflow/``) of the build.

Everything else is in pyproject.toml. The repository's layout is fixed (Snakefile, config.yaml,
rules/, report/ at the top), so build_py copies ``audit.workflow_files.WORKFLOW_FILES`` into
the build's ``audit/workflow/``; an editable install skips the copy and
``audit.workflow_files.workflow_dir()`` finds the repository root instead. The dependencies are
requirements.txt's pins, read here, so the two cannot disagree.
"""

import importlib.util
import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent


def _workflow_files():
    spec = importlib.util.spec_from_file_location("_workflow_files", ROOT / "audit" / "workflow_files.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def requirements(path=ROOT / "requirements.txt"):
    """The requirement lines of ``path``, comments and blank lines dropped."""
    lines = (line.split("#", 1)[0].strip() for line in path.read_text().splitlines())
    return [line for line in lines if line]


class build_py_with_workflow(build_py):
    """build_py, then the workflow files copied into <build>/audit/workflow/."""

    def run(self):
        super().run()
        if getattr(self, "editable_mode", False):
            return
        files = _workflow_files()
        target = Path(self.build_lib) / "audit" / files.PACKAGED
        for name in files.WORKFLOW_FILES:
            source, dest = ROOT / name, target / name
            if source.is_dir():
                shutil.rmtree(dest, ignore_errors=True)
                shutil.copytree(source, dest, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
            else:
                dest.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(source, dest)


setup(install_requires=requirements(), cmdclass={"build_py": build_py_with_workflow})
