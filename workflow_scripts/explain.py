"""Rule explain: SHAP, LIME, attention and faithfulness for selected test records of a run."""

import torch

from ecgxai.explain.pipeline import explain_run, write_explanations
from ecgxai.runlog import logged

with logged(snakemake.log[0]):
    torch.set_num_threads(snakemake.threads)
    explanations, selection = explain_run(
        weights=snakemake.input.weights,
        predictions=snakemake.input.predictions,
        thresholds=snakemake.input.thresholds,
        data_dir=snakemake.input.data,
        cfg=snakemake.params.explain,
        beats_dir=snakemake.input.get("beats"),
        template=snakemake.input.get("template"),
    )
    write_explanations(explanations, selection, requested=snakemake.params.explain["features"], **snakemake.output)
