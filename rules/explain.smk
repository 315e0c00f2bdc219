rule explain:
    # SHAP (permutation over bins, and gradient on the raw signal), LIME and attention for the
    # selected test records, plus deletion/insertion faithfulness curves.
    input:
        weights=rules.train.output.weights,
        sidecar=rules.train.output.sidecar,
        thresholds=rules.train.output.thresholds,
        predictions="results/predictions/{run}/test.parquet",
        data=DATA,
    output:
        shap="results/explain/{run}/shap.parquet",
        lime="results/explain/{run}/lime.parquet",
        attention="results/explain/{run}/attention.parquet",
        meta="results/explain/{run}/explain_meta.tsv",
        selection="results/explain/{run}/selection.tsv",
        faithfulness="results/explain/{run}/faithfulness.tsv",
        curves="results/explain/{run}/faithfulness_curves.parquet",
    log:
        "results/logs/explain/{run}.log",
    benchmark:
        "results/benchmarks/explain/{run}.tsv"
    conda:
        "../envs/torch.yaml"
    threads: max(1, min(4, workflow.cores))
    resources:
        mem_mb=6000,
        runtime=120,
    params:
        explain={k: v for k, v in config["explain"].items() if k not in ("runs", "n_boot")},
    script:
        "../workflow_scripts/explain.py"


rule correlate:
    # Agreement of SHAP, LIME and attention per record and label, and its summary.
    input:
        shap=rules.explain.output.shap,
        lime=rules.explain.output.lime,
        attention=rules.explain.output.attention,
        # which explained labels the model predicted: the headline correlation uses those
        predictions="results/predictions/{run}/test.parquet",
        thresholds=rules.train.output.thresholds,
    output:
        per_record="results/explain/{run}/correlation_per_record.tsv",
        summary="results/explain/{run}/correlation.tsv",
    log:
        "results/logs/correlate/{run}.log",
    benchmark:
        "results/benchmarks/correlate/{run}.tsv"
    conda:
        "../envs/torch.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=20,
    params:
        n_boot=config["explain"]["n_boot"],
        seed=config["explain"]["seed"],
    script:
        "../workflow_scripts/correlate.py"


rule explain_record:
    # A user's own WFDB record (config explain_record.records) through the same preprocessing,
    # the model of explain_record.run, SHAP/LIME/attention and a viewer page.
    input:
        weights=f"results/models/{config['explain_record']['run']}/model.pt",
        thresholds=f"results/models/{config['explain_record']['run']}/thresholds.json",
        sidecar=f"results/models/{config['explain_record']['run']}/model.json",
        data=DATA,
        record=user_record_header,
        signals=user_record_data,
    output:
        predictions="results/explain_record/{name}/predictions.tsv",
        attributions="results/explain_record/{name}/attributions.parquet",
        viewer=report(
            "results/explain_record/{name}/index.html",
            caption="../report/viewer.rst",
            category="Your ECGs",
            subcategory="{name}",
        ),
    log:
        "results/logs/explain_record/{name}.log",
    benchmark:
        "results/benchmarks/explain_record/{name}.tsv"
    conda:
        "../envs/torch.yaml"
    threads: max(1, min(4, workflow.cores))
    resources:
        mem_mb=4000,
        runtime=30,
    params:
        filters=FILTERS.as_dict(),
        explain={k: v for k, v in config["explain"].items() if k not in ("runs", "n_boot")},
        delineation_method=config["delineate"]["method"],
    script:
        "../workflow_scripts/explain_record.py"
