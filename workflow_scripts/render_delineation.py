"""Rule render_delineation: example records in mV with their delineated P, QRS and T waves."""

from ecgxai.report.render import render_delineation
from ecgxai.runlog import logged

with logged(snakemake.log[0]) as log:
    written = render_delineation(
        data_dir=snakemake.input.signals,
        delineation_dir=snakemake.input.beats,
        out_stem=snakemake.output.png.removesuffix(".png"),
    )
    log.info("wrote %s", ", ".join(written))
