# Figures, tables and the viewer page. Each file a reader looks at is marked with report(), with
# its caption from report/*.rst (written by `ecgxai captions report`).


rule render_performance:
    input:
        predictions=test_predictions,
        history=run_history,
        thresholds=run_thresholds,
        overall=rules.evaluate.output.overall,
        per_label=rules.evaluate.output.per_label,
        comparison=rules.evaluate.output.comparison,
        calibration=rules.evaluate.output.calibration,
    output:
        **rendered(PERFORMANCE_FIGURES, "Performance"),
        **rendered(PERFORMANCE_TABLES, "Performance", figures=False),
    log:
        RESULTS.log("render", "{run}_performance"),
    benchmark:
        RESULTS.benchmark("render", "{run}_performance")
    conda:
        "../envs/report.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=20,
    script:
        "../workflow_scripts/render_performance.py"


rule render_explanations:
    input:
        unpack(beats_input),
        backgrounds=rules.explain_backgrounds.output.per_record,
        shap=rules.explain.output.shap,
        lime=rules.explain.output.lime,
        attention=rules.explain.output.attention,
        curves=rules.explain.output.curves,
        faithfulness=rules.explain.output.faithfulness,
        correlations=rules.correlate.output.per_record,
        correlation_summary=rules.correlate.output.summary,
        data=run_data,
    output:
        **rendered(EXPLANATION_FIGURES, "Explanations"),
        **rendered(EXPLANATION_TABLES, "Explanations", figures=False),
    log:
        RESULTS.log("render", "{run}_explanations"),
    benchmark:
        RESULTS.benchmark("render", "{run}_explanations")
    conda:
        "../envs/report.yaml"
    threads: 1
    resources:
        mem_mb=3000,
        runtime=20,
    params:
        folds=SPLITS["test"],
        length_s=FILTERS.length_s,
    script:
        "../workflow_scripts/render_explanations.py"


rule viewer:
    # One self-contained HTML page (works from file://) for the explained test records.
    input:
        # each method's sanity flag in the method description (rule sanity)
        **({"sanity": RESULTS.checks("{run}", "method_flags.tsv")} if config["checks"]["sanity"] else {}),
        # each method's known-answer flag, once `snakemake known_answer` has run (its table exists when the DAG
        # is built; the default target does not run that benchmark, ~15 min)
        **(
            {"known_answer": RESULTS.known_answer("localisation.tsv")}
            if os.path.exists(RESULTS.known_answer("localisation.tsv"))
            else {}
        ),
        # what would make the first records normal, on their median beat (rule counterfactuals)
        **(
            {"counterfactuals": RESULTS.checks("{run}", "counterfactual_answers.json")}
            if config["counterfactuals"]["enabled"]
            else {}
        ),
        predictions=RESULTS.predictions("{run}", "test"),
        thresholds=rules.train.output.thresholds,
        shap=rules.explain.output.shap,
        lime=rules.explain.output.lime,
        attention=rules.explain.output.attention,
        data=run_data,
        # wave bands, fiducial marks, median beats and wave features in the page
        beats=rules.delineate.output.beats,
        # the line under the title: data source, records, labels, split
        context=RESULTS.metrics("{run}", "context"),
    output:
        viewer=report(RESULTS.viewer("{run}"), caption="../report/viewer.rst", category="Viewer", subcategory="{run}"),
    log:
        RESULTS.log("viewer", "{run}"),
    benchmark:
        RESULTS.benchmark("viewer", "{run}")
    conda:
        "../envs/report.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        folds=SPLITS["test"],
        features=config["explain"].get("features"),
        background=config["explain"]["background"],
        known_answer_variant=lambda wc: known_answer_variant(config, wc.run),
    script:
        "../workflow_scripts/viewer.py"
