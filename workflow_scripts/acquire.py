"""Rule acquire: download, generate or check PTB-XL; write the manifest."""

import json

from ecgxai.data.acquire import acquire
from ecgxai.runlog import logged

with logged(snakemake.log[0]):
    manifest = acquire(snakemake.params.data, snakemake.params.rate, threads=snakemake.threads)
    with open(snakemake.output.manifest, "w") as f:
        json.dump(manifest, f, indent=1)
