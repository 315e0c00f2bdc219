"""Rule acquire: download, generate or check PTB-XL; write the manifest."""

from ecgxai.data.download import DownloadError
from ecgxai.runlog import logged
from ecgxai.stages.data import acquire

with logged(snakemake.log[0], brief=(DownloadError, FileExistsError, FileNotFoundError)):
    # the whole data section (with the download knobs) from the config; params hold its identity
    acquire(**snakemake.output, **snakemake.params, settings=snakemake.config["data"], threads=snakemake.threads)
