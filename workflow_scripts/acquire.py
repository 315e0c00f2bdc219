"""Rule acquire: download, generate or check PTB-XL; write the manifest."""

from ptbxl_xai.data.download import DownloadError
from ptbxl_xai.runlog import logged
from ptbxl_xai.stages.data import acquire

with logged(snakemake.log[0], brief=(DownloadError, FileExistsError, FileNotFoundError)):
    # the whole data section (with the download knobs) from the config; params hold its identity
    acquire(**snakemake.output, **snakemake.params, settings=snakemake.config["data"], threads=snakemake.threads)
