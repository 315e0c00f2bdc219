# evaluate.scheme (or a run's `scheme`) crossval: ten models per run, model k tests fold k,
# validates fold k+1 (10 -> 1) and trains on the other eight. Each is an ordinary job: they run
# in parallel, on SLURM, and rerun one by one. Their test predictions are pooled and scored once.


rule train_cv:
    input:
        data=run_data,
        labels="results/data/labels.parquet",
    output:
        weights="results/models/{run}/cv/fold{fold}/model.pt",
        sidecar="results/models/{run}/cv/fold{fold}/model.json",
        history="results/models/{run}/cv/fold{fold}/history.tsv",
        thresholds="results/models/{run}/cv/fold{fold}/thresholds.json",
        config="results/models/{run}/cv/fold{fold}/run_config.yaml",
    log:
        "results/logs/train_cv/{run}/fold{fold}.log",
    benchmark:
        "results/benchmarks/train_cv/{run}/fold{fold}.tsv"
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
        labels="results/data/labels.parquet",
        weights=rules.train_cv.output.weights,
        sidecar=rules.train_cv.output.sidecar,
    output:
        predictions="results/predictions/{run}/cv/fold{fold}_{split}.parquet",
    log:
        "results/logs/predict_cv/{run}/fold{fold}_{split}.log",
    benchmark:
        "results/benchmarks/predict_cv/{run}/fold{fold}_{split}.tsv"
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
        predictions=expand("results/predictions/{{run}}/cv/fold{fold}_test.parquet", fold=FOLDS),
        thresholds=expand("results/models/{{run}}/cv/fold{fold}/thresholds.json", fold=FOLDS),
    output:
        predictions="results/predictions/{run}/crossval.parquet",
        thresholds="results/models/{run}/cv/thresholds.json",
    log:
        "results/logs/pool_cv/{run}.log",
    benchmark:
        "results/benchmarks/pool_cv/{run}.tsv"
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
