"""The stage layer: one function per Snakemake rule that reads its inputs, computes (through the compute packages) and writes its outputs."""
