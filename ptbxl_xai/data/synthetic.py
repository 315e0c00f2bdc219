"""Seeded generator of a small PTB-XL-shaped data set for tests and the quick demo.

``generate_ptbxl(out_dir)`` writes ``ptbxl_database.csv`` (the 28 real columns, real value
formats), ``scp_statements.csv`` (the real statement table) and 12-lead WFDB records laid out
exactly like PTB-XL v1.0.3 (``records100/00000/00001_lr`` ...), so every downstream step can
run on it unchanged and in seconds.  Beside them, ``fiducials.csv`` holds the true P, QRS and
T boundaries and R peak of every generated beat (the ground truth of delineation).

Morphology model
----------------
The heart is a moving electrical dipole (a vectorcardiogram, VCG) in body coordinates
x = left, y = inferior, z = anterior.  Each beat is a sum of Gaussian waves (P, septal Q, R,
terminal S, optional R' / notch, an ST "injury current" and T), every wave carrying a 3-D
vector, so the dipole is

    d(t) = sum_beats sum_waves  v_wave * m_beat * exp(-(t - t_beat - dt_wave)^2 / (2 sigma_wave^2)).

Leads are projections of d(t): lead I = x and lead II = 0.5 x + 0.866 y (the Einthoven
triangle, so the frontal QRS axis is the angle of the R vector), V1-V6 use the rows of
Dower's inverse transform (VCG -> precordial leads).  III, aVR, aVL and aVF are then derived
from I and II with the Einthoven/Goldberger relations (III = II - I, aVR = -(I + II) / 2,
aVL = I - II / 2, aVF = II - I / 2), after noise has been added to I and II, exactly as a
real recorder derives them from the same electrodes.

Pathology changes the wave vectors, timings and the rhythm, following textbook criteria:

* NORM/SR: 60-90 bpm, PR 120-200 ms, QRS ~90 ms, axis -10..+90 deg, concordant T.
* IMI/AMI (MI): a wide pathological Q vector pointing away from the infarcted wall, loss of R
  towards it, an ST vector pointing into it (ST elevation in II/III/aVF resp. V1-V4 with
  reciprocal depression) and inverted T in the territory.
* ISC_/NDT (STTC): ST vector opposite the QRS (ST depression in I, II, V4-V6) with flat T,
  resp. flat or inverted T only.
* CLBBB/CRBBB/1AVB (CD): QRS ~140 ms; LBBB = reversed septal vector, broad notched R in I,
  aVL, V5, V6, QS in V1-V3 and discordant ST-T; RBBB = late rightward-anterior R' (rSR' in
  V1, wide S in I and V6); 1AVB = PR 220-320 ms.
* LVH (HYP): 1.8-2.5x QRS voltage pointing left-posterior (tall R in V5/V6, deep S in V1/V2,
  Sokolow-Lyon > 3.5 mV), left axis.
* AFIB: no P wave, irregular RR (log-normal, CV 15-30 %), 4-9 Hz fibrillatory atrial
  dipole; SBRAD < 55 bpm, STACH > 105 bpm.
* Form codes: LVOLT scales the QRS to ~40 %, ABQRS adds a narrow fragmenting notch.

The noise columns of the database describe the noise actually added (strong baseline
wander -> ``baseline_drift``, strong hum/white noise -> ``static_noise``, a muscle burst ->
``burst_noise``); ``electrodes_problems``, ``extra_beats`` and ``pacemaker`` stay empty.

Every record draws its own rate, intervals, wave amplitudes/widths, axis and noise (baseline
wander from several slow sinusoids, 50 Hz powerline hum, white noise), and sinus rhythms get
respiratory heart-rate variability, so classes overlap partly but remain learnable.  Records
of one patient share the patient's axis, voltage and electrode gains.  The 500 Hz signal is
synthesised and the 100 Hz record is its FIR-decimated copy, like PTB-XL's own ``_lr``
files.  Label frequencies are imbalanced like PTB-XL (NORM largest), patients never span two
``strat_fold`` values, and everything derives from one ``numpy`` seed (per-record generators
are spawned from it), so a seed gives byte-identical files.
"""

from __future__ import annotations

import shutil
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.signal import firwin, resample_poly

from ptbxl_xai.data.ptbxl import (
    DATABASE_COLUMNS,
    DATABASE_CSV,
    LEADS,
    RATES,
    SECONDS,
    STATEMENTS_CSV,
    bundled_statements,
    record_path,
)

__all__ = ["FIDUCIALS", "FIDUCIALS_CSV", "PROFILES", "fiducial_samples", "generate_ptbxl", "main"]

FS_BASE = 500  # synthesis rate; 100 Hz records are decimated from it
# The true fiducial points of every generated beat, beside ptbxl_database.csv: one row per
# (ecg_id, rate, beat), sample indices in the raw 10 s record at that rate, -1 where absent.
FIDUCIALS_CSV = "fiducials.csv"
FIDUCIALS = ("p_on", "p_off", "qrs_on", "r", "qrs_off", "t_on", "t_off")
N_FOLDS = 10

# Label combinations and their relative frequency (counts per 240 records).  NORM is the
# largest class as in PTB-XL; every statement appears >= 5 times in the default 240.
# Order inside a combination follows PTB-XL: diagnostic, then form, then rhythm.
PROFILES: tuple[tuple[tuple[str, ...], int], ...] = (
    (("NORM", "SR"), 74),
    (("NORM", "LVOLT", "SR"), 8),
    (("NORM", "SBRAD"), 14),
    (("NORM", "STACH"), 8),
    (("IMI", "ABQRS", "SR"), 10),
    (("IMI", "SR"), 8),
    (("IMI", "1AVB", "SR"), 5),
    (("AMI", "SR"), 10),
    (("AMI", "STACH"), 5),
    (("ISC_", "SR"), 10),
    (("ISC_", "STACH"), 5),
    (("NDT", "SR"), 8),
    (("NDT", "SBRAD"), 5),
    (("CLBBB", "SR"), 9),
    (("CRBBB", "SR"), 9),
    (("1AVB", "SR"), 8),
    (("1AVB", "SBRAD"), 5),
    (("LVH", "SR"), 10),
    (("LVH", "ISC_", "SR"), 8),
    (("NDT", "AFIB"), 6),
    (("LVH", "AFIB"), 5),
    (("ISC_", "AFIB"), 5),
    (("AFIB",), 5),  # PTB-XL has records without any diagnostic statement, too
)
_FORM = {"LVOLT", "ABQRS"}
_RHYTHM = {"SR", "AFIB", "SBRAD", "STACH"}
_MI = {"IMI", "AMI"}

DEVICES = ("CS-12   E", "AT-6 C 5.5", "AT-6 C", "AT-6     6", "AT-6 C 5.8", "CS-12", "AT-6 C 5.0")
_DEVICE_P = np.array([293, 265, 101, 101, 58, 53, 12], float)

# Report phrases (PTB-XL reports are mostly German, some English).
_DE = {
    "SR": "sinusrhythmus",
    "SBRAD": "sinusbradykardie",
    "STACH": "sinustachykardie",
    "AFIB": "vorhofflimmern",
    "IMI": "inferiorer infarkt",
    "AMI": "anteriorer infarkt",
    "ISC_": "st-senkung, ischaemie moeglich",
    "NDT": "unspezifische t-veraenderungen",
    "CLBBB": "kompletter linksschenkelblock",
    "CRBBB": "kompletter rechtsschenkelblock",
    "1AVB": "av-block i. grades",
    "LVH": "linksventrikulaere hypertrophie",
    "LVOLT": "periphere niederspannung",
    "ABQRS": "qrs-veraenderungen",
}
_EN = {
    "SR": "sinus rhythm.",
    "SBRAD": "sinus bradycardia.",
    "STACH": "sinus tachycardia.",
    "AFIB": "atrial fibrillation.",
    "IMI": "inferior infarction.",
    "AMI": "anterior infarction.",
    "ISC_": "st depression, possible ischaemia.",
    "NDT": "non-specific t wave changes.",
    "CLBBB": "complete left bundle branch block.",
    "CRBBB": "complete right bundle branch block.",
    "1AVB": "first degree av block.",
    "LVH": "left ventricular hypertrophy.",
    "LVOLT": "low limb lead voltage.",
    "ABQRS": "abnormal qrs.",
}

# Lead projections of the dipole (x left, y inferior, z anterior).  Limb leads: ideal
# Einthoven projections; precordial: Dower's inverse matrix (Frank z sign flipped to anterior).
_LIMB = np.array([[1.0, 0.0, 0.0], [0.5, np.sqrt(3) / 2, 0.0]])
_PRECORDIAL = np.array(
    [
        [-0.515, 0.157, 0.917],
        [0.044, 0.164, 1.387],
        [0.882, 0.098, 1.277],
        [1.213, 0.127, 0.601],
        [1.125, 0.127, 0.086],
        [0.831, 0.076, -0.230],
    ]
)
_INDEPENDENT = ("I", "II", "V1", "V2", "V3", "V4", "V5", "V6")  # the 8 recorded leads

# Anti-aliasing filter for 500 -> 100 Hz: pass band to 40 Hz, rejects the 50 Hz hum.
_AA_FIR = firwin(201, 40.0, fs=FS_BASE)

_START = datetime(1984, 11, 9, 8, 0, 0)
_SPAN_S = int((datetime(2001, 6, 30, 18, 0, 0) - _START).total_seconds())


def _unit(v: np.ndarray) -> np.ndarray:
    return v / (np.linalg.norm(v) + 1e-12)


def _polar(mag: float, deg: float, z: float) -> np.ndarray:
    """Dipole vector with frontal magnitude/angle (0 deg = left, +90 = inferior) and z."""
    a = np.deg2rad(deg)
    return np.array([mag * np.cos(a), mag * np.sin(a), z])


# --------------------------------------------------------------------------- labels/metadata
def _allocate_profiles(n: int, rng: np.random.Generator) -> np.ndarray:
    """Exact quota per profile (largest remainder), shuffled over records."""
    w = np.array([p[1] for p in PROFILES], float)
    raw = w / w.sum() * n
    counts = np.floor(raw).astype(int)
    order = np.argsort(-(raw - counts), kind="stable")
    counts[order[: n - counts.sum()]] += 1
    labels = np.repeat(np.arange(len(PROFILES)), counts)
    return rng.permutation(labels)


def _allocate_patients(n: int, rng: np.random.Generator, lo: int, hi: int) -> np.ndarray:
    """Patient index per record (ecg_id order); each patient gets lo..hi records."""
    sizes_possible = np.arange(lo, hi + 1)
    p = 0.5 ** (sizes_possible - lo)  # most patients have one record, as in PTB-XL
    sizes: list[int] = []
    while sum(sizes) < n:
        sizes.append(int(rng.choice(sizes_possible, p=p / p.sum())))
    sizes[-1] -= sum(sizes) - n  # the last patient keeps what is left (>= 1)
    while sizes[-1] < lo:  # give a too-small remainder to patients with room
        room = [i for i in range(len(sizes) - 1) if sizes[i] < hi]
        if not room:
            break
        sizes[room[0]] += 1
        sizes[-1] -= 1
        if sizes[-1] == 0:
            sizes.pop()
            break
    slots = np.repeat(np.arange(len(sizes)), sizes)
    perm = rng.permutation(slots)
    # renumber patients by first appearance so patient order follows time
    _, first = np.unique(perm, return_index=True)
    rank = np.empty(len(sizes), int)
    rank[np.argsort(first)] = np.arange(len(sizes))
    return rank[perm]


def _assign_folds(patient: np.ndarray, profile: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Patient-disjoint, size-balanced, label-stratified folds 1..10 per record."""
    n_pat = patient.max() + 1
    recs = [np.flatnonzero(patient == p) for p in range(n_pat)]
    freq = np.bincount(profile, minlength=len(PROFILES))
    rarity = np.array([freq[profile[r]].min() for r in recs])
    # rare labels first so they spread over the folds; random tie-break
    order = np.lexsort((rng.random(n_pat), rarity))
    size = np.zeros(N_FOLDS, int)
    prof = np.zeros((N_FOLDS, len(PROFILES)), int)
    fold_of = np.empty(len(patient), int)
    for p in order:
        r = recs[p]
        cand = np.flatnonzero(size <= size.min() + 1)  # keeps folds within a few records
        score = prof[cand][:, profile[r]].sum(axis=1) * 100 + size[cand]
        best = cand[score == score.min()]
        f = int(best[rng.integers(len(best))])
        fold_of[r] = f + 1
        size[f] += len(r)
        np.add.at(prof[f], profile[r], 1)
    return fold_of


def _likelihood(code: str, rng: np.random.Generator) -> float:
    if code in _RHYTHM or code in _FORM:
        return 0.0  # PTB-XL stores rhythm and form statements with likelihood 0
    if code == "NORM":
        return float(rng.choice([100.0, 80.0], p=[0.85, 0.15]))
    return float(rng.choice([100.0, 80.0, 50.0, 35.0, 15.0], p=[0.66, 0.1, 0.12, 0.07, 0.05]))


def _report(codes: tuple[str, ...], english: bool) -> str:
    rhythm = [c for c in codes if c in _RHYTHM]
    other = [c for c in codes if c not in _RHYTHM and c != "NORM"]
    table = _EN if english else _DE
    words = [table[c] for c in rhythm + other]
    if "NORM" in codes:
        if english:
            words.append(("otherwise " if other else "") + "normal ecg.")
        else:
            words.append(("sonst " if other else "") + "normales ekg")
    return " ".join(words)


def _axis_label(deg: float) -> str:
    if deg < -30:
        return "ALAD"
    if deg < 0:
        return "LAD"
    if deg <= 90:
        return "MID"
    return "RAD" if deg <= 120 else "ARAD"


# --------------------------------------------------------------------------- signal synthesis
def _beat_times(rhythm: str, hr: float, rng: np.random.Generator) -> np.ndarray:
    """R-peak times (s), starting before 0 so the first beat may be cut like a real record."""
    rr0 = 60.0 / hr
    n = int(np.ceil((SECONDS + 1.0) / 0.3)) + 2  # enough beats for the fastest rhythm
    if rhythm == "AFIB":
        # irregularly irregular: independent log-normal RR intervals
        rr = rr0 * np.exp(rng.normal(0.0, rng.uniform(0.15, 0.3), n))
        rr = np.clip(rr, 0.3, 2.0)
    else:
        # respiratory sinus arrhythmia + small random jitter (HRV of a few percent)
        k = np.arange(n)
        resp = rng.uniform(0.01, 0.04) * np.sin(
            2 * np.pi * rng.uniform(0.15, 0.3) * k * rr0 + rng.uniform(0, 2 * np.pi)
        )
        rr = rr0 * (1.0 + resp + rng.normal(0.0, 0.008, n))
    r = -rng.uniform(0.0, rr0) + np.concatenate([[0.0], np.cumsum(rr[:-1])])
    return r[r < SECONDS + 0.5]


def _record_waves(codes: set[str], pat: dict, rng: np.random.Generator):
    """Wave table {name: [offset s, sigma s, 3-D vector mV, stretches with RR]} and QRS axis."""
    u = rng.uniform
    sev = {c: u(0.7, 1.3) for c in sorted(codes)}  # sorted: set order varies with PYTHONHASHSEED

    axis = pat["axis"] + rng.normal(0.0, 6.0)
    mag = pat["qrs_mag"] * np.exp(rng.normal(0.0, 0.1))
    w = u(0.9, 1.1)  # QRS width factor
    qrs_on = -0.04 * w
    pr = u(0.12, 0.20)
    waves = {
        # name: [offset, sigma, vector, scales_with_rr]
        "P": [0.0, u(0.018, 0.025), _polar(u(0.1, 0.2), u(40, 70), u(-0.03, 0.05)), False],
        "Q": [-0.025 * w, 0.009 * w, np.array([-0.15, 0.05, 0.2]) * u(0.6, 1.3), False],
        "R": [0.0, 0.012 * w, _polar(mag, axis, -0.3 * mag * u(0.7, 1.3)), False],
        "S": [0.025 * w, 0.010 * w, np.array([-0.2, -0.15, -0.35]) * u(0.6, 1.3), False],
        "ST": [0.45, 0.05, np.zeros(3), True],  # offset = fraction of the T offset
        "T": [u(0.26, 0.31), u(0.04, 0.05), _polar(u(0.25, 0.4), axis - u(0, 25), u(0.1, 0.25)) * pat["t_scale"], True],
    }
    R = waves["R"]

    if "LVH" in codes:
        # large leftward-posterior QRS (tall R V5/V6, deep S V1/V2), left axis, slightly wide
        axis = u(-30, 15)
        m = mag * u(1.8, 2.5) * sev["LVH"] ** 0.5
        R[2] = _polar(m, axis, -0.5 * m)
        waves["S"][2] = waves["S"][2] * 1.8
        for k in ("Q", "R", "S"):
            waves[k][1] *= 1.15
        waves["T"][2] = waves["T"][2] * u(0.5, 0.9)
    if "CLBBB" in codes:
        # septum activated left->right: no septal q in I/V6; slow broad notched R to the left
        # and back; QS in V1-V3; repolarisation discordant to the QRS
        axis = u(-30, 40)
        m = mag * u(0.7, 1.0)
        waves["Q"][2] = np.array([0.15, 0.0, -0.1])
        R[:2] = [-0.015, 0.02]
        R[2] = _polar(0.6 * m, axis, -0.8 * m)
        waves["R2"] = [0.035, 0.02, _polar(0.65 * m, axis + u(-10, 10), -0.7 * m), False]
        waves["S"][2] = np.zeros(3)
        qrs_dir = _unit(R[2] + waves["R2"][2])
        waves["ST"][2] = -u(0.08, 0.15) * qrs_dir
        waves["T"][2] = -u(0.3, 0.5) * qrs_dir
        waves["T"][0] += 0.04
        qrs_on = -0.06
    if "CRBBB" in codes:
        # late right-anterior activation of the RV: R' in V1, wide terminal S in I/V6
        waves["R2"] = [0.055, 0.018, np.array([-0.45, 0.0, 0.5]) * u(0.7, 1.4) * sev["CRBBB"], False]
        waves["T"][2] = waves["T"][2] + np.array([0.0, 0.0, -0.25])
        waves["T"][0] += 0.03
    if "IMI" in codes:
        s = sev["IMI"]
        waves["QMI"] = [-0.022, 0.016, np.array([0.05, -0.55, 0.0]) * s, False]
        R[2] = R[2] * np.array([1.0, 1.0 - 0.35 * min(s, 1.0), 1.0])
        waves["ST"][2] = waves["ST"][2] + np.array([-0.03, 0.15, 0.0]) * s
        waves["T"][2] = waves["T"][2] + np.array([0.0, -0.35, 0.0]) * s
    if "AMI" in codes:
        s = sev["AMI"]
        waves["QMI"] = [-0.022, 0.016, np.array([0.1, 0.0, -0.6]) * s, False]
        R[2] = R[2] + np.array([0.0, 0.0, -0.25]) * s
        waves["ST"][2] = waves["ST"][2] + np.array([0.05, 0.0, 0.2]) * s
        waves["T"][2] = waves["T"][2] + np.array([0.0, 0.0, -0.45]) * s
    if "ISC_" in codes:
        # subendocardial ischaemia: ST vector opposite the QRS -> depression I, II, V4-V6
        waves["ST"][2] = waves["ST"][2] - u(0.08, 0.18) * sev["ISC_"] * _unit(R[2])
        waves["T"][2] = waves["T"][2] * u(-0.4, 0.5)
    if "NDT" in codes:
        waves["T"][2] = waves["T"][2] * u(-0.6, 0.2)
    if "LVOLT" in codes:
        for k in ("Q", "R", "S", "R2", "QMI"):
            if k in waves:
                waves[k][2] = waves[k][2] * u(0.3, 0.45)
    if "ABQRS" in codes:
        # fragmented QRS: a narrow extra deflection inside the complex
        d = _unit(rng.normal(size=3))
        waves["N"] = [u(0.0, 0.03), 0.005, d * u(0.2, 0.35), False]
    if "1AVB" in codes:
        pr = u(0.22, 0.32)
    waves["P"][0] = qrs_on - pr + 2.5 * waves["P"][1]

    qrs_vec = sum(waves[k][2] * waves[k][1] for k in ("Q", "R", "S", "R2", "QMI", "N") if k in waves)
    axis_deg = float(np.rad2deg(np.arctan2(qrs_vec[1], qrs_vec[0])))
    return waves, axis_deg


def _synthesize(codes: set[str], pat: dict, rng: np.random.Generator) -> tuple[np.ndarray, dict]:
    """One 10 s record at 500 Hz: the 8 recorded leads I, II, V1-V6 (shape (5000, 8), mV)."""
    u = rng.uniform
    rhythm = next(c for c in ("AFIB", "SBRAD", "STACH", "SR") if c in codes)
    hr = {
        "SR": u(60, 90) if "NORM" in codes else u(60, 95),
        "SBRAD": u(40, 54),
        "STACH": u(106, 140),
        "AFIB": u(65, 125),
    }[rhythm]
    waves, axis_deg = _record_waves(codes, pat, rng)
    if rhythm == "AFIB":
        del waves["P"]
    r = _beat_times(rhythm, hr, rng)
    rr = np.diff(np.concatenate([r, [r[-1] + 60.0 / hr]]))

    names = list(waves)
    off = np.array([waves[k][0] for k in names])
    sig = np.array([waves[k][1] for k in names])
    vec = np.array([waves[k][2] for k in names])  # (W, 3)
    scal = np.array([waves[k][3] for k in names])
    if "ST" in waves:  # ST sits between the S wave and the T peak
        off[names.index("ST")] = waves["ST"][0] * waves["T"][0]
    # Bazett-like QT: ST/T offsets stretch with sqrt(RR) of the preceding interval
    stretch = np.where(scal[None, :], np.sqrt(np.clip(rr, 0.3, 2.0))[:, None], 1.0)
    centers = r[:, None] + off[None, :] * stretch  # (K, W)
    # respiration modulates the QRS/T amplitude by a few percent
    mod = 1.0 + u(0.02, 0.08) * np.sin(2 * np.pi * u(0.15, 0.3) * r + u(0, 2 * np.pi))
    amps = mod[:, None, None] * vec[None, :, :]  # (K, W, 3)

    n_t = FS_BASE * SECONDS
    t = np.arange(n_t) / FS_BASE
    dipole = np.zeros((3, n_t))
    for w in range(len(names)):
        # evaluate each Gaussian only within +-5 sigma of its centre (K beats at once)
        half = int(np.ceil(5 * sig[w] * FS_BASE))
        idx = np.rint(centers[:, w] * FS_BASE).astype(int)[:, None] + np.arange(-half, half + 1)
        inside = (idx >= 0) & (idx < n_t)
        g = np.exp(-0.5 * ((idx / FS_BASE - centers[:, w : w + 1]) / sig[w]) ** 2) * inside
        idx = np.clip(idx, 0, n_t - 1).ravel()
        for axis_ in range(3):
            if amps[0, w, axis_] != 0.0:
                dipole[axis_] += np.bincount(idx, (g * amps[:, w, axis_ : axis_ + 1]).ravel(), minlength=n_t)

    if rhythm == "AFIB":
        # fibrillatory waves: atrial dipole at 4-9 Hz with slowly wandering frequency
        f = u(4.5, 8.0) + 0.6 * np.sin(2 * np.pi * u(0.05, 0.2) * t + u(0, 2 * np.pi))
        ph = 2 * np.pi * np.cumsum(f) / FS_BASE
        fw = np.sin(ph) + 0.35 * np.sin(2 * ph + u(0, 2 * np.pi))
        fw *= u(0.03, 0.09) * (1 + 0.4 * np.sin(2 * np.pi * u(0.1, 0.4) * t))
        dipole += np.outer(_unit(np.array([-0.2, 0.6, 0.8])), fw)

    proj = np.vstack([_LIMB, _PRECORDIAL * pat["v_gain"][:, None]])  # (8, 3)
    x8 = (proj @ dipole).T  # (T, 8) leads I, II, V1..V6

    # noise on the 8 recorded leads: baseline wander, 50 Hz hum, white noise
    n8 = x8.shape[1]
    bw_level = 0.04 * np.exp(rng.normal(0.0, 0.7))
    bw_amp = np.clip(bw_level * np.exp(rng.normal(0.0, 0.4, n8)), 0.0, 0.6)
    f_bw = u(0.05, 0.45, (2, n8))
    ph_bw = u(0, 2 * np.pi, (2, n8))
    wander = (
        (
            np.sin(2 * np.pi * f_bw[0] * t[:, None] + ph_bw[0])
            + 0.5 * np.sin(2 * np.pi * f_bw[1] * t[:, None] + ph_bw[1])
        )
        * bw_amp
        / 1.5
    )
    hum_amp = u(0.0, 0.02) if rng.random() > 0.1 else u(0.03, 0.08)
    hum = hum_amp * u(0.3, 1.0, n8) * np.sin(2 * np.pi * 50.0 * t[:, None] + u(0, 2 * np.pi) + u(-0.3, 0.3, n8))
    white_sd = 0.006 * np.exp(rng.normal(0.0, 0.5)) * np.exp(rng.normal(0.0, 0.2, n8))
    x8 = x8 + wander + hum + rng.normal(size=x8.shape) * white_sd
    burst = None
    if rng.random() < 0.06:  # a short muscle-artefact burst in one electrode
        k = int(rng.integers(n8))
        a = int(rng.integers(0, n_t - FS_BASE))
        b = a + int(u(0.3, 1.0) * FS_BASE)
        x8[a:b, k] += rng.normal(size=b - a) * u(0.05, 0.15) * np.hanning(b - a)
        burst = _INDEPENDENT[k]

    facts = {
        "fiducials": _true_fiducials(names, centers, sig, amps, proj, n_t),
        "axis": axis_deg,
        "drift_leads": [_INDEPENDENT[k] for k in np.flatnonzero(bw_amp > 0.2)],
        "noisy": bool(white_sd.mean() > 0.012 or hum_amp > 0.03),
        "burst": burst,
    }
    return x8, facts


# Wave groups whose boundaries are the ground truth of delineation (the ST "injury current" is
# a slow shift of the ST segment, not a wave with a boundary of its own).
_QRS_WAVES = ("Q", "R", "S", "R2", "QMI", "N")
_GROUP_EDGE = 0.05  # a group starts/ends where its largest lead deflection is 5 % of its peak


def _true_fiducials(names, centers, sig, amps, proj8, n_t) -> np.ndarray:
    """Per beat (K, 7) times in s of p_on, p_off, qrs_on, r, qrs_off, t_on, t_off (NaN: no P).

    Each wave group (P; QRS = Q, R, S, R', pathological Q, notch; T) is evaluated alone and
    noise-free in the 12 leads; its onset/offset is where the largest deflection over the leads
    first/last reaches 5 % of the group's peak (2.45 sigma for a single Gaussian, the generator's
    own PR convention of 2.5 sigma), so global boundaries follow the CSE convention: the earliest
    onset and latest offset over leads. r is the time of the QRS group's largest deflection.
    Times are in the coordinates of the raw 10 s record (t = 0 at its first sample).
    """
    proj12 = _twelve_leads(proj8.T).T  # (12, 3): the dipole -> 12-lead projection
    out = np.full((len(centers), 7), np.nan)
    step = 1.0 / FS_BASE
    groups = {"P": ["P"], "QRS": [n for n in _QRS_WAVES if n in names], "T": ["T"]}
    for group, members in groups.items():
        if not all(m in names for m in members) or not members:
            continue
        cols = [names.index(m) for m in members]
        for k in range(len(centers)):
            c, s = centers[k, cols], sig[cols]
            t = np.arange(np.min(c - 6 * s), np.max(c + 6 * s), step / 5)  # 0.4 ms grid
            g = np.exp(-0.5 * ((t[None, :] - c[:, None]) / s[:, None]) ** 2)  # (W, t)
            env = np.abs(proj12 @ (amps[k, cols].T @ g)).max(axis=0)  # largest lead deflection
            above = np.flatnonzero(env >= _GROUP_EDGE * env.max())
            on, off = t[above[0]], t[above[-1]]
            if group == "P":
                out[k, 0:2] = on, off
            elif group == "QRS":
                out[k, 2:5] = on, t[np.argmax(env)], off
            else:
                out[k, 5:7] = on, off
    return out


def fiducial_samples(times: np.ndarray, rate: int, n_samples: int) -> np.ndarray:
    """Fiducial times (s) -> int32 sample indices at `rate`; -1 where absent or outside the record."""
    t = np.nan_to_num(times, nan=-1.0)
    inside = (t >= 0) & (t < n_samples / rate)  # by time, so both rates keep the same beats
    return np.where(inside, np.minimum(np.rint(t * rate), n_samples - 1), -1).astype(np.int32)


def _decimate(x8: np.ndarray, rate: int) -> np.ndarray:
    if rate == FS_BASE:
        return x8
    return resample_poly(x8, 1, FS_BASE // rate, axis=0, window=_AA_FIR, padtype="line")


def _twelve_leads(x8: np.ndarray) -> np.ndarray:
    """I, II, V1-V6 -> the 12 standard leads (Einthoven/Goldberger, order of LEADS)."""
    i, ii, v = x8[:, 0], x8[:, 1], x8[:, 2:]
    return np.column_stack([i, ii, ii - i, -(i + ii) / 2, i - ii / 2, ii - i / 2, v])


def _write_record(root: Path, ecg_id: int, rate: int, x: np.ndarray) -> None:
    """Write one record as ``wfdb.wrsamp(..., fmt='16', adc_gain=1000, baseline=0)`` would.

    wfdb's writer spends ~30 ms per record in pandas bookkeeping (most of the generation
    time), so the header and the little-endian int16 .dat are written here directly; the
    bytes are identical to wfdb's (tests/test_synthetic.py checks this against wrsamp).
    """
    rel = Path(record_path(ecg_id, rate))
    folder = root / rel.parent
    folder.mkdir(parents=True, exist_ok=True)
    # quantise to 1 uV steps (adc_gain 1000/mV) ourselves, so bytes never depend on rounding
    d = np.clip(np.round(x * 1000.0), -32767, 32767).astype(np.int64)
    name = rel.name
    checksum = d.sum(axis=0) % 65536  # WFDB header checksum: sum of samples mod 2**16
    lines = [f"{name} {len(LEADS)} {rate} {d.shape[0]}"]
    lines += [f"{name}.dat 16 1000.0(0)/mV 16 0 {d[0, j]} {checksum[j]} 0 {lead}" for j, lead in enumerate(LEADS)]
    (folder / f"{name}.hea").write_text("\n".join(lines) + "\n", encoding="ascii", newline="\n")
    d.astype("<i2").tofile(folder / f"{name}.dat")  # fmt 16: interleaved little-endian int16


# --------------------------------------------------------------------------- public API
def generate_ptbxl(
    out_dir: str | Path,
    n_records: int = 240,
    *,
    seed: int = 0,
    rates: tuple[int, ...] | list[int] = (100, 500),
    records_per_patient: tuple[int, int] = (1, 3),
) -> Path:
    """Write a synthetic PTB-XL copy (database, statements, WFDB records) into ``out_dir``.

    Returns ``out_dir`` as a Path.  The same arguments always give byte-identical files.
    The 100 Hz record of an ecg_id is the decimated 500 Hz record, whichever rates are asked.
    """
    if n_records < 1:
        raise ValueError("n_records must be >= 1")
    rates = tuple(sorted(set(int(r) for r in rates)))
    if not rates or any(r not in RATES for r in rates):
        raise ValueError(f"rates must be a non-empty subset of {sorted(RATES)}")
    lo, hi = (int(v) for v in records_per_patient)
    if not 1 <= lo <= hi:
        raise ValueError("records_per_patient must be (lo, hi) with 1 <= lo <= hi")

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    meta_seq, patient_seq, record_seq = np.random.SeedSequence(seed).spawn(3)
    rng = np.random.default_rng(meta_seq)

    profile = _allocate_profiles(n_records, rng)
    patient = _allocate_patients(n_records, rng, lo, hi)
    fold = _assign_folds(patient, profile, rng)
    n_pat = int(patient.max()) + 1

    # patient-level physiology and demographics
    prng = np.random.default_rng(patient_seq)
    pats = []
    patient_ids = prng.choice(np.arange(1, 21800), size=n_pat, replace=False).astype(float)
    for _ in range(n_pat):
        sex = int(prng.integers(2))  # PTB-XL: 0 male, 1 female
        pats.append(
            {
                "axis": float(np.clip(prng.normal(50, 22), -10, 95)),
                "qrs_mag": float(1.4 * np.exp(prng.normal(0.0, 0.18))) * (0.9 if sex else 1.0),
                "t_scale": float(np.exp(prng.normal(0.0, 0.2))),
                "v_gain": np.exp(prng.normal(0.0, 0.1, 6)),
                "sex": sex,
                "age": float(np.clip(np.round(prng.normal(60, 17)), 18, 95)),
                "height": float(np.round(prng.normal(163 if sex else 175, 7))),
                "weight": float(np.round(prng.normal(68 if sex else 80, 12))),
            }
        )

    seconds = np.sort(rng.choice(_SPAN_S, size=n_records, replace=False))
    first_seen: dict[int, float] = {}
    rows, fiducials = [], []
    rec_seqs = record_seq.spawn(n_records)
    for idx in range(n_records):
        ecg_id = idx + 1
        codes = PROFILES[profile[idx]][0]
        p = int(patient[idx])
        pat = pats[p]
        rrng = np.random.default_rng(rec_seqs[idx])
        x8, facts = _synthesize(set(codes), pat, rrng)
        for rate in rates:  # derivation is linear, so decimating 8 leads first is exact
            _write_record(out, ecg_id, rate, _twelve_leads(_decimate(x8, rate)))
            # beats whose R lies inside the record; their other points may fall outside (-1)
            f = fiducial_samples(facts["fiducials"], rate, rate * SECONDS)
            f = f[f[:, FIDUCIALS.index("r")] >= 0]
            fiducials.append(
                pd.DataFrame({"ecg_id": ecg_id, "rate": rate, "beat": np.arange(len(f)), **dict(zip(FIDUCIALS, f.T))})
            )

        when = _START + timedelta(seconds=int(seconds[idx]))
        years = (seconds[idx] - first_seen.setdefault(p, seconds[idx])) / (365.25 * 86400)
        english = rng.random() < 0.25
        abnormal_axis = _axis_label(facts["axis"]) != "MID"
        drift = facts["drift_leads"]
        rows.append(
            {
                "ecg_id": ecg_id,
                "patient_id": patient_ids[p],
                "age": float(pat["age"] + np.floor(years)),
                "sex": pat["sex"],
                "height": pat["height"] if rng.random() < 0.48 else np.nan,
                "weight": pat["weight"] if rng.random() < 0.76 else np.nan,
                "nurse": float(rng.choice([0, 1, 2, 3, 11])) if rng.random() < 0.85 else np.nan,
                "site": float(rng.choice([0, 1, 2, 3])),
                "device": str(rng.choice(DEVICES, p=_DEVICE_P / _DEVICE_P.sum())),
                "recording_date": when.strftime("%Y-%m-%d %H:%M:%S"),
                "report": _report(codes, english),
                "scp_codes": str({c: _likelihood(c, rng) for c in codes}),
                "heart_axis": (_axis_label(facts["axis"]) if abnormal_axis or rng.random() < 0.3 else np.nan),
                "infarction_stadium1": (
                    str(
                        rng.choice(
                            ["unknown", "Stadium III", "Stadium II", "Stadium I", "Stadium II-III"],
                            p=[0.5, 0.3, 0.08, 0.07, 0.05],
                        )
                    )
                    if _MI & set(codes)
                    else np.nan
                ),
                "infarction_stadium2": ("Stadium III" if _MI & set(codes) and rng.random() < 0.2 else np.nan),
                "validated_by": float(rng.choice([0, 1, 2, 5])) if rng.random() < 0.6 else np.nan,
                "second_opinion": bool(rng.random() < 0.03),
                "initial_autogenerated_report": bool(english and rng.random() < 0.5),
                # PTB-XL folds 9 and 10 hold only human-validated records (recommended test folds)
                "validated_by_human": bool(fold[idx] >= 9 or rng.random() < 0.7),
                "baseline_drift": (" , " + ("alles" if len(drift) > 4 else "-".join(drift[:2])) if drift else np.nan),
                "static_noise": " , alles,  " if facts["noisy"] else np.nan,
                "burst_noise": facts["burst"] if facts["burst"] else np.nan,
                "electrodes_problems": np.nan,
                "extra_beats": np.nan,
                "pacemaker": np.nan,
                "strat_fold": int(fold[idx]),
                "filename_lr": record_path(ecg_id, 100),
                "filename_hr": record_path(ecg_id, 500),
            }
        )

    db = pd.DataFrame(rows, columns=list(DATABASE_COLUMNS))
    for col in ("patient_id", "age", "height", "weight", "nurse", "site", "validated_by"):
        db[col] = db[col].astype(float)
    db.to_csv(out / DATABASE_CSV, index=False, lineterminator="\n")
    truth = pd.concat(fiducials, ignore_index=True).sort_values(["rate", "ecg_id", "beat"], kind="stable")
    truth.to_csv(out / FIDUCIALS_CSV, index=False, lineterminator="\n")
    shutil.copyfile(bundled_statements(), out / STATEMENTS_CSV)
    return out


def main(argv: list[str] | None = None) -> int:
    """`python -m ptbxl_xai.data.synthetic OUT ...`, the old form of `ecgxai synthetic OUT ...` (same arguments)."""
    import sys

    from ptbxl_xai.cli import main as cli_main

    return cli_main(["synthetic", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    raise SystemExit(main())
