rule train:
    # Folds 1-8 train, 9 validation (early stopping, LR schedule, thresholds); 10 is never read.
    input:
        data=run_data,
        labels=RESULTS.labels(),
    output:
        weights=RESULTS.weights("{run}"),
        sidecar=RESULTS.sidecar("{run}"),
        history=RESULTS.history("{run}"),
        thresholds=RESULTS.thresholds("{run}"),
        config=RESULTS.run_config("{run}"),
    log:
        RESULTS.log("train", "{run}"),
    benchmark:
        RESULTS.benchmark("train", "{run}")
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
        labels=RESULTS.labels(),
        weights=rules.train.output.weights,
        sidecar=rules.train.output.sidecar,
    output:
        predictions=RESULTS.predictions("{run}", "{split}"),
    log:
        RESULTS.log("predict", "{run}_{split}"),
    benchmark:
        RESULTS.benchmark("predict", "{run}_{split}")
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
        labels=RESULTS.labels(),
        manifest=rules.acquire.output.manifest,
    output:
        overall=RESULTS.metrics("{run}", "overall"),
        per_label=RESULTS.metrics("{run}", "per_label"),
        prior=RESULTS.metrics("{run}", "prior_baseline"),
        comparison=RESULTS.metrics("{run}", "comparison"),
        calibration=RESULTS.metrics("{run}", "calibration"),
        context=RESULTS.metrics("{run}", "context"),
    log:
        RESULTS.log("evaluate", "{run}"),
    benchmark:
        RESULTS.benchmark("evaluate", "{run}")
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
        metrics=expand(RESULTS.metrics("{run}", "overall"), run=ABLATION_RUNS),
        contexts=expand(RESULTS.metrics("{run}", "context"), run=ABLATION_RUNS),
        models=ablation_files("model"),
        histories=ablation_files("history"),
        predictions=ablation_files("predictions"),
        thresholds=ablation_files("thresholds"),
    output:
        table=report(RESULTS.table(None, "ablation", "tsv"), caption="../report/ablation.rst", category="Ablation"),
        table_md=RESULTS.table(None, "ablation", "md"),
        table_tex=RESULTS.table(None, "ablation", "tex"),
        per_run=RESULTS.table(None, "ablation_per_run", "tsv"),
        paired=RESULTS.table(None, "ablation_paired", "tsv"),
        per_label=RESULTS.table(None, "ablation_paired_per_label", "tsv"),
        per_label_table=report(
            RESULTS.table(None, "ablation_per_label", "tsv"),
            caption="../report/ablation_per_label.rst",
            category="Ablation",
        ),
        per_label_md=RESULTS.table(None, "ablation_per_label", "md"),
        per_label_tex=RESULTS.table(None, "ablation_per_label", "tex"),
        figure=report(RESULTS.figure(None, "ablation", "png"), caption="../report/ablation.rst", category="Ablation"),
        figure_pdf=RESULTS.figure(None, "ablation", "pdf"),
    log:
        RESULTS.log("ablation"),
    benchmark:
        RESULTS.benchmark("ablation")
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
