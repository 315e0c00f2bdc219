"""Rule planted_data: pairs of synthetic records that differ only by one planted change, with its mask."""

from ptbxl_xai.runlog import logged
from ptbxl_xai.stages.known_answer import planted_data

with logged(snakemake.log[0]):
    planted_data(planted=snakemake.output.planted, **snakemake.params)
