def interpolation_strip(gan):
    """GAN ``gan``'s latent interpolation strips: train_gan's for a trained GAN, the sample
    stage's for an external generator module; None for a GAN without a latent space."""
    kind = gan_spec(gan)["type"]
    if kind in TRAINED_TYPES:
        return expand(rules.train_gan.output.interpolation, trained=gan)[0]
    if kind in GENERATOR_MODULE_TYPES:
        return expand(rules.sample_module.output.interpolation, gan=gan)[0]
    return None


# Every file the report reads or embeds is an input here (tests/test_report_inputs.py checks it
# with Snakemake's own rerun logic); the per-GAN lists follow the order of GANS.
rule report:
    input:
        meta=rules.prepare.output.meta,
        annotator=rules.annotator.output.metrics,
        confusion=rules.annotator.output.confusion,
        skew=expand(rules.skew.output.json, gan=GANS),
        skew_plots=expand(rules.skew.output.plot, gan=GANS),
        truths=expand(rules.sample.output.truth, gan=GANS),
        previews=expand(rules.sample.output.preview, gan=GANS),
        interpolations=[strip for strip in map(interpolation_strip, GANS) if strip],
        spectra=expand(rules.spectrum.output.json, gan=GANS),
        spectrum_plots=expand(rules.spectrum.output.plot, gan=GANS),
        # the stages that may not run on a dataset (rules/modes.smk): nothing when skipped
        diversity=unless_skipped("diversity", expand(rules.diversity.output.json, gan=GANS)),
        diversity_plots=unless_skipped("diversity", expand(rules.diversity.output.plot, gan=GANS)),
        feature_metrics=unless_skipped("feature_metrics", expand(rules.feature_metrics.output.json, gan=GANS)),
        feature_metrics_plots=unless_skipped("feature_metrics", expand(rules.feature_metrics.output.plot, gan=GANS)),
        support=unless_skipped("support", expand(rules.support.output.json, gan=GANS)),
        support_curves=unless_skipped("support", expand(rules.support.output.curve, gan=GANS)),
        support_sheets=unless_skipped("support", expand(rules.support.output.sheet, gan=GANS)),
        memorisation=unless_skipped("memorisation", expand(rules.memorisation.output.json, gan=GANS)),
        memorisation_plots=unless_skipped("memorisation", expand(rules.memorisation.output.plot, gan=GANS)),
        real_curve=unless_skipped("diversity", [rules.real_curve.output.summary]),
        discriminators=unless_skipped("discriminators", expand(rules.discriminators.output.json, gan=GANS)),
        discriminators_plots=unless_skipped("discriminators", expand(rules.discriminators.output.plot, gan=GANS)),
        modes=expand(rules.modes.output.json, gan=MODES_GANS),
        modes_plots=expand(rules.modes.output.plot, gan=MODES_GANS),
        dynamics=rules.gan_dynamics.output.summary,
        # the report's figure captions are the ones Snakemake's --report shows (one text per figure)
        captions=sorted(glob.glob(os.path.join(workflow.basedir, "report", "captions", "*.rst"))),
        dynamics_figures=[rules.gan_dynamics.output.figure1, rules.gan_dynamics.output.figure2,
                          rules.gan_dynamics.output.heatmap],
    output:
        summary=report(f"{OUT}/summary.csv", caption="../report/captions/summary.rst", category="Summary"),
        html=f"{OUT}/report.html",
        verdicts=f"{OUT}/verdicts.txt",
    params:
        gans=GANS,
        # aligned with GANS: '-' for a GAN without a latent space
        interpolations=[interpolation_strip(gan) or "-" for gan in GANS],
        stages=lambda w, input: report_stage_flags(input),
    log:
        f"{LOGS}/report.log",
    benchmark:
        f"{BENCH}/report.tsv"
    shell:
        "python -m audit.report --gans {params.gans} --meta {input.meta} --annotator-metrics {input.annotator} "
        "--confusion {input.confusion} --skew {input.skew} --skew-plots {input.skew_plots} "
        "--truths {input.truths} --previews {input.previews} --interpolations {params.interpolations} "
        "--spectra {input.spectra} --spectrum-plots {input.spectrum_plots} {params.stages} "
        "--dynamics-summary {input.dynamics} --dynamics-figures {input.dynamics_figures} --captions {input.captions} "
        "--out-csv {output.summary} --out-html {output.html} --out-verdicts {output.verdicts} > {log} 2>&1"
