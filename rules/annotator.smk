rule annotator:
    input:
        rules.prepare.output,
    output:
        model=f"{OUT}/annotator/model.pt",
        metrics=f"{OUT}/annotator/metrics.json",
        test=f"{OUT}/annotator/test_predictions.csv",
        confusion=report(f"{OUT}/annotator/confusion.png", caption="../report/captions/annotator.rst",
                         category="Annotator"),
    params:
        options=cli_options({**config["annotator"], "flip": ANNOTATOR_FLIP}),
        seed=config["seed"],
        device=config["device"],
    threads: HEAVY_THREADS
    log:
        f"{LOGS}/annotator.log",
    benchmark:
        f"{BENCH}/annotator.tsv"
    shell:
        "python -m audit.annotator --data {OUT}/data --out {OUT}/annotator {params.options} "
        "--seed {params.seed} --device {params.device} --threads {threads} > {log} 2>&1"
