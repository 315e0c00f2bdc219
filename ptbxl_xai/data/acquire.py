"""The acquire stage: make a PTB-XL folder available and describe it in a small manifest."""

from __future__ import annotations

import json
import logging
from pathlib import Path

from ptbxl_xai.data.ptbxl import DATABASE_CSV, RATES, STATEMENTS_CSV

log = logging.getLogger(__name__)
MARKER = ".acquired.json"


def _write_json(path: Path, obj: dict) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(obj, indent=1))
    tmp.replace(path)


def check_ptbxl_folder(root: Path, rate: int) -> dict:
    """Check that `root` holds what preprocessing at `rate` Hz needs; return counts.

    Raises FileNotFoundError naming the first missing piece.
    """
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: PTB-XL folder not found")
    for name in (DATABASE_CSV, STATEMENTS_CSV):
        if not (root / name).is_file():
            raise FileNotFoundError(f"{root / name}: missing; {root} is not a complete PTB-XL folder")
    records_dir = root / RATES[rate][0]
    if not records_dir.is_dir():
        raise FileNotFoundError(
            f"{records_dir}: missing; {rate} Hz records are needed (preprocess.sampling_rate={rate})"
        )
    n_headers = sum(1 for _ in records_dir.glob("*/*.hea"))
    if n_headers == 0:
        raise FileNotFoundError(f"{records_dir}: holds no WFDB header (*.hea)")
    return {"root": str(root), "sampling_rate": rate, "headers": n_headers}


def acquire(data_cfg: dict, rate: int, *, threads: int = 1, progress: bool = True) -> dict:
    """Run the configured acquisition and return the manifest (also for `local`, which only checks)."""
    source, root = data_cfg["source"], Path(data_cfg["path"])
    if source == "synthetic":
        from ptbxl_xai.data.synthetic import generate_ptbxl

        marker = root / MARKER
        if root.exists() and any(root.iterdir()):
            try:
                previous = json.loads(marker.read_text()).get("source") if marker.is_file() else None
            except (OSError, ValueError, AttributeError):
                previous = None
            if previous != "synthetic":
                raise FileExistsError(
                    f"{root}: exists and is not a synthetic dataset made by this workflow; "
                    "refusing to overwrite it (choose another data.path)"
                )
        syn = data_cfg.get("synthetic", {})
        log.info("generating %d synthetic records (seed %d) in %s", syn["n_records"], syn["seed"], root)
        root.mkdir(parents=True, exist_ok=True)
        # claimed before the first record: an interrupted generation is ours to redo on a rerun
        _write_json(marker, {"source": "synthetic", **syn, "rates": [rate], "complete": False})
        generate_ptbxl(root, n_records=syn["n_records"], seed=syn["seed"], rates=(rate,))
        _write_json(marker, {"source": "synthetic", **syn, "rates": [rate], "complete": True})
    elif source == "physionet":
        from ptbxl_xai.data.physionet import acquire_physionet

        pn = data_cfg.get("physionet", {})
        acquire_physionet(
            pn["base_url"],
            root,
            rates=(rate,),
            mode=pn["mode"],
            threads=min(threads, pn["connections"]) if threads > 1 else pn["connections"],
            retries=pn["retries"],
            backoff=pn["backoff_s"],
            archive_url=pn["archive_url"],
            archive_sha256=pn["archive_sha256"],
            **{k: pn[k] for k in ("sums_sha256", "max_file_mb", "max_archive_mb") if k in pn},
            progress=progress,
        )
    elif source != "local":
        raise ValueError(f"data.source must be physionet, local or synthetic, not {source!r}")
    manifest = {"source": source, **check_ptbxl_folder(root, rate)}
    log.info("PTB-XL folder ready: %s", manifest)
    return manifest
