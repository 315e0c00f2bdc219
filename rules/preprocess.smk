rule preprocess:
    input:
        manifest=rules.acquire.output.manifest,
    output:
        signals=directory(DATA),
        labels=RESULTS.labels(),
        quality=RESULTS.quality(),
    log:
        RESULTS.log("preprocess"),
    benchmark:
        RESULTS.benchmark("preprocess")
    conda:
        "../envs/data.yaml"
    threads: workflow.cores
    resources:
        # one part in flight per worker: ~ part_size x 12 leads x samples x 8 bytes, x3 for filtering
        mem_mb=lambda wc, threads: 1000
        + threads * config["preprocess"]["part_size"] * 12 * FILTERS.samples * 24 // 2**20,
        runtime=120,
    params:
        root=config["data"]["path"],
        filters=FILTERS.as_dict(),
        part_size=config["preprocess"]["part_size"],
        labels=config["labels"],
    script:
        "../workflow_scripts/preprocess.py"


# A run (or ablation variant) whose `normalize` differs from preprocess.normalize reads the same
# records renormalised from the stored mV scales: no filtering again, identical records to pair.
rule renormalize:
    input:
        signals=DATA,
    output:
        signals=directory(RESULTS.data(RATE, "{normalize}")),
    log:
        RESULTS.log("renormalize", "{normalize}"),
    benchmark:
        RESULTS.benchmark("renormalize", "{normalize}")
    wildcard_constraints:
        normalize="|".join(n for n in NORMALIZATIONS if n != FILTERS.normalize),
    conda:
        "../envs/data.yaml"
    threads: 1
    resources:
        # one part at a time: ~ part_size x 12 leads x samples x 4 bytes, a few copies
        mem_mb=lambda wc: 1000 + config["preprocess"]["part_size"] * 12 * FILTERS.samples * 32 // 2**20,
        runtime=60,
    params:
        train_folds=SPLITS["train"],
    script:
        "../workflow_scripts/renormalize.py"
