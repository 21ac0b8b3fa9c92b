rule train_gan:
    input:
        data=rules.prepare.output,
    output:
        generator=f"{OUT}/gans/{{trained}}/generator.pt",
        losses=f"{OUT}/gans/{{trained}}/losses.csv",
        plot=report(f"{OUT}/gans/{{trained}}/losses.png", caption="../report/captions/losses.rst",
                    category="GAN training", subcategory="{trained}"),
        interpolation=report(f"{OUT}/gans/{{trained}}/interpolation.png",
                             caption="../report/captions/interpolation.rst",
                             category="GAN training", subcategory="{trained}"),
    params:
        data=lambda w, input: prepared_dir(input.data),
        # the resume state, beside the generator and deliberately not an output: Snakemake
        # keeps it after a kill, so the rerun resumes from it
        checkpoint=lambda w, output: os.path.join(os.path.dirname(output.generator), "checkpoint.pt"),
        options=lambda w: cli_options({k: v for k, v in gan_spec(w.trained).items() if k != "type"}),
        loss=lambda w: gan_spec(w.trained)["type"],
        seed=config["seed"],
        device=config["device"],
    threads: HEAVY_THREADS
    log:
        f"{LOGS}/train_gan/{{trained}}.log",
    benchmark:
        f"{BENCH}/train_gan/{{trained}}.tsv"
    shell:
        "python -m audit.train_gan --data {params.data} --loss {params.loss} {params.options} "
        "--checkpoint {params.checkpoint} --generator {output.generator} --losses {output.losses} "
        "--losses-plot {output.plot} --interpolation {output.interpolation} "
        "--seed {params.seed} --device {params.device} --threads {threads} > {log} 2>&1"


# Two rules write samples/<gan>/: `sample` for every GAN but the external generator modules,
# `sample_module` (the same rule plus the latent interpolation strips) for those.
SAMPLE_OUTPUT = dict(
    samples=f"{OUT}/samples/{{gan}}/samples.npy",
    planted=f"{OUT}/samples/{{gan}}/planted_labels.npy",
    truth=f"{OUT}/samples/{{gan}}/truth.json",
    preview=report(f"{OUT}/samples/{{gan}}/preview.png", caption="../report/captions/preview.rst",
                   category="Samples", subcategory="{gan}"),
)


rule sample:
    input:
        data=rules.prepare.output,
        generator=generator_input,
    output:
        **SAMPLE_OUTPUT,
    wildcard_constraints:
        gan=one_of([g for g in GANS if g not in MODULE_GANS]),
    params:
        name=lambda w: w.gan,
        spec=lambda w: shlex.quote(json.dumps(gan_spec(w.gan))),
        data=lambda w, input: prepared_dir(input.data),
        # the trained generator; external GANs name their files in the spec
        generator=lambda w, input: f"--generator {input.generator[0]}"
        if gan_spec(w.gan)["type"] in TRAINED_TYPES else "",
        interpolation="",
        n=config["samples"]["n"],
        seed=config["seed"],
        device=config["device"],
    threads: HEAVY_THREADS
    log:
        f"{LOGS}/sample/{{gan}}.log",
    benchmark:
        f"{BENCH}/sample/{{gan}}.tsv"
    shell:
        "python -m audit.sample --name {params.name} --spec {params.spec} --data {params.data} {params.generator} "
        "--n {params.n} --seed {params.seed} --samples {output.samples} --planted-labels {output.planted} "
        "--truth {output.truth} --preview {output.preview} {params.interpolation} "
        "--device {params.device} --threads {threads} > {log} 2>&1"


use rule sample as sample_module with:
    output:
        **SAMPLE_OUTPUT,
        interpolation=report(f"{OUT}/samples/{{gan}}/interpolation.png",
                             caption="../report/captions/interpolation_module.rst",
                             category="Samples", subcategory="{gan}"),
    wildcard_constraints:
        gan=one_of(MODULE_GANS),
    params:
        interpolation=lambda w, output: f"--interpolation {output.interpolation}",
