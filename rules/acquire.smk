rule acquire:
    # The PTB-XL folder itself is not a declared output: Snakemake would delete it before a
    # rerun, losing the partial downloads that a resumed run continues from.
    input:
        acquire_inputs,
    output:
        manifest=RESULTS.source_manifest(),
    log:
        RESULTS.log("acquire"),
    benchmark:
        RESULTS.benchmark("acquire")
    conda:
        "../envs/data.yaml"
    threads: 4
    resources:
        mem_mb=2000,
        runtime=600,
    params:
        # only what decides the data: download knobs (retries, connections) rerun nothing
        data=data_identity(config["data"]),
        rate=RATE,
    script:
        "../workflow_scripts/acquire.py"
