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
        diversity=expand(rules.diversity.output.json, gan=GANS),
        diversity_plots=expand(rules.diversity.output.plot, gan=GANS),
        real_curve=rules.real_curve.output.summary,
        dynamics=rules.gan_dynamics.output.summary,
        dynamics_figures=[rules.gan_dynamics.output.figure1, rules.gan_dynamics.output.figure2,
                          rules.gan_dynamics.output.heatmap],
    output:
        summary=report(f"{OUT}/summary.csv", caption="../report/captions/summary.rst", category="Summary"),
        html=f"{OUT}/report.html",
    params:
        gans=GANS,
        # aligned with GANS: '-' for a GAN without a latent space
        interpolations=[interpolation_strip(gan) or "-" for gan in GANS],
    log:
        f"{LOGS}/report.log",
    benchmark:
        f"{BENCH}/report.tsv"
    shell:
        "python -m audit.report --gans {params.gans} --meta {input.meta} --annotator-metrics {input.annotator} "
        "--confusion {input.confusion} --skew {input.skew} --skew-plots {input.skew_plots} "
        "--truths {input.truths} --previews {input.previews} --interpolations {params.interpolations} "
        "--spectra {input.spectra} --spectrum-plots {input.spectrum_plots} --diversity {input.diversity} "
        "--diversity-plots {input.diversity_plots} --real-curve {input.real_curve} "
        "--dynamics-summary {input.dynamics} --dynamics-figures {input.dynamics_figures} "
        "--out-csv {output.summary} --out-html {output.html} > {log} 2>&1"
