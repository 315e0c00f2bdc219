rule delineate:
    input:
        signals=DATA,
    output:
        beats=directory(DELINEATION),
    log:
        RESULTS.log("delineate"),
    benchmark:
        RESULTS.benchmark("delineate")
    conda:
        "../envs/data.yaml"
    threads: workflow.cores
    resources:
        # one signals part in flight per worker, in mV (float32) plus the libraries' float64 copies
        mem_mb=lambda wc, threads: 1000
        + threads * config["preprocess"]["part_size"] * 12 * FILTERS.samples * 16 // 2**20,
        runtime=240,
    params:
        method=config["delineate"]["method"],
    script:
        "../workflow_scripts/delineate.py"


rule render_delineation:
    input:
        signals=DATA,
        beats=DELINEATION,
    output:
        png=report(
            RESULTS.figure(None, "delineation_examples", "png"),
            caption="../report/delineation_examples.rst",
            category="Delineation",
        ),
        pdf=RESULTS.figure(None, "delineation_examples", "pdf"),
    log:
        RESULTS.log("render", "delineation"),
    benchmark:
        RESULTS.benchmark("render", "delineation")
    conda:
        "../envs/report.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    script:
        "../workflow_scripts/render_delineation.py"
