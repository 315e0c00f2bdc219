"""Rule explain: SHAP, LIME, attention and faithfulness for selected test records of a run."""

import torch

from ecgxai.explain.pipeline import explain_run
from ecgxai.runlog import logged

with logged(snakemake.log[0]) as log:
    torch.set_num_threads(snakemake.threads)
    expl, selection = explain_run(
        snakemake.input.weights,
        snakemake.input.predictions,
        snakemake.input.thresholds,
        snakemake.input.data,
        snakemake.params.explain,
    )
    attrs = expl.attributions
    attrs[attrs.method.isin(["shap", "shap_gradient"])].to_parquet(snakemake.output.shap, index=False)
    attrs[attrs.method == "lime"].to_parquet(snakemake.output.lime, index=False)
    attrs[attrs.method == "attention"].to_parquet(snakemake.output.attention, index=False)
    expl.meta.to_csv(snakemake.output.meta, sep="\t", index=False)
    selection.to_csv(snakemake.output.selection, sep="\t", index=False)
    expl.aucs.to_csv(snakemake.output.faithfulness, sep="\t", index=False)
    expl.curves.to_parquet(snakemake.output.curves, index=False)
    shap_meta = expl.meta[expl.meta.method == "shap"]
    log.info(
        "SHAP additivity error: max %.2e, median %.2e (|sum + base - f(x)|, probability units)",
        shap_meta.additivity_error.max(),
        shap_meta.additivity_error.median(),
    )
    log.info(
        "mean faithfulness AUC per method and curve:\n%s",
        expl.aucs.groupby(["kind", "method"]).auc.mean().unstack(0).to_string(),
    )
