"""Figure captions: one text per figure kind, shared by Snakemake's ``--report`` and report.html.

The captions live in ``report/captions/<kind>.rst`` (Snakemake renders them with Jinja and
reStructuredText). report.html uses the same files, rendered here with the little they use:
``{{ snakemake.wildcards.<name> }}`` becomes the GAN's name, ``{{ snakemake.params.<name> }}``
the value the stage passes (or the word "configured" when it has none), ``**bold**`` and
````code```` their HTML.
"""

from __future__ import annotations

import html
import re
from pathlib import Path

from audit.io import AuditInputError

_WILDCARD = re.compile(r"\{\{\s*snakemake\.wildcards\.\w+\s*\}\}")
_PARAM = re.compile(r"\{\{\s*snakemake\.params\.(\w+)\s*\}\}")
_BOLD = re.compile(r"\*\*(.+?)\*\*")
_CODE = re.compile(r"``(.+?)``")


def load_captions(paths: list[str]) -> dict[str, str]:
    """{kind: raw caption text} of the ``.rst`` files at ``paths`` (kind = the file's stem)."""
    captions = {}
    for path in map(Path, paths):
        if path.suffix != ".rst" or not path.is_file():
            raise AuditInputError(f"{path}: expected a caption file (.rst)")
        captions[path.stem] = path.read_text(encoding="utf-8")
    return captions


def render(text: str, gan: str = "", params: dict | None = None) -> str:
    """``text`` (a caption template) as HTML for ``gan``, with ``params`` filled in."""
    params = params or {}
    out = html.escape(" ".join(text.split()), quote=False)
    out = _WILDCARD.sub(html.escape(gan), out)
    out = _PARAM.sub(lambda m: html.escape(str(params.get(m.group(1), "configured"))), out)
    out = _CODE.sub(r"<code>\1</code>", out)
    return _BOLD.sub(r"<b>\1</b>", out)
