rule annotator:
    input:
        data=rules.prepare.output,
    output:
        model=f"{OUT}/annotator/model.pt",
        metrics=f"{OUT}/annotator/metrics.json",
        test=f"{OUT}/annotator/test_predictions.csv",
        confusion=report(f"{OUT}/annotator/confusion.png", caption="../report/captions/annotator.rst",
                         category="Annotator"),
    params:
        data=lambda w, input: prepared_dir(input.data),
        options=cli_options({**config["annotator"], "flip": CLASSIFIER_FLIP}),
        seed=config["seed"],
        device=config["device"],
    threads: HEAVY_THREADS
    log:
        f"{LOGS}/annotator.log",
    benchmark:
        f"{BENCH}/annotator.tsv"
    shell:
        "python -m audit.annotator --data {params.data} --model {output.model} --metrics {output.metrics} "
        "--test-predictions {output.test} --confusion {output.confusion} {params.options} "
        "--seed {params.seed} --device {params.device} --threads {threads} > {log} 2>&1"
