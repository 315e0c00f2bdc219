"""Rule explain_backgrounds: the same records explained once per masking background."""

import torch

from ecgxai.explain.backgrounds import background_summary
from ecgxai.explain.pipeline import explain_backgrounds_run
from ecgxai.runlog import logged

with logged(snakemake.log[0]) as log:
    torch.set_num_threads(snakemake.threads)
    per_record = explain_backgrounds_run(
        weights=snakemake.input.weights,
        predictions=snakemake.input.predictions,
        thresholds=snakemake.input.thresholds,
        data_dir=snakemake.input.data,
        cfg=snakemake.params.explain,
        bg_cfg=snakemake.params.backgrounds,
        beats_dir=snakemake.input.get("beats"),
        template=snakemake.input.get("template"),
    )
    per_record.to_parquet(snakemake.output.per_record, index=False)
    log.info("per label, background and method:\n%s", background_summary(per_record).to_string(index=False))
