"""Planted causes: pairs of synthetic ECGs that differ only by one known change, with its lead x sample mask.

The known-answer benchmark (Wagner, Mehari, Haverkamp and Strodthoff 2024; Attribution-ECG) needs a label whose
cause is known exactly. Each pair is one normal record (the morphology model of `ptbxl_xai.data.synthetic`: sinus
rhythm, a VCG dipole projected onto 12 leads, identical noise in both partners) and its copy with one planted
change; only the copy carries the label, so nothing but the change can predict it. The changes:

* ``STE``   ST elevation of 0.2-0.35 mV from QRS offset to the T peak in V1-V4;
* ``1AVB``  the P wave moved 80-140 ms earlier, so PR (onset to onset) is above 200 ms;
* ``BBB``   the QRS widened 1.6-1.9 x (at least 120 ms), in every lead;
* ``TINV``  the T wave inverted in V5 and V6;
* ``RVOLT`` the QRS of V5 and V6 scaled 1.8-2.4 x (R voltage of a hypertrophy criterion);
* ``AFIB``  no P wave; both partners of an AFIB pair share one irregular RR sequence, so the rhythm says nothing
  about which partner is labelled and the absent P is the whole cause.

Waves are Gaussians cut at +-4 sigma, so a change has a finite support; the mask is where the two records'
1 uV WFDB samples differ, so the partner differs from its pair exactly inside the mask (tests/test_known_answer.py).
Records are synthesised at the output rate itself (no decimation filter that would smear a change).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ptbxl_xai.data.ptbxl import LEADS, SECONDS
from ptbxl_xai.data.synthetic import (
    _LIMB,
    _PRECORDIAL,
    FIDUCIALS,
    _beat_times,
    _record_waves,
    _twelve_leads,
    fiducial_samples,
)

PLANTED_LABELS = ("STE", "1AVB", "BBB", "TINV", "RVOLT", "AFIB")
PLANTED_LEADS = {  # the leads each change touches (None: every lead)
    "STE": ("V1", "V2", "V3", "V4"),
    "1AVB": None,
    "BBB": None,
    "TINV": ("V5", "V6"),
    "RVOLT": ("V5", "V6"),
    "AFIB": None,
}
QRS_WAVES = ("Q", "R", "S")
RECORD_COLUMNS = ("ecg_id", "pair", "label", "planted", "fold")
CUT_SIGMA = 4.0  # a wave is exactly zero beyond +-4 sigma: a change has a finite support
ADC_GAIN = 1000.0  # 1 uV steps, as the synthetic PTB-XL records


@dataclass
class PlantedSet:
    """Pairs of records: x [n, 12, T] in mV (as written, 1 uV steps), labels [n, len(PLANTED_LABELS)],
    masks [n, 12, T] (where the record differs from its pair; all False for the unchanged partner), beats (one
    fiducial table per record, samples at `rate`), and the table of records (ecg_id, pair, label, planted, fold)."""

    x: np.ndarray
    y: np.ndarray
    masks: np.ndarray
    beats: list[np.ndarray]
    records: pd.DataFrame
    rate: int


def _patient(rng: np.random.Generator) -> dict:
    """The patient-level physiology of `ptbxl_xai.data.synthetic` (axis, voltage, T scale, electrode gains)."""
    return {
        "axis": float(np.clip(rng.normal(50, 22), -10, 95)),
        "qrs_mag": float(1.4 * np.exp(rng.normal(0.0, 0.18))),
        "t_scale": float(np.exp(rng.normal(0.0, 0.2))),
        "v_gain": np.exp(rng.normal(0.0, 0.1, 6)),
    }


def _gaussians(centers: np.ndarray, sigma: float, vec: np.ndarray, proj12: np.ndarray, t: np.ndarray) -> np.ndarray:
    """12-lead signal [12, T] of one wave repeated at `centers` (s), cut at +-CUT_SIGMA sigma."""
    d = (t[None, :] - centers[:, None]) / sigma
    g = np.where(np.abs(d) <= CUT_SIGMA, np.exp(-0.5 * d**2), 0.0).sum(0)
    return np.outer(proj12 @ vec, g)


class _Beats:
    """One record's waves and beat times, from which its 12-lead signal and true fiducials are built."""

    def __init__(self, rng: np.random.Generator, rate: int, irregular: bool):
        self.rate, self.n = rate, rate * SECONDS
        self.t = np.arange(self.n) / rate
        pat = _patient(rng)
        waves, _ = _record_waves({"NORM", "SR"}, pat, rng)
        self.waves = {k: list(v) for k, v in waves.items() if k != "ST"}  # the normal ST carries no vector
        hr = rng.uniform(60, 85)
        self.r = _beat_times("AFIB" if irregular else "SR", hr, rng)
        rr = np.diff(np.concatenate([self.r, [self.r[-1] + 60.0 / hr]]))
        self.stretch = np.sqrt(np.clip(rr, 0.3, 2.0))  # Bazett-like: T moves with sqrt(RR)
        proj8 = np.vstack([_LIMB, _PRECORDIAL * pat["v_gain"][:, None]])
        self.proj12 = _twelve_leads(proj8.T).T  # (12, 3)
        self.amplitude = np.exp(rng.normal(0.0, 0.05, len(self.r)))  # small beat-to-beat variation

    def centers(self, name: str) -> np.ndarray:
        off, _, _, scales = self.waves[name]
        return self.r + off * (self.stretch if scales else 1.0)

    def wave(self, name: str, shift: float = 0.0, widen: float = 1.0) -> np.ndarray:
        off, sigma, vec, scales = self.waves[name]
        c = self.r + (off * widen) * (self.stretch if scales else 1.0) + shift
        out = np.zeros((12, self.n))
        for k, ck in enumerate(c):  # each beat its own amplitude
            out += self.amplitude[k] * _gaussians(np.array([ck]), sigma * widen, vec, self.proj12, self.t)
        return out

    def fiducials(self, *, p_shift: float = 0.0, qrs_widen: float = 1.0, no_p: bool = False) -> np.ndarray:
        """True fiducials [beats, 7] (samples; -1 where absent or outside) at +-2.5 sigma of each wave group."""
        k = 2.5
        rows = []
        for i, r in enumerate(self.r):
            p = self.waves["P"]
            qrs = [self.waves[n] for n in QRS_WAVES]
            t_off, t_sig = self.waves["T"][0] * self.stretch[i], self.waves["T"][1]
            p_c = r + p[0] + p_shift
            qrs_on = r + min(w[0] * qrs_widen - k * w[1] * qrs_widen for w in qrs)
            qrs_off = r + max(w[0] * qrs_widen + k * w[1] * qrs_widen for w in qrs)
            rows.append(
                [
                    np.nan if no_p else p_c - k * p[1],
                    np.nan if no_p else p_c + k * p[1],
                    qrs_on,
                    r + self.waves["R"][0] * qrs_widen,
                    qrs_off,
                    r + t_off - k * t_sig,
                    r + t_off + k * t_sig,
                ]
            )
        times = np.asarray(rows, dtype=np.float64)
        samples = fiducial_samples(times, self.rate, self.n)
        keep = samples[:, FIDUCIALS.index("r")] >= 0
        return samples[keep]


def _plant(b: _Beats, label: str, rng: np.random.Generator) -> tuple[np.ndarray, dict]:
    """The additive change [12, T] of `label` on record `b`, and how its fiducials change."""
    u = rng.uniform
    delta = np.zeros((12, b.n))
    leads = PLANTED_LEADS[label]
    rows = slice(None) if leads is None else [LEADS.index(name) for name in leads]
    fid = {}
    if label == "STE":  # a plateau from QRS offset to the T peak, raised-cosine edges
        height = u(0.2, 0.35)
        qrs_off = b.r + max(b.waves[n][0] + 2.5 * b.waves[n][1] for n in QRS_WAVES)
        t_peak = b.centers("T")
        for a, z in zip(qrs_off, t_peak):
            inside = (b.t >= a) & (b.t <= z)
            idx = np.flatnonzero(inside)
            if len(idx) >= 2:
                ramp = np.sin(np.pi * np.linspace(0, 1, len(idx))) ** 0.5
                delta[np.ix_(np.arange(12)[rows], idx)] += height * ramp
    elif label == "TINV":
        delta[rows] = -2.0 * b.wave("T")[rows]
    elif label == "RVOLT":
        qrs = sum(b.wave(n) for n in QRS_WAVES)
        delta[rows] = (u(1.8, 2.4) - 1.0) * qrs[rows]
    elif label == "1AVB":
        shift = -u(0.08, 0.14)
        delta = b.wave("P", shift=shift) - b.wave("P")
        fid = {"p_shift": shift}
    elif label == "BBB":
        widen = u(1.6, 1.9)
        delta = sum(b.wave(n, widen=widen) - b.wave(n) for n in QRS_WAVES)
        fid = {"qrs_widen": widen}
    elif label == "AFIB":
        delta = -b.wave("P")
        fid = {"no_p": True}
    else:
        raise ValueError(f"unknown planted label {label!r}; known: {PLANTED_LABELS}")
    return delta, fid


def quantise(x: np.ndarray) -> np.ndarray:
    """mV -> the 1 uV integer steps a WFDB record stores."""
    return np.clip(np.round(x * ADC_GAIN), -32767, 32767).astype(np.int64)


def generate_planted(pairs_per_label: int, *, seed: int = 0, rate: int = 100, noise_mv: float = 0.01) -> PlantedSet:
    """`pairs_per_label` pairs for each planted label, seeded (one generator per pair, spawned from `seed`).

    Folds: pairs cycle through folds 1-10, so both partners of a pair are always in the same fold (the
    partners are near-duplicates: a pair split across folds would leak).
    """
    if pairs_per_label < 1:
        raise ValueError(f"pairs_per_label must be at least 1, not {pairs_per_label}")
    seeds = np.random.SeedSequence(seed).spawn(pairs_per_label * len(PLANTED_LABELS))
    xs, ys, masks, beats, rows = [], [], [], [], []
    for p, ss in enumerate(seeds):
        label = PLANTED_LABELS[p % len(PLANTED_LABELS)]
        rng = np.random.default_rng(ss)
        b = _Beats(rng, rate, irregular=label == "AFIB")
        clean = sum(b.wave(name) for name in b.waves)
        noise = rng.normal(0.0, noise_mv, clean.shape)  # the same noise in both partners
        base = clean + noise
        delta, fid = _plant(b, label, rng)
        q0, q1 = quantise(base), quantise(base + delta)
        fold = p // len(PLANTED_LABELS) % 10 + 1
        for planted, q in ((False, q0), (True, q1)):
            y = np.zeros(len(PLANTED_LABELS), dtype=np.float32)
            y[PLANTED_LABELS.index(label)] = float(planted)
            xs.append((q / ADC_GAIN).astype(np.float32))
            ys.append(y)
            masks.append(q1 != q0 if planted else np.zeros_like(q0, dtype=bool))
            beats.append(b.fiducials(**fid) if planted else b.fiducials())
            rows.append(dict(ecg_id=len(rows) + 1, pair=p, label=label, planted=planted, fold=fold))
    return PlantedSet(np.stack(xs), np.stack(ys), np.stack(masks), beats, pd.DataFrame(rows), rate)


def save_planted(planted: PlantedSet, path: str | Path) -> Path:
    """One .npz (signals, labels, masks bit-packed, fiducials with their record index, the records table)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fid = np.concatenate([np.column_stack([np.full(len(b), i), b]) for i, b in enumerate(planted.beats)])
    tmp = path.with_name(path.name + ".tmp.npz")
    np.savez_compressed(
        tmp,
        x=planted.x,
        y=planted.y,
        masks=np.packbits(planted.masks, axis=-1),
        fiducials=fid.astype(np.int32),
        **{f"record_{c}": planted.records[c].to_numpy(dtype=str if c == "label" else None) for c in RECORD_COLUMNS},
        rate=planted.rate,
        labels=np.array(PLANTED_LABELS),
    )
    tmp.replace(path)
    return path


def load_planted(path: str | Path) -> PlantedSet:
    with np.load(path, allow_pickle=False) as z:
        x, n = z["x"], z["x"].shape[-1]
        masks = np.unpackbits(z["masks"], axis=-1, count=n).astype(bool)
        fid = z["fiducials"]
        beats = [fid[fid[:, 0] == i, 1:] for i in range(len(x))]
        records = pd.DataFrame({c: z[f"record_{c}"] for c in RECORD_COLUMNS})
        records["label"] = records["label"].astype(str)
        return PlantedSet(x, z["y"], masks, beats, records, int(z["rate"]))
