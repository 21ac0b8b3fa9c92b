# ganaudit: did a GAN learn the data distribution, or a small, skewed, low-diversity imitation?
# Run: snakemake --cores 8   (see README.md; every option is in config.yaml)

import os
import sys

from snakemake.utils import min_version

min_version("9.0")

# the stages run as `python -m audit.<stage>`: make the package importable from any --directory
sys.path.insert(0, workflow.basedir)
os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [workflow.basedir, os.environ.get("PYTHONPATH")]))


configfile: "config.yaml"


include: "rules/common.smk"
include: "rules/data.smk"
include: "rules/annotator.smk"
include: "rules/gans.smk"
include: "rules/skew.smk"
include: "rules/spectrum.smk"
include: "rules/diversity.smk"
include: "rules/dynamics.smk"
include: "rules/report.smk"


rule all:
    input:
        f"{OUT}/report.html",
        f"{OUT}/summary.csv",
        # Snakemake does not remake a deleted intermediate file while the files made from it
        # exist; asking for the samples here makes deleting one GAN's samples rerun its branch.
        expand(f"{OUT}/samples/{{gan}}/samples.npy", gan=GANS),
