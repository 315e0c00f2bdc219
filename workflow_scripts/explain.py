"""Rule explain: SHAP, LIME, attention and faithfulness for selected test records of a run."""

import torch

from ecgxai.runlog import logged
from ecgxai.stages.explain import explain_run, write_explanations

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
