"""ganaudit: did a GAN learn the data distribution, or a small, skewed imitation of it?

Library code only: every stage reads explicit arguments, never Snakemake objects.
Stages run as ``python -m audit.<stage> --help``.
"""

__version__ = "0.1.0"
