"""Beat delineation: R peaks and global P, QRS and T boundaries of every preprocessed record.

Layout under `results/delineation/{rate}hz/`, mirroring the signal parts:
- `fold=K/beats-NNNNN.parquet`: one row per beat, `ecg_id` int64, `beat` int32 (0..n-1 within
  the record), and int32 sample indices `p_on, p_off, qrs_on, r, qrs_off, t_on, t_off` in the
  preprocessed (cropped/padded) signal at its sampling rate; -1 where not found.
- `summary.tsv`: one line per record (`SUMMARY_COLUMNS`); status `failed` with a reason where
  a record could not be delineated (explanations then fall back to time bins).

Boundaries are global across leads, as in the CSE convention: the earliest onset and the
latest offset over the leads. Leads are first delineated one by one with an established
library (neurokit2's wavelet or prominence method, or ecgdeli), all on shared R peaks; a lead
whose boundary lies far from the other leads' median (`AGREE_MS`) is an outlier and does not
set the global boundary, and at least `MIN_LEADS` leads must agree for a boundary to count.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import warnings
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.dataset as pads
import pyarrow.parquet as pq

from ptbxl_xai import __version__
from ptbxl_xai.data.parquet_io import part_files, read_part_mv
from ptbxl_xai.outputs import replace_dir

log = logging.getLogger(__name__)

FIDUCIALS = ("p_on", "p_off", "qrs_on", "r", "qrs_off", "t_on", "t_off")
BEAT_COLUMNS = ("ecg_id", "beat", *FIDUCIALS)
SUMMARY_COLUMNS = (
    "ecg_id",
    "strat_fold",
    "status",
    "reason",
    "n_beats",
    "frac_delineated",
    "heart_rate_bpm",
    "rr_irregularity",
    "qrs_ms",
    "pr_ms",
    "qt_ms",
)
METHODS = ("neurokit_dwt", "neurokit_prominence", "ecgdeli")
META_KEY = b"ecgxai"

# CSE tolerances (2 SD of the referees' spread, ms) for the boundaries; the comparison baseline.
CSE_TOLERANCE_MS = {"p_on": 10.2, "p_off": 12.7, "qrs_on": 6.5, "qrs_off": 11.6, "t_off": 30.6}

# A lead's boundary further than this from the median over leads is an outlier for the global one.
AGREE_MS = {"p_on": 40, "p_off": 40, "qrs_on": 40, "qrs_off": 40, "t_on": 80, "t_off": 80}
MIN_LEADS = 3  # leads that must agree on a boundary
R_VOTE = 0.5  # share of leads whose R detection must agree for a beat to exist
MIN_BEATS = 2
MIN_FRAC_DELINEATED = 0.5
HR_RANGE_BPM = (20.0, 250.0)
_ONSETS = ("p_on", "qrs_on", "t_on")


class DelineationError(ValueError):
    """A record that cannot be delineated; the message is the reason written to the summary."""


# --------------------------------------------------------------------------- one record
def detect_r_peaks(x_mv: np.ndarray, rate: int) -> np.ndarray:
    """R peaks (sample indices) of a 12-lead record, by vote over per-lead neurokit2 detections.

    Each lead's QRS detection (neurokit2 `ecg_peaks`) casts one vote per peak; peaks of different
    leads within 100 ms form one beat if at least `R_VOTE` of the leads agree, placed at the
    median of their positions. Noise detected in a few leads therefore makes no beat.
    """
    import neurokit2 as nk

    leads = x_mv.shape[0]
    found = []
    for j in range(leads):
        if np.ptp(x_mv[j]) < 1e-3:
            continue
        try:
            _, info = nk.ecg_peaks(x_mv[j], sampling_rate=rate, method="neurokit")
        except Exception:  # a lead neurokit2 cannot read is simply no vote
            continue
        found += [(int(p), j) for p in np.asarray(info["ECG_R_Peaks"], dtype=int)]
    if not found:
        return np.empty(0, dtype=int)
    found.sort()
    window, need = int(round(0.1 * rate)), max(1, int(np.ceil(R_VOTE * leads)))
    beats, cluster = [], [found[0]]  # beats: (position, votes)
    for peak in found[1:] + [(10**12, -1)]:
        if peak[0] - cluster[0][0] <= window:
            cluster.append(peak)
            continue
        votes = len({j for _, j in cluster})
        if votes >= need:
            position = int(np.median([p for p, _ in cluster]))
            # one QRS split over two clusters: within the refractory 200 ms, the better-voted one stays
            if beats and position - beats[-1][0] < 0.2 * rate:
                if votes > beats[-1][1]:
                    beats[-1] = (position, votes)
            else:
                beats.append((position, votes))
        cluster = [peak]
    return np.asarray([b for b, _ in beats], dtype=int)


def _neurokit_leads(x_mv: np.ndarray, rate: int, r: np.ndarray, method: str) -> np.ndarray:
    """Per-lead fiducials [leads, beats, 7] (float, NaN where not found) from neurokit2 on shared R peaks."""
    import neurokit2 as nk

    keys = {
        "p_on": "ECG_P_Onsets",
        "p_off": "ECG_P_Offsets",
        "qrs_on": "ECG_R_Onsets",
        "qrs_off": "ECG_R_Offsets",
        "t_on": "ECG_T_Onsets",
        "t_off": "ECG_T_Offsets",
    }
    out = np.full((x_mv.shape[0], len(r), len(FIDUCIALS)), np.nan)
    for j in range(x_mv.shape[0]):
        if np.ptp(x_mv[j]) < 1e-3:
            continue
        try:
            _, waves = nk.ecg_delineate(x_mv[j], rpeaks=r, sampling_rate=rate, method=method)
        except Exception:  # one lead's failure leaves the others to decide
            continue
        for name, key in keys.items():
            values = np.asarray(waves.get(key, []), dtype=float)
            if len(values) == len(r):  # aligned with the R peaks given
                out[j, :, FIDUCIALS.index(name)] = values
    return out


def _ecgdeli_leads(x_mv: np.ndarray, rate: int) -> tuple[np.ndarray, np.ndarray]:
    """(R peaks, per-lead fiducials [leads, beats, 7]) from ecgdeli's multi-lead annotation."""
    import ecgdeli

    with ecgdeli.fidelity("fixed"):  # the documented fixes; the MATLAB-faithful mode crashes at 100 Hz
        ann = ecgdeli.annotate(x_mv.T.astype(np.float64), rate)
    cols = {
        "p_on": ecgdeli.Wave.P_ON,
        "p_off": ecgdeli.Wave.P_OFF,
        "qrs_on": ecgdeli.Wave.QRS_ON,
        "qrs_off": ecgdeli.Wave.QRS_OFF,
        "t_on": ecgdeli.Wave.T_ON,
        "t_off": ecgdeli.Wave.T_OFF,
    }
    r = ann.consensus.r_peak
    r = np.where(ann.consensus.valid[:, ecgdeli.Wave.R_PEAK], r, -1)
    out = np.full((len(ann.leads), len(r), len(FIDUCIALS)), np.nan)
    for j, fpt in enumerate(ann.leads):
        samples = fpt.samples  # float, NaN where missing
        for name, col in cols.items():
            out[j, :, FIDUCIALS.index(name)] = samples[:, int(col)]
    keep = r >= 0
    return r[keep], out[:, keep]


def combine_leads(per_lead: np.ndarray, r: np.ndarray, rate: int, n_samples: int) -> np.ndarray:
    """Global fiducials [beats, 7] int32 from per-lead ones [leads, beats, 7]: earliest onset and
    latest offset over the leads that agree (within `AGREE_MS` of their median), -1 where fewer
    than `MIN_LEADS` leads agree; then impossible orders (P after QRS onset, T before QRS offset,
    offset before onset) are set to -1 rather than kept."""
    beats = per_lead.shape[1]
    out = np.full((beats, len(FIDUCIALS)), -1, dtype=np.int32)
    out[:, FIDUCIALS.index("r")] = r
    for name, tol_ms in AGREE_MS.items():
        k = FIDUCIALS.index(name)
        v = per_lead[:, :, k]  # [leads, beats]
        valid = np.isfinite(v) & (v >= 0) & (v < n_samples)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN beats
            med = np.nanmedian(np.where(valid, v, np.nan), axis=0)
        agree = valid & (np.abs(v - med[None, :]) <= tol_ms * rate / 1000.0)
        enough = agree.sum(axis=0) >= MIN_LEADS
        pick = np.where(agree, v, np.inf if name in _ONSETS else -np.inf)
        g = pick.min(axis=0) if name in _ONSETS else pick.max(axis=0)
        out[:, k] = np.where(enough, np.rint(np.where(enough, g, 0)), -1).astype(np.int32)
    f = {name: out[:, i] for i, name in enumerate(FIDUCIALS)}
    qrs_ok = (f["qrs_on"] >= 0) & (f["qrs_off"] >= 0) & (f["qrs_on"] < f["r"]) & (f["r"] < f["qrs_off"])
    for name in ("qrs_on", "qrs_off"):
        f[name][~qrs_ok] = -1
    for on, off in (("p_on", "p_off"), ("t_on", "t_off")):
        bad = (f[on] >= 0) & (f[off] >= 0) & (f[on] >= f[off])
        f[on][bad] = -1
        f[off][bad] = -1
    for name in ("p_on", "p_off"):  # P ends before the QRS begins (before R where QRS onset is missing)
        limit = np.where(f["qrs_on"] >= 0, f["qrs_on"], f["r"])
        f[name][(f[name] >= 0) & (f[name] > limit)] = -1
    for name in ("t_on", "t_off"):
        limit = np.where(f["qrs_off"] >= 0, f["qrs_off"], f["r"])
        f[name][(f[name] >= 0) & (f[name] < limit)] = -1
    return np.column_stack([f[name] for name in FIDUCIALS]).astype(np.int32)


def delineate_record(x_mv: np.ndarray, rate: int, method: str = "neurokit_prominence") -> np.ndarray:
    """Global fiducials [beats, 7] int32 of one record [leads, samples] in mV (order of `FIDUCIALS`).

    Raises DelineationError with the reason where the record cannot be delineated.
    """
    if method not in METHODS:
        raise ValueError(f"delineation method must be one of {METHODS}, not {method!r}")
    if not np.all(np.isfinite(x_mv)):
        raise DelineationError("non-finite samples")
    if np.all(np.ptp(x_mv, axis=-1) < 1e-3):
        raise DelineationError("flat signal in every lead")
    n_samples = x_mv.shape[-1]
    with warnings.catch_warnings():  # the libraries warn about every odd beat; the summary says what matters
        warnings.simplefilter("ignore")
        if method == "ecgdeli":
            try:
                r, per_lead = _ecgdeli_leads(x_mv, rate)
            except Exception as exc:  # ecgdeli raises deep in its MATLAB port on odd records
                raise DelineationError(f"ecgdeli failed: {type(exc).__name__}: {exc}"[:200]) from None
        else:
            r = detect_r_peaks(x_mv, rate)
            if len(r) < MIN_BEATS:
                raise DelineationError(f"{len(r)} QRS complex(es) found in agreement over the leads")
            per_lead = _neurokit_leads(x_mv, rate, r, method.split("_", 1)[1])
    if len(r) < MIN_BEATS:
        raise DelineationError(f"{len(r)} QRS complex(es) found")
    beats = combine_leads(per_lead, np.asarray(r, dtype=np.int32), rate, n_samples)
    hr = 60.0 * rate / np.median(np.diff(beats[:, FIDUCIALS.index("r")]))
    if not HR_RANGE_BPM[0] <= hr <= HR_RANGE_BPM[1]:
        raise DelineationError(f"heart rate {hr:.0f} bpm outside {HR_RANGE_BPM[0]:.0f}-{HR_RANGE_BPM[1]:.0f}")
    frac = delineated(beats).mean()
    if frac < MIN_FRAC_DELINEATED:
        raise DelineationError(f"only {delineated(beats).sum()} of {len(beats)} beats delineated (QRS on/off, T off)")
    return beats


def delineated(beats: np.ndarray) -> np.ndarray:
    """Boolean [beats]: QRS onset, QRS offset and T offset all found (P is absent in AF by nature)."""
    idx = [FIDUCIALS.index(n) for n in ("qrs_on", "qrs_off", "t_off")]
    return np.all(beats[:, idx] >= 0, axis=1)


def record_summary(beats: np.ndarray, rate: int) -> dict:
    """Beats found, share delineated, heart rate, RR irregularity and median durations of one record.

    rr_irregularity is the coefficient of variation of the RR intervals (std / mean): a few
    percent in sinus rhythm, typically above 10 % in atrial fibrillation.
    """
    f = {name: beats[:, i].astype(float) for i, name in enumerate(FIDUCIALS)}
    for v in f.values():
        v[v < 0] = np.nan
    rr = np.diff(f["r"]) / rate
    ms = 1000.0 / rate
    ok = delineated(beats)

    def median(values):
        values = values[ok & np.isfinite(values)]
        return float(np.median(values)) if len(values) else np.nan

    return {
        "n_beats": len(beats),
        "frac_delineated": float(ok.mean()) if len(beats) else 0.0,
        "heart_rate_bpm": float(60.0 / np.median(rr)) if len(rr) else np.nan,
        "rr_irregularity": float(np.std(rr) / np.mean(rr)) if len(rr) > 1 else np.nan,
        "qrs_ms": median((f["qrs_off"] - f["qrs_on"]) * ms),
        "pr_ms": median((f["qrs_on"] - f["p_on"]) * ms),
        "qt_ms": median((f["t_off"] - f["qrs_on"]) * ms),
    }


# --------------------------------------------------------------------------- parts and folders
def _beats_table(ids: list[int], beats: list[np.ndarray], meta: dict) -> pa.Table:
    n = [len(b) for b in beats]
    stacked = np.concatenate(beats) if beats else np.empty((0, len(FIDUCIALS)), np.int32)
    columns = {
        "ecg_id": pa.array(np.repeat(np.asarray(ids, dtype=np.int64), n), type=pa.int64()),
        "beat": pa.array(np.concatenate([np.arange(k, dtype=np.int32) for k in n]) if n else [], type=pa.int32()),
    }
    for i, name in enumerate(FIDUCIALS):
        columns[name] = pa.array(stacked[:, i].astype(np.int32), type=pa.int32())
    return pa.table(columns).replace_schema_metadata({META_KEY: json.dumps(meta).encode()})


def delineate_part(signals_path: str, out_path: str, method: str) -> list[dict]:
    """Delineate every record of one signals part; write its beats Parquet; return summary rows."""
    x, ids, folds, meta = read_part_mv(signals_path)
    rate = int(meta["sampling_rate"])
    rows, kept_ids, kept_beats = [], [], []
    for xi, ecg_id, fold in zip(x, ids, folds):
        row = {"ecg_id": int(ecg_id), "strat_fold": int(fold), "status": "ok", "reason": ""}
        try:
            beats = delineate_record(xi, rate, method)
        except DelineationError as exc:
            rows.append({**row, "status": "failed", "reason": str(exc), **record_summary(np.empty((0, 7)), rate)})
            continue
        except Exception as exc:  # one bad record never stops the run
            reason = f"{type(exc).__name__}: {exc}"[:200]
            rows.append({**row, "status": "failed", "reason": reason, **record_summary(np.empty((0, 7)), rate)})
            continue
        rows.append({**row, **record_summary(beats, rate)})
        kept_ids.append(int(ecg_id))
        kept_beats.append(beats)
    table = _beats_table(
        kept_ids,
        kept_beats,
        {
            "sampling_rate": rate,
            "method": method,
            "units": f"sample index at {rate} Hz in the preprocessed signal; -1 not found",
            "source": str(signals_path),
            "ecgxai_version": __version__,
        },
    )
    tmp = Path(out_path).with_name(Path(out_path).name + ".tmp")
    pq.write_table(table, tmp, compression="zstd", write_statistics=["ecg_id"])
    tmp.replace(out_path)
    return rows


def delineate(
    data_dir: str | Path,
    out_dir: str | Path,
    *,
    method: str = "neurokit_prominence",
    workers: int = 1,
    progress: bool = True,
) -> pd.DataFrame:
    """Delineate every signals part under `data_dir` into `out_dir` (see the module doc); returns the summary.

    Parts run in a process pool of `workers`, one part in memory per worker; outputs are written
    under a temporary folder that replaces `out_dir` only when every part is done.
    """
    from tqdm import tqdm  # here: the readers below serve the report environment, which has no tqdm

    if method not in METHODS:
        raise ValueError(f"delineation method must be one of {METHODS}, not {method!r}")
    data_dir, out_dir = Path(data_dir), Path(out_dir)
    parts = part_files(data_dir, range(1, 11))
    if not parts:
        raise FileNotFoundError(f"{data_dir}: no signals parts")
    tmp_dir = out_dir.with_name(out_dir.name + f".tmp-{os.getpid()}")
    shutil.rmtree(tmp_dir, ignore_errors=True)
    tasks = []
    for part in parts:
        (tmp_dir / part.parent.name).mkdir(parents=True, exist_ok=True)
        out = tmp_dir / part.parent.name / part.name.replace("signals-", "beats-")
        tasks.append((str(part), str(out), method))
    n_records = sum(pq.read_metadata(p).num_rows for p in parts)
    log.info("delineating %d records in %d parts with %s, %d worker(s)", n_records, len(parts), method, workers)
    rows: list[dict] = []
    bar = tqdm(total=n_records, unit="rec", desc=f"delineate ({method})", disable=not progress, mininterval=5)
    try:
        if workers > 1:
            with ProcessPoolExecutor(max_workers=workers) as pool:
                for fut in [pool.submit(delineate_part, *t) for t in tasks]:  # submission order: same output
                    rows += fut.result()
                    bar.update(len(rows) - bar.n)
        else:
            for t in tasks:
                rows += delineate_part(*t)
                bar.update(len(rows) - bar.n)
        summary = pd.DataFrame(rows, columns=list(SUMMARY_COLUMNS)).sort_values("ecg_id", kind="stable")
        summary.to_csv(tmp_dir / "summary.tsv", sep="\t", index=False, float_format="%.4g")
    except BaseException:
        shutil.rmtree(tmp_dir, ignore_errors=True)
        raise
    finally:
        bar.close()
    replace_dir(tmp_dir, out_dir)
    failed = summary[summary["status"] == "failed"]
    log.info("delineated %d of %d records; %d failed", len(summary) - len(failed), len(summary), len(failed))
    for reason, n in failed["reason"].str.replace(r"\d+", "N", regex=True).value_counts().items():
        log.info("  failed (%d): %s", n, reason)
    return summary


def beat_files(folder: str | Path) -> list[Path]:
    return sorted(Path(folder).glob("fold=*/beats-*.parquet"))


def read_beats(folder: str | Path, ecg_ids=None) -> pd.DataFrame:
    """The beats table (`BEAT_COLUMNS`) of a delineation folder, sorted by ecg_id and beat.

    `ecg_ids` reads only those records (a pyarrow filter: row groups of other records are skipped).
    """
    files = beat_files(folder)
    if not files:
        raise FileNotFoundError(f"{folder}: no beats-*.parquet parts; run the delineate rule")
    dataset = pads.dataset([str(f) for f in files], format="parquet")
    flt = None if ecg_ids is None else pads.field("ecg_id").isin(np.asarray(list(ecg_ids), dtype=np.int64))
    df = dataset.to_table(columns=list(BEAT_COLUMNS), filter=flt).to_pandas()
    return df.sort_values(["ecg_id", "beat"], kind="stable").reset_index(drop=True)


def read_delineation_summary(folder: str | Path) -> pd.DataFrame:
    """The per-record summary (`SUMMARY_COLUMNS`) of a delineation folder."""
    path = Path(folder) / "summary.tsv"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: not found; run the delineate rule")
    df = pd.read_csv(path, sep="\t", keep_default_na=False, na_values=[""], dtype={"reason": str})
    df["reason"] = df["reason"].fillna("")
    return df


# --------------------------------------------------------------------------- ground truth
def match_to_truth(beats: pd.DataFrame, truth: pd.DataFrame, rate: int, max_ms: float = 100.0) -> pd.DataFrame:
    """Pair detected beats with true ones (nearest R within `max_ms`, per record) and give the
    signed errors in ms per fiducial (`err_<name>`, detected minus true; NaN where either is -1).

    `truth` has the columns of `beats` (e.g. the synthetic generator's fiducials.csv at one rate,
    after mapping to the preprocessed signal's coordinates). Unmatched true beats are kept with
    `matched` False, so the detection rate can be read off.
    """
    rows = []
    r = FIDUCIALS.index("r")
    for ecg_id, t in truth.groupby("ecg_id", sort=True):
        tv = t[list(FIDUCIALS)].to_numpy()
        d = beats[beats["ecg_id"] == ecg_id][list(FIDUCIALS)].to_numpy()
        for row in tv:
            out = {"ecg_id": int(ecg_id), "matched": False}
            out.update({f"true_{name}": bool(row[i] >= 0) for i, name in enumerate(FIDUCIALS)})
            if len(d):
                k = int(np.argmin(np.abs(d[:, r] - row[r])))
                if abs(d[k, r] - row[r]) * 1000.0 / rate <= max_ms:
                    out["matched"] = True
                    for i, name in enumerate(FIDUCIALS):
                        ok = d[k, i] >= 0 and row[i] >= 0
                        out[f"err_{name}"] = (d[k, i] - row[i]) * 1000.0 / rate if ok else np.nan
                        out[f"invented_{name}"] = bool(d[k, i] >= 0 and row[i] < 0)
            rows.append(out)
    columns = ["ecg_id", "matched"] + [f"{kind}_{n}" for kind in ("true", "err", "invented") for n in FIDUCIALS]
    return pd.DataFrame(rows, columns=columns)


def error_table(matched: pd.DataFrame) -> pd.DataFrame:
    """Per fiducial: true points, share found, points found where the truth has none (e.g. P in
    AF), signed median, median and 95th percentile of |error| (ms), the CSE 2-SD tolerance."""
    rows = []
    found = matched[matched["matched"]]
    for name in FIDUCIALS:
        e = found[f"err_{name}"].dropna().to_numpy()
        n_true = int(matched[f"true_{name}"].sum())
        rows.append(
            {
                "fiducial": name,
                "true": n_true,
                "found": len(e) / n_true if n_true else np.nan,
                "invented": int(found[f"invented_{name}"].astype(bool).sum()),
                "bias_ms": float(np.median(e)) if len(e) else np.nan,
                "median_abs_ms": float(np.median(np.abs(e))) if len(e) else np.nan,
                "p95_abs_ms": float(np.percentile(np.abs(e), 95)) if len(e) else np.nan,
                "cse_2sd_ms": CSE_TOLERANCE_MS.get(name, np.nan),
            }
        )
    return pd.DataFrame(rows)
