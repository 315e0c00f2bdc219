"""Rule normal_template: median P/PR/QRS/ST/T/TP shapes per lead of NORM-only training records."""

from ecgxai.explain.pipeline import build_template_from_data
from ecgxai.runlog import logged

with logged(snakemake.log[0]) as log:
    template = build_template_from_data(
        data_dir=snakemake.input.data, labels_path=snakemake.input.labels, beats_dir=snakemake.input.beats
    )
    template.save(snakemake.output.template)
    log.info(
        "normal template from %d NORM records; median segment durations (samples at %d Hz): %s; occurrences: %s",
        template.n_records,
        template.rate,
        dict(zip(("P", "PR", "QRS", "ST", "T", "TP"), template.durations.round(1).tolist())),
        template.n_occurrences.tolist(),
    )
