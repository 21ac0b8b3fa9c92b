"""Stage ``prepare``: real dataset -> prepared uint8 images, labels and split plan.

    python -m audit.prepare --dataset digits --out results/digits/data --seed 0 \
        --splits train=0.45 val=0.1 pool=0.2 test=0.25 --option [key=value ...]

Output: the prepared dataset directory ``--out`` (:mod:`audit.data.store`: ``images.npy``,
``index.csv``, ``meta.json``), the one directory every later stage reads as ``--data``.
"""

from __future__ import annotations

import json

from audit.cli import run_cli, stage_parser
from audit.data import load_source
from audit.data.store import prepare
from audit.io import AuditInputError


def parse_assignments(items: list[str], flag: str) -> dict:
    """``["a=1", "b=[1,2]"]`` -> ``{"a": 1, "b": [1, 2]}``; values are JSON when they parse."""
    out = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise AuditInputError(f"{flag}: expected key=value, got '{item}'")
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value
    return out


def main(argv: list[str] | None = None) -> None:
    parser = stage_parser("audit.prepare", __doc__, threads=False, device=False)
    parser.add_argument("--dataset", required=True)
    parser.add_argument("--out", required=True, help="output: directory of the prepared dataset")
    parser.add_argument("--splits", nargs="+", required=True, help="split=fraction for train val pool test")
    parser.add_argument("--option", nargs="*", required=True,
                        help="dataset options, key=value (JSON values); none: a bare --option")
    args = parser.parse_args(argv)
    fractions = {k: float(v) for k, v in parse_assignments(args.splits, "--splits").items()}
    source = load_source(args.dataset, **parse_assignments(args.option, "--option"))
    prepared = prepare(source, args.out, fractions, args.seed)
    print(f"prepared {prepared.name}: {prepared.images.shape} split sizes {prepared.meta['split_sizes']}")


if __name__ == "__main__":
    run_cli(main)
