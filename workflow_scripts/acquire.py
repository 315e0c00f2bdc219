"""Rule acquire: download, generate or check PTB-XL; write the manifest."""

import json
import os

from ecgxai.data.acquire import acquire
from ecgxai.data.download import DownloadError
from ecgxai.runlog import logged

with logged(snakemake.log[0], brief=(DownloadError, FileExistsError, FileNotFoundError)):
    # the whole data section (with the download knobs) from the config; params hold its identity
    manifest = acquire(snakemake.config["data"], snakemake.params.rate, threads=snakemake.threads)
    manifest["data"] = snakemake.params.data
    tmp = snakemake.output.manifest + ".tmp"
    with open(tmp, "w") as f:
        json.dump(manifest, f, indent=1)
    os.replace(tmp, snakemake.output.manifest)
