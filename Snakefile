# ganaudit: did a GAN learn the data distribution, or a small, skewed, low-diversity imitation?
# Run: snakemake --cores 8   (see README.md; every option is in config.yaml)

import os
import sys
import time

from snakemake.utils import min_version

min_version("9.0")

# the stages run as `python -m audit.<stage>`: make the package importable from any --directory
sys.path.insert(0, workflow.basedir)
os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [workflow.basedir, os.environ.get("PYTHONPATH")]))

from audit.io import RunLock, failure_lines, remove_stale_parts

# config.yaml (in the working directory) and every --configfile are read by rules/common.smk
# (audit.config.configure), not by a `configfile:` directive: Snakemake would merge a user's
# `gans:` into config.yaml's and accept duplicate keys.


include: "rules/common.smk"
include: "rules/data.smk"
include: "rules/annotator.smk"
include: "rules/gans.smk"
include: "rules/skew.smk"
include: "rules/spectrum.smk"
include: "rules/diversity.smk"
include: "rules/dynamics.smk"
include: "rules/support.smk"
include: "rules/feature_metrics.smk"
include: "rules/modes.smk"
include: "rules/discriminators.smk"
include: "rules/report.smk"


rule all:
    input:
        f"{OUT}/report.html",
        f"{OUT}/summary.csv",
        # Snakemake does not remake a deleted intermediate file while the files made from it
        # exist; asking for the samples here makes deleting one GAN's samples rerun its branch.
        expand(f"{OUT}/samples/{{gan}}/samples.npy", gan=GANS),
        # a stage that does not run on this dataset (rules/modes.smk SKIPPED) asks for nothing
        unless_skipped("support", expand(rules.support.output.json, gan=GANS)),
        unless_skipped("memorisation", expand(rules.memorisation.output.json, gan=GANS)),
        unless_skipped("feature_metrics", expand(rules.feature_metrics.output.json, gan=GANS)),
        expand(rules.modes.output.json, gan=MODES_GANS),
        # issue 15: every GAN against the discriminator ladder (the report reads them: issue 16)
        expand(rules.discriminators.output.json, gan=GANS),


# One run at a time in a directory (README "Reproducibility"). Snakemake 9.27.1's own lock is not
# enough: a run that ends deletes the whole .snakemake/locks/ (other runs' locks included), and a
# killed run's locks stay until `--unlock`. RUN_LOCK is an flock, which the kernel releases when
# the Snakemake process dies (kill -9 included). It is tried while the Snakefile is read, by the
# main process only (not by cluster jobs), because Snakemake checks its own locks before
# `onstart`: whoever holds it knows that no other run is active, so Snakemake's lock files are
# stale and go. A dry run holds it too while it reads the DAG; a real run that finds it held by
# another real run is refused in `onstart` (after waiting a few seconds for a dry run to end).
RUN_STARTED = time.time()
RUN_LOCK = RunLock(".snakemake/ganaudit.lock")
if workflow.is_main_process and RUN_LOCK.acquire("starting"):
    RUN_LOCK.clear_stale(".snakemake/locks")
elif workflow.is_main_process and RUN_LOCK.holder().endswith("running"):
    print(f"ganaudit: another run is active in {os.getcwd()} ({RUN_LOCK.holder()}); a run started now is "
          "refused (--unlock would not help), a dry run shows what it would do", file=sys.stderr)


onstart:
    if workflow.execution_settings.lock and not RUN_LOCK.acquire(
        "running", wait=0 if RUN_LOCK.holder().endswith("running") else 10
    ):
        print(f"ganaudit: error: another run is active in {os.getcwd()} ({RUN_LOCK.holder()}): wait for it "
              "to end, then rerun this command", file=sys.stderr, flush=True)
        os._exit(2)  # now, without Snakemake's cleanup, which would delete the other run's locks
    # the temporary files of writes cut by a SIGKILL (audit.io.atomic_path)
    remove_stale_parts(RESULTS)


onsuccess:
    # the answer where the user looks: the verdict table and the report's path (README "Reading the report")
    if os.path.exists(f"{OUT}/verdicts.txt"):
        print(f"\nganaudit verdicts ({OUT}):\n" + open(f"{OUT}/verdicts.txt").read()
              + f"report: {os.path.abspath(f'{OUT}/report.html')}\ntable:  {os.path.abspath(f'{OUT}/summary.csv')}",
              flush=True)
    RUN_LOCK.release()


onerror:
    # every failed job's one-line error, whatever the profile (--show-failed-logs or not)
    for line in failure_lines(log, f"{RESULTS}/logs", since=RUN_STARTED - 2):
        print(line, file=sys.stderr)
    print("ganaudit: to resume, fix the cause and rerun the same command: finished results are kept, "
          "the failed and unfinished jobs run again", file=sys.stderr, flush=True)
    RUN_LOCK.release()
