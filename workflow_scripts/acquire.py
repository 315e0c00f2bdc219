"""Rule acquire: download, generate or check PTB-XL; write the manifest."""

from ecgxai.data.acquire import acquire
from ecgxai.outputs import write_json
from ecgxai.runlog import logged

with logged(snakemake.log[0]):
    manifest = acquire(data_cfg=snakemake.params.data, rate=snakemake.params.rate, threads=snakemake.threads)
    write_json(snakemake.output.manifest, manifest)
