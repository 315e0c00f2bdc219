rule train:
    # Folds 1-8 train, 9 validation (early stopping, LR schedule, thresholds); 10 is never read.
    input:
        data=run_data,
        labels="results/data/labels.parquet",
    output:
        weights="results/models/{run}/model.pt",
        sidecar="results/models/{run}/model.json",
        history="results/models/{run}/history.tsv",
        thresholds="results/models/{run}/thresholds.json",
        config="results/models/{run}/run_config.yaml",
    log:
        "results/logs/train/{run}.log",
    benchmark:
        "results/benchmarks/train/{run}.tsv"
    conda:
        "../envs/torch.yaml"
    threads: max(1, min(4, workflow.cores))
    resources:
        mem_mb=8000,
        runtime=240,
        # one GPU where the run may use one; the slurm profile maps this to --gpus
        gpu=lambda wc: 0 if run_config(config, wc.run)["train"]["device"] == "cpu" else 1,
    params:
        run=lambda wc: run_config(config, wc.run),
        folds=SPLITS,
    script:
        "../workflow_scripts/train.py"


rule predict:
    input:
        data=run_data,
        labels="results/data/labels.parquet",
        weights=rules.train.output.weights,
        sidecar=rules.train.output.sidecar,
    output:
        predictions="results/predictions/{run}/{split}.parquet",
    log:
        "results/logs/predict/{run}_{split}.log",
    benchmark:
        "results/benchmarks/predict/{run}_{split}.tsv"
    conda:
        "../envs/torch.yaml"
    threads: max(1, min(4, workflow.cores))
    resources:
        mem_mb=4000,
        runtime=30,
    params:
        label_set=lambda wc: run_config(config, wc.run)["train"]["label_set"],
        folds=lambda wc: SPLITS[wc.split],
    script:
        "../workflow_scripts/predict.py"


rule evaluate:
    # Scores the run's test predictions: fold 10 (holdout) or pooled out-of-fold (crossval).
    input:
        predictions=test_predictions,
        thresholds=run_thresholds,
        labels="results/data/labels.parquet",
        manifest=rules.acquire.output.manifest,
    output:
        overall="results/metrics/{run}/overall.tsv",
        per_label="results/metrics/{run}/per_label.tsv",
        prior="results/metrics/{run}/prior_baseline.tsv",
        comparison="results/metrics/{run}/comparison.tsv",
        calibration="results/metrics/{run}/calibration.tsv",
        context="results/metrics/{run}/context.json",
    log:
        "results/logs/evaluate/{run}.log",
    benchmark:
        "results/benchmarks/evaluate/{run}.tsv"
    conda:
        "../envs/report.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=30,
    params:
        label_set=lambda wc: run_config(config, wc.run)["train"]["label_set"],
        architecture=lambda wc: run_config(config, wc.run)["model"].get("architecture", "hybrid"),
        scheme=lambda wc: run_scheme(config, wc.run),
        evaluate=config["evaluate"],
    script:
        "../workflow_scripts/evaluate.py"


rule ablation:
    # `snakemake ablation`: train and evaluate the grid, then one table (paired against the reference) and one figure.
    input:
        metrics=expand("results/metrics/{run}/overall.tsv", run=ABLATION_RUNS),
        contexts=expand("results/metrics/{run}/context.json", run=ABLATION_RUNS),
        models=ablation_files("model"),
        histories=ablation_files("history"),
        predictions=ablation_files("predictions"),
        thresholds=ablation_files("thresholds"),
    output:
        table=report("results/tables/ablation.tsv", caption="../report/ablation.rst", category="Ablation"),
        table_md="results/tables/ablation.md",
        table_tex="results/tables/ablation.tex",
        per_run="results/tables/ablation_per_run.tsv",
        paired="results/tables/ablation_paired.tsv",
        per_label="results/tables/ablation_paired_per_label.tsv",
        per_label_table=report(
            "results/tables/ablation_per_label.tsv", caption="../report/ablation_per_label.rst", category="Ablation"
        ),
        per_label_md="results/tables/ablation_per_label.md",
        per_label_tex="results/tables/ablation_per_label.tex",
        figure=report("results/figures/ablation.png", caption="../report/ablation.rst", category="Ablation"),
        figure_pdf="results/figures/ablation.pdf",
    log:
        "results/logs/ablation.log",
    benchmark:
        "results/benchmarks/ablation.tsv"
    conda:
        "../envs/torch.yaml"
    threads: 2
    resources:
        mem_mb=4000,
        runtime=30,
    params:
        ablation=config["ablation"],
        runs=list(ABLATION_RUNS),
        reference=config["ablation"].get("reference", "hybrid"),
        evaluate=config["evaluate"],
        shape=(12, FILTERS.samples),
    script:
        "../workflow_scripts/ablation.py"
