"""Expert rules: the cited table is loaded and applied; alignment, nulls and the deletion probe."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ptbxl_xai.data.ptbxl import LEADS
from ptbxl_xai.evaluation.bootstrap import mean_ci
from ptbxl_xai.explain.checks.alignment import (
    energy_share,
    positive_share,
    summarize_alignment,
    time_share,
)
from ptbxl_xai.explain.checks.probe import background_check, deletion_probe, random_region, summarize_probe
from ptbxl_xai.explain.checks.rules import load_rules, rule_mask, rules_for_labels, rules_table
from ptbxl_xai.explain.spaces.features import SEGMENTS, bin_space, wave_space

T = 1000


def beats(n=8, period=110, start=40) -> np.ndarray:
    """P 40-55, PR to 70, QRS 70-80, ST to 100, T 100-130 in each 110-sample cycle (FIDUCIALS order)."""
    o = start + period * np.arange(n)
    return np.stack([o, o + 15, o + 30, o + 35, o + 40, o + 60, o + 90], axis=1)


@pytest.fixture(scope="module")
def space():
    return wave_space(beats(), T)


def test_rule_table_loads_with_citations_for_the_superclasses():
    rules = load_rules()
    for label in ("CD", "MI", "STTC", "HYP", "AFIB", "1AVB", "CLBBB", "IMI", "LVH"):
        assert label in rules, label
        assert rules[label].references and all(len(ref) > 40 for ref in rules[label].references)
    assert rules["STTC"].segments == ("ST", "T") and len(rules["STTC"].leads) == 12
    assert rules["1AVB"].segments == ("PR",)
    assert rules["AFIB"].segments == ("P", "TP")
    assert set(rules["HYP"].leads) == {"V1", "V5", "V6", "AVL"} and rules["HYP"].segments == ("QRS",)
    assert rules["IMI"].leads == ("II", "III", "AVF")  # lead group expanded, in lead order
    table = rules_table(rules)
    assert list(table.columns) == ["label", "segments", "leads", "criterion", "citations", "references"]
    assert len(table) == len(rules)


def test_every_rule_names_a_real_ptbxl_label():
    statements = pd.read_csv("ptbxl_xai/resources/scp_statements.csv", index_col=0)
    known = set(statements.index) | set(statements.diagnostic_class.dropna())
    assert set(load_rules()) <= known
    assert "NORM" not in load_rules()  # no criterion names a region for "normal"


def test_rule_maps_to_the_right_features(space):
    rules = load_rules()
    hyp = rule_mask(rules["HYP"], space)
    expected = {space.feature_index(lead, "QRS") for lead in ("V1", "V5", "V6", "AVL")}
    assert set(np.flatnonzero(hyp)) == expected
    imi = rule_mask(rules["IMI"], space)
    assert set(np.flatnonzero(imi)) == {
        space.feature_index(lead, s) for lead in ("II", "III", "AVF") for s in ("QRS", "ST")
    }
    sttc = rule_mask(rules["STTC"], space)
    assert sttc.sum() == 24 and all(space.feature_names[i].split(":")[1] in ("ST", "T") for i in np.flatnonzero(sttc))
    picked = rules_for_labels(["NORM", "MI", "STTC", "CD", "HYP"], rules)
    assert list(picked) == ["MI", "STTC", "CD", "HYP"]


def test_rule_cannot_apply_to_time_bins():
    with pytest.raises(ValueError, match="wave features"):
        rule_mask(load_rules()["CD"], bin_space(T, 20))


@pytest.mark.parametrize(
    "rule, message",
    [
        ("{segments: [QRS, Q], leads: all, criterion: x, cite: [a]}", "segments"),
        ("{segments: [QRS], leads: [V7], criterion: x, cite: [a]}", "V7"),
        ("{segments: [QRS], leads: all, criterion: x, cite: [nope]}", "nope"),
        ("{segments: [QRS], leads: all, cite: [a]}", "criterion"),
    ],
)
def test_bad_rule_table_names_file_label_and_problem(tmp_path, rule, message):
    path = tmp_path / "rules.yaml"
    path.write_text(f"lead_groups: {{all: [I, II]}}\ncitations: {{a: Someone 2000}}\nrules:\n  XYZ: {rule}\n")
    with pytest.raises(ValueError, match=message) as err:
        load_rules(path)
    assert str(path) in str(err.value) and "XYZ" in str(err.value)


def test_positive_share_counts_only_positive_attribution():
    mask = np.array([1, 1, 0, 0], bool)
    assert positive_share(np.array([3.0, -5.0, 1.0, 0.0]), mask) == pytest.approx(0.75)
    assert np.isnan(positive_share(np.array([-1.0, -1.0, 0.0, 0.0]), mask))
    both = positive_share(np.array([[1.0, 1.0, 1.0, 1.0], [0.0, 0.0, 2.0, 0.0]]), mask)
    assert both.tolist() == [0.5, 0.0]


def test_time_and_energy_nulls(space):
    rules = load_rules()
    mask = rule_mask(rules["HYP"], space)  # QRS in 4 leads
    qrs_samples = (space.segment_of_sample == SEGMENTS.index("QRS")).sum()
    assert qrs_samples == 8 * 11
    assert time_share(space, mask) == pytest.approx(4 * qrs_samples / (12 * T))
    x = np.zeros((12, T), np.float32)
    x[LEADS.index("V1"), space.segment_of_sample == SEGMENTS.index("QRS")] = 2.0  # all energy in V1's QRS
    x[0, :10] = 0.0
    assert energy_share(x, space, mask) == pytest.approx(1.0)
    x[0, :] = 1.0  # lead I everywhere: 1000 units against 4 x 88 in V1's QRS
    assert energy_share(x, space, mask) == pytest.approx(4 * qrs_samples / (4 * qrs_samples + T))


def test_alignment_summary_pairs_by_record():
    rng = np.random.default_rng(0)
    rows = []
    for eid in range(30):
        t = rng.uniform(0.1, 0.2)
        for model, share in (("trained", 0.3 + t), ("randomised", t)):  # trained = randomised + 0.3 exactly
            rows.append(
                dict(
                    ecg_id=eid,
                    label="HYP",
                    method="shap",
                    background="zero",
                    model=model,
                    region="r",
                    share=share,
                    time_share=t,
                    energy_share=t / 2,
                )
            )
    rows.append(
        dict(
            ecg_id=99,
            label="HYP",
            method="shap",
            background="zero",
            model="trained",
            region="r",
            share=np.nan,
            time_share=0.1,
            energy_share=0.1,
        )
    )
    s = summarize_alignment(pd.DataFrame(rows), n_boot=200).iloc[0]
    assert s.n_records == 30 and s.n_no_positive == 1 and s.n_paired == 30
    assert s.minus_randomised == pytest.approx(0.3) and s.minus_randomised_low == pytest.approx(0.3)
    assert s.minus_time == pytest.approx(0.3)
    shares = np.array([r["share"] for r in rows if r["model"] == "trained" and np.isfinite(r["share"])])
    assert s.share == pytest.approx(shares.mean()) and s.share_low < s.share < s.share_high
    assert s.minus_energy == pytest.approx(np.mean([0.3 + r["time_share"] / 2 for r in rows[:-1:2]]))


def test_bootstrap_interval_covers_the_mean_and_ignores_nan():
    m, lo, hi, n = mean_ci([1.0, 2.0, 3.0, np.nan, 4.0], n_boot=500)
    assert n == 4 and m == 2.5 and lo < m < hi
    assert mean_ci([], n_boot=10)[3] == 0


def test_random_region_matches_size_outside_the_rule(space):
    rule = rule_mask(load_rules()["STTC"], space)
    per_feature = np.tile(space.segment_samples, space.n_leads)
    rng = np.random.default_rng(1)
    for _ in range(20):
        region = random_region(space, rule, rng)
        assert not (region & rule).any()
        assert abs(per_feature[region].sum() - per_feature[rule].sum()) <= per_feature.max()


def test_deletion_probe_finds_the_region_the_model_reads(space):
    """A model whose label 1 reads V1's QRS: deleting the HYP region drops it, random regions do not."""
    qrs = space.segment_of_sample == SEGMENTS.index("QRS")
    v1 = LEADS.index("V1")

    def predict(x):
        score = x[:, v1, qrs].mean(1)
        return np.stack([np.full(len(x), 0.5), 1 / (1 + np.exp(-4 * (score - 0.5)))], axis=1)

    x = np.zeros((12, T), np.float32)
    x[:, qrs] = 1.0
    rule = rule_mask(load_rules()["HYP"], space)
    res = deletion_probe(predict, x, np.zeros_like(x), space, 1, rule, n_random=8, seed=0)
    assert res["p_rule"] < 0.2 < 0.8 < res["p_record"]
    assert res["drop_random"] == pytest.approx(0.0, abs=1e-9)
    rows = pd.DataFrame(
        [
            dict(ecg_id=i, label="HYP", background="zero", model=m, region="r", **res)
            for i in range(5)
            for m in ("trained",)
        ]
    )
    s = summarize_probe(rows, n_boot=100).iloc[0]
    assert s.frac_drop == 1.0 and s.frac_drop_random == 0.0 and s.minus_random == pytest.approx(res["drop_rule"])


def test_background_check_reports_what_the_background_is_classified_as():
    def predict(x):  # flat signals look normal to this model, anything with amplitude does not
        amp = np.abs(x).mean(axis=(1, 2))
        return np.stack([1 / (1 + amp * 10), amp * 10 / (1 + amp * 10)], axis=1)

    flat = np.zeros((3, 12, 50), np.float32)
    busy = np.ones((3, 12, 50), np.float32)
    per, summ = background_check(predict, {"zero": flat, "busy": busy}, [1, 2, 3], ["NORM", "MI"], [0.5, 0.5])
    assert summ.set_index("background").frac_normal.to_dict() == {"zero": 1.0, "busy": 0.0}
    assert summ.set_index("background").top_label.to_dict() == {"zero": "NORM", "busy": "MI"}
    assert len(per) == 6 and per[per.background == "busy"].normal.eq(False).all()
