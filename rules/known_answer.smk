# Explanations with a known right answer (`snakemake known_answer`, not in the default target): pairs of
# synthetic records identical but for one planted change, one model per architecture trained on them, and
# every method's attribution scored against the change's lead x sample mask.
KNOWN_ANSWER = config["known_answer"]
_unknown_variants = sorted(set(KNOWN_ANSWER["architectures"]) - set(config["ablation"]["variants"]))
if _unknown_variants:
    raise WorkflowError(f"config known_answer.architectures names no ablation.variants: {_unknown_variants}")


rule planted_data:
    output:
        planted=RESULTS.known_answer("planted.npz"),
    log:
        RESULTS.log("planted_data"),
    benchmark:
        RESULTS.benchmark("planted_data")
    conda:
        "../envs/torch.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        pairs_per_label=KNOWN_ANSWER["pairs_per_label"],
        seed=KNOWN_ANSWER["seed"],
        rate=FILTERS.rate,
    script:
        "../workflow_scripts/planted_data.py"


rule known_answer_train:
    input:
        planted=rules.planted_data.output.planted,
    output:
        weights=RESULTS.known_answer_model("{architecture}"),
        sidecar=RESULTS.known_answer_model("{architecture}", "model.json"),
        history=RESULTS.known_answer_model("{architecture}", "history.tsv"),
    log:
        RESULTS.log("known_answer_train", "{architecture}"),
    benchmark:
        RESULTS.benchmark("known_answer_train", "{architecture}")
    wildcard_constraints:
        architecture="|".join(re.escape(a) for a in config["ablation"]["variants"]),
    conda:
        "../envs/torch.yaml"
    threads: max(1, min(4, workflow.cores))
    resources:
        mem_mb=4000,
        runtime=60,
    params:
        model=lambda wc: variant_config(config, wc.architecture)["model"],
        train=lambda wc: {
            **{k: v for k, v in variant_config(config, wc.architecture)["train"].items() if k != "label_set"},
            **KNOWN_ANSWER["train"],
        },
    script:
        "../workflow_scripts/known_answer_train.py"


rule known_answer:
    input:
        planted=rules.planted_data.output.planted,
        weights=expand(RESULTS.known_answer_model("{architecture}"), architecture=KNOWN_ANSWER["architectures"]),
    output:
        per_record=RESULTS.known_answer("localisation_per_record.parquet"),
        localisation_table=report(
            RESULTS.known_answer("localisation.tsv"),
            caption="../report/known_answer_localisation.rst",
            category="Known answer",
        ),
        accuracy=RESULTS.known_answer("accuracy.tsv"),
        delineation=RESULTS.known_answer("delineation.tsv"),
        figure=report(
            RESULTS.figure(None, "known_answer_localisation"),
            caption="../report/known_answer_localisation.rst",
            category="Known answer",
        ),
        figure_pdf=RESULTS.figure(None, "known_answer_localisation", "pdf"),
    log:
        RESULTS.log("known_answer"),
    benchmark:
        RESULTS.benchmark("known_answer")
    conda:
        "../envs/torch.yaml"
    threads: max(1, min(4, workflow.cores))
    resources:
        mem_mb=4000,
        runtime=60,
    params:
        architectures=KNOWN_ANSWER["architectures"],
        cfg={
            **{k: v for k, v in KNOWN_ANSWER.items() if k not in ("pairs_per_label", "architectures", "train")},
            "shap": config["explain"]["shap"],
            "lime": config["explain"]["lime"],
            "blur_sigma_s": config["explain"]["blur_sigma_s"],
            "n_bins": FILTERS.n_bins,
        },
        delineation_method=config["delineate"]["method"],
    script:
        "../workflow_scripts/known_answer.py"
