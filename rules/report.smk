rule report:
    input:
        annotator=rules.annotator.output.metrics,
        skew=expand(f"{OUT}/skew/{{gan}}.json", gan=GANS),
        previews=expand(f"{OUT}/samples/{{gan}}/preview.png", gan=GANS),
        plots=expand(f"{OUT}/skew/{{gan}}.png", gan=GANS),
        spectra=expand(f"{OUT}/spectrum/{{gan}}.json", gan=GANS),
        dynamics=rules.dynamics.output.summary,
        diversity=expand(f"{OUT}/diversity/{{gan}}.json", gan=GANS),
        real_curve=rules.real_curve.output.summary,
    output:
        summary=report(f"{OUT}/summary.csv", caption="../report/captions/summary.rst", category="Summary"),
        html=f"{OUT}/report.html",
    log:
        f"{LOGS}/report.log",
    benchmark:
        f"{BENCH}/report.tsv"
    shell:
        "python -m audit.report --results {OUT} --gans {GANS} --out-csv {output.summary} "
        "--out-html {output.html} --spectrum --diversity --dynamics {RESULTS}/dynamics > {log} 2>&1"
