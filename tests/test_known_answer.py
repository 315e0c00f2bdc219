"""The known-answer benchmark: planted causes with exact masks, and scores that can tell a right answer."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from ptbxl_xai.data.planted import PLANTED_LABELS, PLANTED_LEADS, generate_planted, load_planted, save_planted
from ptbxl_xai.data.ptbxl import LEADS
from ptbxl_xai.explain.checks.config import CheckConfig
from ptbxl_xai.explain.checks.known_answer import localisation, mask_fraction, summarize_localisation
from ptbxl_xai.explain.checks.randomisation import randomised_model
from ptbxl_xai.explain.methods.explain_records import explain_maps
from ptbxl_xai.explain.spaces.features import FIDUCIALS, bin_space, wave_space

RATE = 100


@pytest.fixture(scope="module")
def planted():
    return generate_planted(4, seed=3, rate=RATE)


def partner(data, i: int) -> int:
    """The other record of record i's pair."""
    pair = data.records["pair"].iloc[i]
    return int(np.flatnonzero((data.records["pair"] == pair).to_numpy() & (np.arange(len(data.x)) != i))[0])


def test_the_planted_change_is_exactly_the_mask(planted):
    """A planted record differs from its partner in exactly the masked lead x samples, and nowhere else;
    the unplanted partner has an empty mask and no label."""
    for i in np.flatnonzero(planted.records["planted"].to_numpy()):
        j = partner(planted, i)
        assert not planted.records["planted"].iloc[j] and not planted.masks[j].any() and planted.y[j].sum() == 0
        differs = planted.x[i] != planted.x[j]
        np.testing.assert_array_equal(differs, planted.masks[i])
        assert planted.masks[i].any()
        label = planted.records["label"].iloc[i]
        assert planted.y[i].tolist() == [float(lab == label) for lab in PLANTED_LABELS]
        assert planted.records["fold"].iloc[i] == planted.records["fold"].iloc[j]  # a pair never spans folds
        leads = PLANTED_LEADS[label]
        if leads is not None:  # the change stays in its leads
            touched = {LEADS[k] for k in np.flatnonzero(planted.masks[i].any(axis=1))}
            assert touched == set(leads), (label, touched)


def _durations_ms(beats: np.ndarray, a: str, b: str) -> np.ndarray:
    ok = (beats[:, FIDUCIALS.index(a)] >= 0) & (beats[:, FIDUCIALS.index(b)] >= 0)
    return (beats[ok, FIDUCIALS.index(b)] - beats[ok, FIDUCIALS.index(a)]) * 1000 / RATE


def test_the_planted_causes_meet_their_clinical_criteria(planted):
    """The true fiducials carry the planted intervals: PR > 200 ms (1AVB), QRS >= 120 ms (BBB), no P (AFIB);
    ST elevation >= 0.2 mV in V1-V4; the unplanted partners are normal (PR 120-200 ms, QRS < 120 ms)."""
    rec = planted.records
    for i in range(len(rec)):
        label, on = rec["label"].iloc[i], bool(rec["planted"].iloc[i])
        beats = planted.beats[i]
        pr, qrs = _durations_ms(beats, "p_on", "qrs_on"), _durations_ms(beats, "qrs_on", "qrs_off")
        if on and label == "1AVB":
            assert pr.min() > 200, pr
        elif on and label == "AFIB":
            assert (beats[:, FIDUCIALS.index("p_on")] < 0).all()
        elif label != "AFIB":
            assert 100 <= np.median(pr) <= 200, (label, pr)
        if on and label == "BBB":
            assert qrs.min() >= 120, qrs
        elif not on:
            assert np.median(qrs) < 120, qrs
        if on and label == "STE":
            diff = planted.x[i] - planted.x[partner(planted, i)]
            v1_v4 = [LEADS.index(v) for v in ("V1", "V2", "V3", "V4")]
            assert diff[v1_v4].max() >= 0.2


def test_generation_is_seeded_and_survives_a_round_trip(planted, tmp_path):
    again = generate_planted(4, seed=3, rate=RATE)
    np.testing.assert_array_equal(again.x, planted.x)
    path = save_planted(planted, tmp_path / "planted.npz")
    loaded = load_planted(path)
    np.testing.assert_array_equal(loaded.masks, planted.masks)
    np.testing.assert_array_equal(loaded.x, planted.x)
    pd.testing.assert_frame_equal(loaded.records, planted.records)
    assert all((a == b).all() for a, b in zip(loaded.beats, planted.beats))
    with pytest.raises(ValueError, match="at least 1"):
        generate_planted(0)


def test_scores_of_known_maps():
    """Share, pointing game and rank AUC on hand-made maps over 2 leads x 4 bins."""
    space = bin_space(8, 4, lead_names=("I", "II"))
    mask = np.zeros((2, 8), bool)
    mask[1, 4:6] = True  # exactly the third bin of lead II
    assert mask_fraction(space, mask).tolist() == [0, 0, 0, 0, 0, 0, 1, 0]
    on_mask = np.array([0, 0, 0, 0, 0, 0, 2.0, 0])
    s = localisation(on_mask, space, mask)
    assert s["share"] == 1 and s["pointing"] == 1 and s["rank_auc"] == 1 and s["mask_share"] == 2 / 16
    assert s["region_share"] == 1 / 8  # one of 8 equal features
    off_mask = np.array([3.0, 0, 0, 0, 0, 0, 1.0, -5])
    s = localisation(off_mask, space, mask)
    assert s["share"] == pytest.approx(0.25) and s["pointing"] == 0
    half = np.zeros((2, 8), bool)
    half[1, 4] = True  # half of that bin: a reader of that bin still scores 1 at this resolution
    assert localisation(on_mask, space, half)["share"] == 1
    assert s["rank_auc"] == pytest.approx(6 / 7)  # above the five zeros and -5, below 3
    assert np.isnan(localisation(np.zeros(8), space, mask)["share"])  # nothing positive: no share


class MaskReader(nn.Module):
    """A model whose single output reads only the masked lead x samples of one planted record (a linear read-out
    of the signal there), returning (logits, attention) as the workflow's models do."""

    def __init__(self, mask: np.ndarray):
        super().__init__()
        self.register_buffer("mask", torch.from_numpy(mask.astype(np.float32)))
        self.readout = nn.Linear(mask.size, len(PLANTED_LABELS))
        with torch.no_grad():
            self.readout.weight.zero_()
            self.readout.weight[0] = self.mask.flatten() * 4.0
            self.readout.bias.fill_(-1.0)

    def forward(self, x):
        logits = self.readout(x.flatten(1))
        return logits, torch.full((x.shape[0], 10), 0.1)


def test_a_model_that_reads_only_the_mask_localises_and_a_randomised_one_does_not(planted):
    """The known answer can be found and can be missed: SHAP of a model that reads only the planted region puts
    (about) all positive attribution inside the mask; the same model with randomised weights reads the whole
    record and scores about the mask's share of lead x time."""
    i = int(np.flatnonzero(((planted.records["label"] == "STE") & planted.records["planted"]).to_numpy())[0])
    x, mask = planted.x[i], planted.masks[i]
    model = MaskReader(mask).eval()
    space = wave_space(pd.DataFrame(planted.beats[i], columns=list(FIDUCIALS)), x.shape[-1])
    # SHAP: exact for a model additive over features, so the test is of the scores, not of an estimator's noise
    cfg = CheckConfig(methods=("shap",), shap={"npermutations": 2})
    backgrounds = {"zero": np.zeros_like(x)}
    maps = explain_maps(model, x, [0], space, backgrounds, cfg, seed=0)
    s = localisation(maps[("shap", "zero")][0], space, mask)
    # rank AUC below 1: features that touch the mask by a sample or two carry ~0 and tie with the rest
    assert s["share"] > 0.9 and s["pointing"] == 1 and s["rank_auc"] > 0.6, s
    shares, aucs = [], []
    for seed in range(5):
        rand = randomised_model(model, seed)
        values = explain_maps(rand, x, [0], space, backgrounds, cfg, seed=0)[("shap", "zero")][0]
        scores = localisation(values, space, mask)
        shares.append(scores["share"])
        aucs.append(scores["rank_auc"])
    null = scores["region_share"]
    assert abs(np.nanmean(shares) - null) < 0.15 and np.nanmean(shares) < 0.5, (shares, null)
    assert abs(np.nanmean(aucs) - 0.5) < 0.15, aucs


def test_summary_has_intervals_per_group():
    rows = pd.DataFrame(
        dict(
            label=["STE"] * 4 + ["TINV"] * 2,
            method="shap",
            share=[0.9, 0.8, 1.0, 0.7, 0.2, 0.4],
            pointing=[1, 1, 1, 0, 0, 1],
            rank_auc=[0.9, 0.8, 0.95, 0.6, 0.5, 0.7],
            mask_share=0.1,
            region_share=0.2,
        )
    )
    table = summarize_localisation(rows, ["label", "method"], n_boot=200).set_index("label")
    assert table.loc["STE", "share"] == pytest.approx(0.85) and table.loc["STE", "n"] == 4
    assert table.loc["STE", "share_ci_low"] <= 0.85 <= table.loc["STE", "share_ci_high"]
    assert table.loc["TINV", "pointing"] == pytest.approx(0.5)


def localisation_rows(method, shares, meaningful=(True,) * 3, ci_low=None, architecture="hybrid", background=None):
    labels = ["STE", "1AVB", "AFIB"]
    low = ci_low if ci_low is not None else [s - 0.05 for s in shares]
    return pd.DataFrame(
        dict(
            architecture=architecture,
            label=labels,
            meaningful=list(meaningful),
            method=method,
            feature_space="waves",
            background=background or ("-" if method == "attention" else "normal_template"),  # attention masks nothing
            model="trained",
            share=shares,
            share_ci_low=low,
            region_share=[0.1, 0.5, 0.2],
        )  # fmt: skip
    )


def test_known_answer_flags_fail_a_method_no_better_than_an_even_spread():
    from ptbxl_xai.explain.checks.known_answer import known_answer_flags

    table = pd.concat(
        [
            localisation_rows("shap", [0.9, 0.8, 0.85]),
            localisation_rows("attention", [0.12, 0.7, 0.6], ci_low=[0.08, 0.6, 0.5]),  # STE: region 0.10
            localisation_rows("lime", [0.4, 0.8, 0.8], meaningful=(True, True, False)),  # STE: above 0.10, below half
            localisation_rows("shap", [0.0, 0.0, 0.0], architecture="cnn"),  # another model: not this run's
            localisation_rows("lime", [0.0, 0.0, 0.0], background="zero"),  # another background: not this run's
        ],
        ignore_index=True,
    )
    flags = known_answer_flags(table, "hybrid")
    assert flags["shap"].startswith("passed: on the planted causes (hybrid, waves, normal_template), 0.80-0.90")
    assert flags["attention"].startswith("failed:") and "0.12 of its attribution in the STE mask" in flags["attention"]
    assert flags["lime"].startswith("caution:") and "not scored, the model did not learn: AFIB" in flags["lime"]
    assert known_answer_flags(table, None) == {} and known_answer_flags(table, "hybrid", "bins") == {}
    from ptbxl_xai.report.viewer import FLAG_PATTERN

    assert all(FLAG_PATTERN.match(v) for v in flags.values())  # the viewer's contract


def test_a_run_gets_the_known_answer_model_of_its_architecture():
    import yaml

    from ptbxl_xai.config import known_answer_variant

    config = yaml.safe_load((Path(__file__).parent.parent / "config.yaml").read_text())
    assert known_answer_variant(config, "hybrid_superdiagnostic") == "hybrid"
    config["runs"]["cnn_run"] = {"model": {"temporal": "none", "pooling": "mean"}}
    assert known_answer_variant(config, "cnn_run") == "cnn"  # the ablation's CNN, one of known_answer's models
    config["runs"]["wide"] = {"model": {"lstm_hidden": 128}}
    assert known_answer_variant(config, "wide") is None  # no planted-cause model was built like it
