# Checks of the explanations of each explained run: agreement with cited expert rules (against
# time-share, energy-share and randomised-model nulls), the rule-region deletion probe, the background
# as input, the cascading model-randomisation sanity check and, with checks.seed_runs, seed consistency.
# (its constants and input functions live in rules/common.smk, as --lint asks)


rule expert_rules:
    # Share of each method's positive attribution on the rule's segments x leads vs three nulls,
    # the deletion probe (rule region vs same-size random region vs randomised model), and what the
    # model predicts for each background itself.
    input:
        unpack(checks_delineation),
        unpack(checks_template),
        weights=rules.train.output.weights,
        thresholds=rules.train.output.thresholds,
        predictions=RESULTS.predictions("{run}", "test"),
        data=run_data,
        # the explain stage's maps of the same records and labels are reused, not computed again (sanity,
        # which would reuse 1 of its 7 steps, runs beside explain instead)
        explained_shap=RESULTS.explain("{run}", "shap.parquet"),
        explained_lime=RESULTS.explain("{run}", "lime.parquet"),
    output:
        shares=RESULTS.checks("{run}", "rule_shares.parquet"),
        alignment=checks_report(RESULTS.checks("{run}", "expert_rule_alignment.tsv"), "expert_rule_alignment_table"),
        probe=checks_report(RESULTS.checks("{run}", "rule_deletion_probe.tsv"), "rule_deletion_probe_table"),
        probe_records=RESULTS.checks("{run}", "rule_deletion_probe_records.tsv"),
        background=checks_report(RESULTS.checks("{run}", "background_check.tsv"), "background_check"),
        background_records=RESULTS.checks("{run}", "background_check_records.tsv"),
        skipped=RESULTS.checks("{run}", "expert_rules_skipped.tsv"),
        rules=checks_report(RESULTS.checks("{run}", "expert_rules.tsv"), "expert_rules_table"),
        alignment_figure=checks_report(RESULTS.figure("{run}", "expert_rule_alignment", "png"), "expert_rule_alignment"),
        alignment_figure_pdf=RESULTS.figure("{run}", "expert_rule_alignment", "pdf"),
        probe_figure=checks_report(RESULTS.figure("{run}", "rule_deletion_probe", "png"), "rule_deletion_probe"),
        probe_figure_pdf=RESULTS.figure("{run}", "rule_deletion_probe", "pdf"),
    log:
        RESULTS.log("expert_rules", "{run}"),
    benchmark:
        RESULTS.benchmark("expert_rules", "{run}")
    conda:
        "../envs/torch.yaml"
    threads: EXPLAIN_THREADS
    resources:
        mem_mb=4000,
        runtime=120,
    params:
        explain=CHECKS_EXPLAIN_PARAMS,
        checks=CHECKS_PARAMS,
    script:
        "../workflow_scripts/expert_rules.py"


rule sanity:
    # Cascading model-parameter randomisation (head first): how far each method's explanations move.
    input:
        unpack(checks_delineation),
        unpack(checks_template),
        weights=rules.train.output.weights,
        thresholds=rules.train.output.thresholds,
        predictions=RESULTS.predictions("{run}", "test"),
        data=run_data,
    output:
        records=RESULTS.checks("{run}", "randomisation_records.tsv"),
        summary=checks_report(RESULTS.checks("{run}", "randomisation.tsv"), "randomisation_table"),
        flags=checks_report(RESULTS.checks("{run}", "method_flags.tsv"), "method_flags"),
        figure=checks_report(RESULTS.figure("{run}", "randomisation_cascade", "png"), "randomisation_cascade"),
        figure_pdf=RESULTS.figure("{run}", "randomisation_cascade", "pdf"),
    log:
        RESULTS.log("sanity", "{run}"),
    benchmark:
        RESULTS.benchmark("sanity", "{run}")
    conda:
        "../envs/torch.yaml"
    threads: EXPLAIN_THREADS
    resources:
        mem_mb=4000,
        runtime=120,
    params:
        explain=CHECKS_EXPLAIN_PARAMS,
        checks=CHECKS_PARAMS,
    script:
        "../workflow_scripts/sanity.py"


rule seed_consistency:
    # The same test records explained by the runs of checks.seed_runs (one training seed each).
    input:
        unpack(checks_delineation),
        unpack(lambda wc: checks_template(wc, run=SEED_RUNS[0]) if SEED_RUNS else {}),
        weights=expand(RESULTS.weights("{run}"), run=SEED_RUNS),
        thresholds=expand(RESULTS.thresholds("{run}"), run=SEED_RUNS[:1]),
        predictions=expand(RESULTS.predictions("{run}", "test"), run=SEED_RUNS[:1]),
        data=data_path(config, SEED_RUNS[0]) if SEED_RUNS else DATA,
    output:
        records=RESULTS.seed_consistency("records.tsv"),
        summary=report(
            RESULTS.seed_consistency("summary.tsv"),
            caption="../report/seed_consistency.rst",
            category="Explanation checks",
        ),
    log:
        RESULTS.log("seed_consistency"),
    benchmark:
        RESULTS.benchmark("seed_consistency")
    conda:
        "../envs/torch.yaml"
    threads: max(1, min(4, workflow.cores))
    resources:
        mem_mb=4000,
        runtime=120,
    params:
        runs=SEED_RUNS,
        explain=CHECKS_EXPLAIN_PARAMS,
        checks=CHECKS_PARAMS,
    script:
        "../workflow_scripts/seed_consistency.py"


rule counterfactuals:
    # What would make each checked positive normal: the fewest lead x segments made normal and the smallest
    # ST/T/QRS/PR edit per lead group, scored for the trained model and its randomised control.
    input:
        unpack(checks_delineation),
        unpack(counterfactual_template),
        weights=rules.train.output.weights,
        thresholds=rules.train.output.thresholds,
        predictions=RESULTS.predictions("{run}", "test"),
        data=run_data,
    output:
        records=RESULTS.checks("{run}", "counterfactuals_records.tsv"),
        summary=checks_report(RESULTS.checks("{run}", "counterfactuals.tsv"), "counterfactuals_table"),
        figure=checks_report(RESULTS.figure("{run}", "counterfactual_examples", "png"), "counterfactual_examples"),
        figure_pdf=RESULTS.figure("{run}", "counterfactual_examples", "pdf"),
    log:
        RESULTS.log("counterfactuals", "{run}"),
    benchmark:
        RESULTS.benchmark("counterfactuals", "{run}")
    conda:
        "../envs/torch.yaml"
    threads: EXPLAIN_THREADS
    resources:
        mem_mb=4000,
        runtime=120,
    params:
        settings=COUNTERFACTUAL_PARAMS,
        explain=COUNTERFACTUAL_EXPLAIN_PARAMS,
        delineation_method=config["delineate"]["method"],
    script:
        "../workflow_scripts/counterfactuals.py"


rule counterfactual_answers:
    # The viewer's counterfactuals: the first counterfactuals.viewer_records records the explain stage selected,
    # each label they were explained for that the model calls, searched as rule counterfactuals searches.
    input:
        unpack(checks_delineation),
        unpack(counterfactual_template),
        weights=rules.train.output.weights,
        thresholds=rules.train.output.thresholds,
        predictions=RESULTS.predictions("{run}", "test"),
        data=run_data,
        selection=RESULTS.explain("{run}", "selection.tsv"),
    output:
        answers=RESULTS.checks("{run}", "counterfactual_answers.json"),
    log:
        RESULTS.log("counterfactual_answers", "{run}"),
    benchmark:
        RESULTS.benchmark("counterfactual_answers", "{run}")
    conda:
        "../envs/torch.yaml"
    threads: EXPLAIN_THREADS
    resources:
        mem_mb=2000,
        runtime=30,
    params:
        settings=COUNTERFACTUAL_SEARCH_PARAMS,
        explain=COUNTERFACTUAL_EXPLAIN_PARAMS,
    script:
        "../workflow_scripts/counterfactual_answers.py"
