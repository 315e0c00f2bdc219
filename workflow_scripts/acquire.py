"""Rule acquire: download, generate or check PTB-XL; write the manifest."""

from ecgxai.data.acquire import acquire
from ecgxai.data.download import DownloadError
from ecgxai.outputs import write_json
from ecgxai.runlog import logged

with logged(snakemake.log[0], brief=(DownloadError, FileExistsError, FileNotFoundError)):
    # the whole data section (with the download knobs) from the config; params hold its identity
    manifest = acquire(data_cfg=snakemake.config["data"], rate=snakemake.params.rate, threads=snakemake.threads)
    manifest["data"] = snakemake.params.data
    write_json(snakemake.output.manifest, manifest)
