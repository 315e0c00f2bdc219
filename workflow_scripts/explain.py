"""Rule explain: SHAP, LIME, attention and faithfulness for selected test records of a run."""

import torch

from ecgxai.explain.pipeline import explain_run, space_table
from ecgxai.runlog import logged

with logged(snakemake.log[0]) as log:
    torch.set_num_threads(snakemake.threads)
    cfg = snakemake.params.explain
    expl, selection = explain_run(
        weights=snakemake.input.weights,
        predictions=snakemake.input.predictions,
        thresholds=snakemake.input.thresholds,
        data_dir=snakemake.input.data,
        cfg=cfg,
        beats_dir=snakemake.input.get("beats"),
        template=snakemake.input.get("template"),
    )
    attrs = expl.attributions
    attrs[attrs.method.isin(["shap", "shap_gradient"])].to_parquet(snakemake.output.shap, index=False)
    attrs[attrs.method == "lime"].to_parquet(snakemake.output.lime, index=False)
    attrs[attrs.method == "attention"].to_parquet(snakemake.output.attention, index=False)
    expl.meta.to_csv(snakemake.output.meta, sep="\t", index=False)
    selection.to_csv(snakemake.output.selection, sep="\t", index=False)
    expl.aucs.to_csv(snakemake.output.faithfulness, sep="\t", index=False)
    expl.curves.to_parquet(snakemake.output.curves, index=False)
    spaces = space_table(expl.meta, cfg["features"])
    spaces.to_csv(snakemake.output.spaces, sep="\t", index=False)
    log.info("records per feature space:\n%s", spaces.groupby("feature_space").ecg_id.nunique().to_string())
    shap_meta = expl.meta[expl.meta.method == "shap"]
    log.info(
        "SHAP additivity error: max %.2e, median %.2e (|sum + base - f(x)|, probability units)",
        shap_meta.additivity_error.max(),
        shap_meta.additivity_error.median(),
    )
    log.info(
        "mean faithfulness AUC per feature space, method and curve:\n%s",
        expl.aucs.groupby(["feature_space", "kind", "method"]).auc.mean().unstack(1).to_string(),
    )
