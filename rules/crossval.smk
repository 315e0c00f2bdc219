# evaluate.scheme (or a run's `scheme`) crossval: ten models per run, model k tests fold k,
# validates fold k+1 (10 -> 1) and trains on the other eight. Each is an ordinary job: they run
# in parallel, on SLURM, and rerun one by one. Their test predictions are pooled and scored once.


rule train_cv:
    input:
        data=run_data,
        labels=RESULTS.labels(),
    output:
        weights=RESULTS.fold_model("{run}", "{fold}", "model.pt"),
        sidecar=RESULTS.fold_model("{run}", "{fold}", "model.json"),
        history=RESULTS.fold_model("{run}", "{fold}", "history.tsv"),
        thresholds=RESULTS.fold_model("{run}", "{fold}", "thresholds.json"),
        config=RESULTS.fold_model("{run}", "{fold}", "run_config.yaml"),
    log:
        RESULTS.log("train_cv", "{run}/fold{fold}"),
    benchmark:
        RESULTS.benchmark("train_cv", "{run}/fold{fold}")
    conda:
        "../envs/torch.yaml"
    threads: max(1, min(4, workflow.cores))
    resources:
        mem_mb=8000,
        runtime=240,
        gpu=lambda wc: 0 if run_config(config, wc.run)["train"]["device"] == "cpu" else 1,
    params:
        run=lambda wc: run_config(config, wc.run),
        folds=lambda wc: cv_splits(wc.fold),
    script:
        "../workflow_scripts/train.py"


rule predict_cv:
    input:
        data=run_data,
        labels=RESULTS.labels(),
        weights=rules.train_cv.output.weights,
        sidecar=rules.train_cv.output.sidecar,
    output:
        predictions=RESULTS.fold_predictions("{run}", "{fold}", "{split}"),
    log:
        RESULTS.log("predict_cv", "{run}/fold{fold}_{split}"),
    benchmark:
        RESULTS.benchmark("predict_cv", "{run}/fold{fold}_{split}")
    conda:
        "../envs/torch.yaml"
    threads: max(1, min(4, workflow.cores))
    resources:
        mem_mb=4000,
        runtime=30,
    params:
        label_set=lambda wc: run_config(config, wc.run)["train"]["label_set"],
        folds=lambda wc: cv_splits(wc.fold)[wc.split],
    script:
        "../workflow_scripts/predict.py"


rule pool_cv:
    input:
        predictions=expand(RESULTS.fold_predictions("{{run}}", "{fold}", "test"), fold=FOLDS),
        thresholds=expand(RESULTS.fold_model("{{run}}", "{fold}", "thresholds.json"), fold=FOLDS),
    output:
        predictions=RESULTS.predictions("{run}", "crossval"),
        thresholds=RESULTS.thresholds("{run}", crossval=True),
    log:
        RESULTS.log("pool_cv", "{run}"),
    benchmark:
        RESULTS.benchmark("pool_cv", "{run}")
    conda:
        "../envs/torch.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        folds=FOLDS,
    script:
        "../workflow_scripts/pool_cv.py"
