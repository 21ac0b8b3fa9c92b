rule train_gan:
    input:
        rules.prepare.output,
    output:
        generator=f"{OUT}/gans/{{trained}}/generator.pt",
        losses=f"{OUT}/gans/{{trained}}/losses.csv",
        plot=report(f"{OUT}/gans/{{trained}}/losses.png", caption="../report/captions/losses.rst",
                    category="GAN training", subcategory="{trained}"),
        interpolation=report(f"{OUT}/gans/{{trained}}/interpolation.png",
                             caption="../report/captions/interpolation.rst",
                             category="GAN training", subcategory="{trained}"),
    params:
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
        "python -m audit.train_gan --data {OUT}/data --out {OUT}/gans/{wildcards.trained} --loss {params.loss} "
        "{params.options} --seed {params.seed} --device {params.device} --threads {threads} > {log} 2>&1"


rule sample:
    input:
        data=rules.prepare.output,
        generator=generator_input,
    output:
        samples=f"{OUT}/samples/{{gan}}/samples.npy",
        planted=f"{OUT}/samples/{{gan}}/planted_labels.npy",
        truth=f"{OUT}/samples/{{gan}}/truth.json",
        preview=report(f"{OUT}/samples/{{gan}}/preview.png", caption="../report/captions/preview.rst",
                       category="Samples", subcategory="{gan}"),
    params:
        spec=lambda w: shlex.quote(json.dumps(gan_spec(w.gan))),
        checkpoint=lambda w: f"--checkpoint {OUT}/gans/{w.gan}/generator.pt"
        if gan_spec(w.gan)["type"] in TRAINED_TYPES else "",
        n=config["samples"]["n"],
        seed=config["seed"],
        device=config["device"],
    threads: HEAVY_THREADS
    log:
        f"{LOGS}/sample/{{gan}}.log",
    benchmark:
        f"{BENCH}/sample/{{gan}}.tsv"
    shell:
        "python -m audit.sample --name {wildcards.gan} --spec {params.spec} --data {OUT}/data "
        "--out {OUT}/samples/{wildcards.gan} --n {params.n} --seed {params.seed} {params.checkpoint} "
        "--device {params.device} --threads {threads} > {log} 2>&1"
