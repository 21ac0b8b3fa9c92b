# Mode coverage of a stacked dataset (issue 18; Stacked MNIST, 1,000 modes: Metz et al. 2017,
# VEEGAN, PacGAN): the literature's modes and KL at 26,000 samples beside ganaudit's corrected
# counts (audit/metrics/MODES.md). On a stacked dataset the stages that cannot run on it are left
# out of the DAG here, and the report prints why (audit/data/stacked_mnist.py SKIPPED_STAGES).

from audit.data.stacked_mnist import SKIPPED_STAGES as STACKED_SKIPPED

#: the modes stage runs on stacked datasets only (it needs the 1,000 composed classes)
STACKED = DATASET == "stacked_mnist"
MODES_GANS = GANS if STACKED else []
#: stage -> why it does not run on this dataset (the report prints it)
SKIPPED = dict(STACKED_SKIPPED) if STACKED else {}


def unless_skipped(stage, files):
    """``files`` when ``stage`` runs on this dataset, else nothing (for rule all and the report)."""
    return [] if stage in SKIPPED else files


rule modes:
    input:
        labels=rules.label.output,
        test=rules.annotator.output.test,
        truth=rules.sample.output.truth,
        data=rules.prepare.output,
    output:
        json=f"{OUT}/modes/{{gan}}.json",
        table=f"{OUT}/modes/{{gan}}_classes.csv",
        plot=report(f"{OUT}/modes/{{gan}}.png", caption="../report/captions/modes.rst",
                    category="Mode coverage", subcategory="{gan}"),
    wildcard_constraints:
        gan=one_of(MODES_GANS),
    params:
        name=lambda w: w.gan,
        # the GAN's config entry: the report states a trained GAN's setting beside the published rows
        spec=lambda w: shlex.quote(json.dumps(gan_spec(w.gan))),
        data=lambda w, input: prepared_dir(input.data),
        options=cli_options(config["modes"]),
        seed=config["seed"],
    log:
        f"{LOGS}/modes/{{gan}}.log",
    benchmark:
        f"{BENCH}/modes/{{gan}}.tsv"
    shell:
        "python -m audit.modes --name {params.name} --spec {params.spec} --labels {input.labels} "
        "--annotator-test {input.test} --data {params.data} --truth {input.truth} {params.options} --seed {params.seed} "
        "--out-json {output.json} --out-csv {output.table} --out-png {output.plot} > {log} 2>&1"


#: the report rule's inputs of each stage that may not run, in its flags' order (audit/report.py)
REPORT_STAGE_INPUTS = {"diversity": ("diversity", "diversity_plots", "real_curve"),
                       "feature_metrics": ("feature_metrics", "feature_metrics_plots"),
                       "support": ("support", "support_curves", "support_sheets"),
                       "memorisation": ("memorisation", "memorisation_plots"), "modes": ("modes", "modes_plots"),
                       "discriminators": ("discriminators", "discriminators_plots")}


def report_stage_flags(input):
    """The report's flags of those stages: each input's files when the stage runs, else
    ``--skipped stage='reason'``; modes, when it does not apply, gives neither."""
    parts, skipped = [], []
    for stage, names in REPORT_STAGE_INPUTS.items():
        if stage in SKIPPED:
            skipped.append(shlex.quote(f"{stage}={SKIPPED[stage]}"))
            continue
        for name in names:
            files = getattr(input, name)
            files = [files] if isinstance(files, str) else list(files)
            parts += [f"--{name.replace('_', '-')}", *files] if files else []
    return " ".join(parts + (["--skipped", *skipped] if skipped else []))
