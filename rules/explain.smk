rule normal_template:
    # The normal_template background: per lead and wave segment, the median shape of NORM-only
    # training records (folds 1-8) and the median segment durations.
    input:
        data=run_data,
        labels=RESULTS.labels(),
        beats=DELINEATION,
    output:
        template=RESULTS.template("{run}"),
    log:
        RESULTS.log("normal_template", "{run}"),
    benchmark:
        RESULTS.benchmark("normal_template", "{run}")
    conda:
        "../envs/torch.yaml"
    threads: 1
    resources:
        mem_mb=3000,
        runtime=20,
    script:
        "../workflow_scripts/normal_template.py"


rule explain:
    # SHAP (permutation over the record's features, and gradient on the raw signal), LIME and
    # attention for the selected test records on wave features (bins where a record is not
    # delineated) and, with compare_features, time bins too; deletion/insertion faithfulness.
    input:
        unpack(beats_input),
        unpack(template_input),
        weights=rules.train.output.weights,
        sidecar=rules.train.output.sidecar,
        thresholds=rules.train.output.thresholds,
        predictions=RESULTS.predictions("{run}", "test"),
        data=run_data,
    output:
        shap=RESULTS.explain("{run}", "shap.parquet"),
        lime=RESULTS.explain("{run}", "lime.parquet"),
        attention=RESULTS.explain("{run}", "attention.parquet"),
        meta=RESULTS.explain("{run}", "explain_meta.tsv"),
        selection=RESULTS.explain("{run}", "selection.tsv"),
        faithfulness=RESULTS.explain("{run}", "faithfulness.tsv"),
        curves=RESULTS.explain("{run}", "faithfulness_curves.parquet"),
        spaces=RESULTS.explain("{run}", "feature_spaces.tsv"),
    log:
        RESULTS.log("explain", "{run}"),
    benchmark:
        RESULTS.benchmark("explain", "{run}")
    conda:
        "../envs/torch.yaml"
    threads: EXPLAIN_THREADS
    resources:
        mem_mb=6000,
        runtime=120,
    params:
        explain=EXPLAIN_PARAMS,
    script:
        "../workflow_scripts/explain.py"


rule explain_backgrounds:
    # How the masking background changes SHAP/LIME and their faithfulness, per label: the first
    # explain.backgrounds.records selected records explained once per background.
    input:
        unpack(beats_input),
        unpack(template_input),
        weights=rules.train.output.weights,
        thresholds=rules.train.output.thresholds,
        predictions=RESULTS.predictions("{run}", "test"),
        data=run_data,
    output:
        per_record=RESULTS.explain("{run}", "backgrounds_per_record.parquet"),
    log:
        RESULTS.log("explain_backgrounds", "{run}"),
    benchmark:
        RESULTS.benchmark("explain_backgrounds", "{run}")
    conda:
        "../envs/torch.yaml"
    threads: EXPLAIN_THREADS
    resources:
        mem_mb=4000,
        runtime=120,
    params:
        explain=EXPLAIN_PARAMS,
        backgrounds=config["explain"]["backgrounds"],
    script:
        "../workflow_scripts/explain_backgrounds.py"


rule correlate:
    # Agreement of SHAP, LIME and attention per record and label, and its summary.
    input:
        shap=rules.explain.output.shap,
        lime=rules.explain.output.lime,
        attention=rules.explain.output.attention,
        # which explained labels the model predicted: the headline correlation uses those
        predictions=RESULTS.predictions("{run}", "test"),
        thresholds=rules.train.output.thresholds,
    output:
        per_record=RESULTS.explain("{run}", "correlation_per_record.tsv"),
        summary=RESULTS.explain("{run}", "correlation.tsv"),
    log:
        RESULTS.log("correlate", "{run}"),
    benchmark:
        RESULTS.benchmark("correlate", "{run}")
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
        unpack(lambda w: template_input(Namespace(run=config["explain_record"]["run"]))),
        weights=RESULTS.weights(config["explain_record"]["run"]),
        thresholds=RESULTS.thresholds(config["explain_record"]["run"]),
        sidecar=RESULTS.sidecar(config["explain_record"]["run"]),
        data=data_path(config, config["explain_record"]["run"]),
        record=user_record_header,
        signals=user_record_data,
    output:
        predictions=RESULTS.user_record("{name}", "predictions.tsv"),
        attributions=RESULTS.user_record("{name}", "attributions.parquet"),
        viewer=report(
            RESULTS.user_record("{name}"),
            caption="../report/viewer.rst",
            category="Your ECGs",
            subcategory="{name}",
        ),
    log:
        RESULTS.log("explain_record", "{name}"),
    benchmark:
        RESULTS.benchmark("explain_record", "{name}")
    conda:
        "../envs/torch.yaml"
    threads: max(1, min(4, workflow.cores))
    resources:
        mem_mb=4000,
        runtime=30,
    params:
        filters={**FILTERS.as_dict(), "normalize": run_normalize(config, config["explain_record"]["run"])},
        explain={**RECORD_EXPLAIN_PARAMS, "compare_features": False},  # the run's space: waves where delineated
        delineation_method=config["delineate"]["method"],
    script:
        "../workflow_scripts/explain_record.py"
