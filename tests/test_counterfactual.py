"""Counterfactual search: toy models whose right answer is known by construction."""

import numpy as np
import pytest

from ptbxl_xai.data.ptbxl import LEADS
from ptbxl_xai.explain.counterfactual import feature_counterfactual
from ptbxl_xai.explain.spaces.masking import Masker

T, BINS = 600, 6
W = T // BINS
LABELS = ("NORM", "MI", "STTC")
THRESHOLDS = (0.5, 0.5, 0.5)


def region(x, lead, b):
    return x[:, LEADS.index(lead), b * W : (b + 1) * W].mean(axis=1)


def sigmoid(z):
    return 1 / (1 + np.exp(-z))


def record(*cells):
    x = np.zeros((12, T), dtype=np.float32)
    for lead, b in cells:
        x[LEADS.index(lead), b * W : (b + 1) * W] = 1.0
    return x


def toy(mi, sttc):
    """P(MI) and P(STTC) from the mean of chosen cells; NORM is 1 - max of the two."""

    def predict(x):
        p_mi, p_st = sigmoid(10 * (mi(x) - 0.5)), sigmoid(10 * (sttc(x) - 0.5))
        return np.stack([1 - np.maximum(p_mi, p_st), p_mi, p_st], axis=1)

    return predict


def search(predict, x, label, **kw):
    return feature_counterfactual(predict, Masker(x, BINS), LABELS, THRESHOLDS, label, **kw)


def test_the_one_feature_the_model_reads_is_the_answer():
    x = record(("V2", 2), ("I", 0), ("V5", 4))  # V5 is a distractor the model ignores
    predict = toy(lambda x: region(x, "V2", 2), lambda x: region(x, "I", 0))
    cf = search(predict, x, "MI")
    assert cf.status == "flipped" and cf.valid
    assert cf.features == ["V2:bin02"]
    assert cf.p_before > 0.99 and cf.p_after < 0.01
    assert cf.others_changed == []  # STTC still called, NORM ignored by design
    assert "0.99 -> 0.01 if V2:bin02 were normal (1 of 72 features)" in cf.sentence()


def test_an_or_of_two_features_needs_both_and_nothing_more():
    # MI stays called while either V1 or V3 carries the wave: both must go, the extra cell stays
    x = record(("V1", 1), ("V3", 1), ("V4", 3))
    predict = toy(lambda x: np.maximum(region(x, "V1", 1), region(x, "V3", 1)), lambda x: region(x, "I", 5))
    cf = search(predict, x, "MI")
    assert cf.valid and cf.features == ["V1:bin01", "V3:bin01"]


def test_a_cap_gives_an_invalid_answer_with_its_reason():
    x = record(("V1", 1), ("V2", 1), ("V3", 1))
    mi = lambda x: np.maximum.reduce([region(x, lead, 1) for lead in ("V1", "V2", "V3")])  # noqa: E731
    cf = search(toy(mi, lambda x: region(x, "I", 5)), x, "MI", max_features=2, backward=False)
    assert cf.status == "not flipped" and not cf.valid
    assert "max_features 2" in cf.reason
    assert cf.p_after >= 0.5 and len(cf.features) == 2
    assert "even if" in cf.sentence()
    both = search(toy(mi, lambda x: region(x, "I", 5)), x, "MI", max_features=2)  # backward finds 3: too many
    assert not both.valid and "the smallest set found has 3 features, above max_features 2" in both.reason
    capped = search(toy(mi, lambda x: region(x, "I", 5)), x, "MI", max_calls=4)
    assert not capped.valid and "max_calls 4" in capped.reason and capped.n_calls <= 4
    # a backward pass that runs out of calls keeps a set that flips: valid, if not minimal
    early = search(toy(mi, lambda x: region(x, "I", 5)), x, "MI", max_calls=6)
    assert early.valid and early.search == "backward" and early.n_calls <= 6


def test_a_label_not_called_has_nothing_to_undo():
    x = record(("I", 0))
    cf = search(toy(lambda x: region(x, "V2", 2), lambda x: region(x, "I", 0)), x, "MI")
    assert cf.status == "not predicted" and cf.features == [] and cf.n_calls == 1


def test_an_answer_that_keeps_the_other_decisions_is_preferred():
    # Normalising V1 alone lowers P(MI) most (0.27) but also undoes STTC, which reads V1;
    # V2 alone flips MI too (0.38) and leaves STTC called: V2 is the answer a clinician wants.
    x = record(("V1", 1), ("V2", 1))
    mi = lambda x: 1 - 0.6 * (1 - region(x, "V1", 1)) - 0.55 * (1 - region(x, "V2", 1))  # noqa: E731
    cf = search(toy(mi, lambda x: region(x, "V1", 1)), x, "MI")
    assert cf.valid and cf.features == ["V2:bin01"] and cf.others_changed == []


def test_unknown_labels_and_bad_caps_are_refused():
    x = record(("V2", 2))
    predict = toy(lambda x: region(x, "V2", 2), lambda x: region(x, "I", 0))
    with pytest.raises(ValueError, match="not one of the model's labels"):
        search(predict, x, "HYP")
    with pytest.raises(ValueError, match="thresholds"):
        feature_counterfactual(predict, Masker(x, BINS), LABELS, (0.5,), "MI")
    with pytest.raises(ValueError, match="max_calls"):
        search(predict, x, "MI", max_calls=1)


def test_evidence_beyond_the_forward_pass_is_found_backward_and_kept_minimal():
    # MI stays called while at least two of V1-V4 carry the wave: any three of them must go. The forward
    # pass sees two candidates only; the backward pass, from every feature normal, finds three.
    x = record(("V1", 1), ("V2", 1), ("V3", 1), ("V4", 1), ("V6", 4))
    cells = ("V1", "V2", "V3", "V4")
    mi = lambda x: np.mean([region(x, lead, 1) for lead in cells], axis=0) + 0.2  # noqa: E731
    cf = search(toy(mi, lambda x: region(x, "I", 5)), x, "MI", candidates=2)
    assert cf.valid and cf.search == "backward"
    assert len(cf.features) == 3 and set(cf.features) <= {f"{lead}:bin01" for lead in cells}
    off = search(toy(mi, lambda x: region(x, "I", 5)), x, "MI", candidates=2, backward=False)
    assert not off.valid and "all 2 candidates used" in off.reason
    small = search(toy(mi, lambda x: region(x, "I", 5)), x, "MI", candidates=2, max_features=2)
    assert not small.valid and "the smallest set found has 3 features, above max_features 2" in small.reason


def test_a_call_the_fully_normal_record_keeps_is_invalid_with_that_reason():
    x = record(("V2", 2))
    predict = toy(lambda x: np.full(len(x), 1.0), lambda x: region(x, "I", 5))  # MI whatever the record
    cf = search(predict, x, "MI")
    assert not cf.valid and "even with every segment normal the call stays" in cf.reason
