"""Figures and tables on small synthetic workflow outputs: files exist, sizes, captions, TSV numbers as printed."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from ptbxl_xai.data.ptbxl import LEADS
from ptbxl_xai.evaluation.reference import comparison_table
from ptbxl_xai.explain.correlate import record_correlations, summarize
from ptbxl_xai.explain.methods.explain_records import long_format
from ptbxl_xai.outputs import reading_precision
from ptbxl_xai.report import plots, tables

RATE, T, N_BINS = 100, 1000, 20
LABELS = ["NORM", "MI", "STTC", "CD", "HYP"]
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    n, C = 200, len(LABELS)
    y = (rng.random((n, C)) < [0.4, 0.25, 0.2, 0.15, 0.1]).astype(np.uint8)
    prob = np.clip(0.35 * y + 0.65 * rng.random((n, C)), 0, 1).astype(np.float32)
    pred = {
        "ecg_id": np.arange(1, n + 1),
        "y_true": y,
        "prob": prob,
        "label_names": LABELS,
        "attention": rng.dirichlet(np.ones(62), n).astype(np.float32),
        "meta": {"attention_step_edges": list(range(0, 1001, 16))[:63]},
    }

    history = pd.DataFrame(
        {
            "epoch": np.arange(1, 6),
            "train_loss": [0.9, 0.6, 0.5, 0.45, 0.43],
            "val_loss": [0.8, 0.62, 0.55, 0.56, 0.58],
            "val_macro_auc": [0.7, 0.8, 0.84, 0.83, 0.82],
            "lr": [1e-3, 1e-3, 5e-4, 5e-4, 2.5e-4],
            "seconds": [61.2, 60.1, 59.8, 60.4, 60.0],
        }
    )

    metrics = [
        "macro_auc",
        "micro_auc",
        "macro_f1@0.5",
        "macro_f1@tuned",
        "fmax",
        "hamming_loss@tuned",
        "subset_accuracy@0.5",
    ]
    v = rng.random(len(metrics))  # full-precision floats: the TSV must keep every digit
    overall = pd.DataFrame(
        {
            "metric": metrics,
            "value": v,
            "ci_low": v - 0.0123456789,
            "ci_high": v + 0.0198765,
            "n_labels_used": C,
            "note": ["", "", "", "", "global threshold 0.31", "", ""],
        }
    )
    prior = overall.assign(value=overall.value / 2, ci_low=overall.ci_low / 2, ci_high=overall.ci_high / 2)
    comparison = comparison_table(overall, prior, "all")
    per_label = pd.DataFrame(
        {
            "label": LABELS,
            "support": y.sum(0),
            "prevalence": y.mean(0),
            "auc": rng.random(C),
            "f1": rng.random(C),
            "precision": rng.random(C),
            "recall": rng.random(C),
            "threshold": rng.choice(np.linspace(0.05, 0.95, 91), C),
            "note": ["", "", "", "", "few positives"],
        }
    )
    per_label.loc[4, "auc"] = np.nan

    # 6 records x 3 labels x 12 leads x 20 bins; attention shares its profile across labels and leads
    ids, labs = [101, 102, 103, 104, 105, 106], ["NORM", "MI", "STTC"]
    frames, corr = [], []
    for eid in ids:
        att = rng.dirichlet(np.ones(N_BINS) * 2)
        shap = rng.normal(0, 0.02, (3, 12, N_BINS)) + 0.05 * att
        lime = shap + rng.normal(0, 0.01, shap.shape)
        frames += [
            long_format(shap, eid, labs, "shap", LEADS),
            long_format(lime, eid, labs, "lime", LEADS),
            long_format(np.broadcast_to(att, (3, 12, N_BINS)).copy(), eid, labs, "attention", LEADS),
        ]
        for j, lab in enumerate(labs):
            corr += record_correlations(eid, lab, {"shap": shap[j], "lime": lime[j]}, att)
    attributions = pd.concat(frames, ignore_index=True)
    correlations = pd.DataFrame(corr)
    summary = summarize(correlations, n_boot=200)

    frac = np.linspace(0, 1, 21)
    curves, aucs = [], []
    for eid in ids:
        for lab in labs:
            for m, speed in (("shap", 6), ("lime", 5), ("attention", 2), ("random", 1)):
                for kind in ("deletion", "insertion"):
                    base = np.exp(-speed * frac) if kind == "deletion" else 1 - np.exp(-speed * frac)
                    p = np.clip(0.8 * base + rng.normal(0, 0.03, frac.size), 0, 1)
                    curves.append(
                        pd.DataFrame(
                            dict(
                                ecg_id=eid,
                                label=lab,
                                method=m,
                                kind=kind,
                                k=np.round(frac * 240).astype(int),
                                fraction=frac,
                                prob=p,
                            )
                        )
                    )
                    aucs.append(dict(ecg_id=eid, label=lab, method=m, kind=kind, auc=float(np.trapezoid(p, frac))))
    t = np.arange(T) / RATE
    X = (np.sin(2 * np.pi * 1.2 * t)[None, None, :] + rng.normal(0, 0.2, (6, 12, T))).astype(np.float32)
    return dict(
        pred=pred,
        history=history,
        overall=overall,
        comparison=comparison,
        per_label=per_label,
        attributions=attributions,
        correlations=correlations,
        summary=summary,
        curves=pd.concat(curves, ignore_index=True),
        aucs=pd.DataFrame(aucs),
        signals=(X, np.array(ids)),
        thresholds=dict(zip(LABELS, per_label["threshold"])),
    )


def check_figure(paths, name, n=None):
    png, pdf = map(Path, paths)
    assert png.suffix == ".png" and pdf.suffix == ".pdf" and png.stem == pdf.stem == name
    assert png.read_bytes()[:8] == PNG_SIGNATURE
    w, h = plots.figsize(name, n)
    with Image.open(png) as im:
        assert im.size == (round(w * plots.DPI), round(h * plots.DPI))
    assert pdf.read_bytes()[:5] == b"%PDF-" and pdf.stat().st_size > 1000
    assert plots.caption(png) == plots.CAPTIONS[name] and len(plots.CAPTIONS[name]) > 50


def test_every_figure(data, tmp_path):
    d = data
    made = {
        "fig1_attention_distribution": plots.fig1_attention_distribution(
            d["attributions"], tmp_path / "fig1_attention_distribution", RATE, N_BINS, 10.0
        ),
        "fig2_shap_heatmap": plots.fig2_shap_heatmap(
            d["attributions"], d["signals"], tmp_path / "fig2_shap_heatmap", RATE
        ),
        "fig3_shap_attention_alignment": plots.fig3_shap_attention_alignment(
            d["attributions"], d["correlations"], tmp_path / "fig3_shap_attention_alignment", RATE, n_examples=3
        ),
        "roc_pr_curves": plots.roc_pr_curves(d["pred"], tmp_path / "roc_pr_curves", top_n=4),
        "training_curves": plots.training_curves(d["history"], tmp_path / "training_curves"),
        "faithfulness_curves": plots.faithfulness_curves(d["curves"], d["aucs"], tmp_path / "faithfulness_curves"),
    }
    for name, paths in made.items():
        check_figure(paths, name)
    check_figure(plots.per_label_bars(d["per_label"], tmp_path / "per_label_bars", n=10), "per_label_bars", 10)
    check_figure(
        plots.error_analysis(d["pred"], d["thresholds"], tmp_path / "error_analysis", top_n=15),
        "error_analysis",
        len(LABELS),
    )
    assert set(plots.FIGSIZES) <= set(plots.CAPTIONS)  # every figure has a caption (tables of the checks too)


def test_figure_inputs_variants(data, tmp_path):
    """Explicit label and label groups, signals as a mapping, thresholds as an array or scalar."""
    d = data
    X, ids = d["signals"]
    paths = plots.fig2_shap_heatmap(
        d["attributions"], {int(e): X[i] for i, e in enumerate(ids)}, tmp_path / "fig2_shap_heatmap", RATE, label="MI"
    )
    check_figure(paths, "fig2_shap_heatmap")
    groups = {"NORM": "NORM", "MI": "MI", "STTC": "STTC"}
    check_figure(
        plots.fig1_attention_distribution(
            d["attributions"], tmp_path / "fig1_attention_distribution", RATE, N_BINS, 10.0, label_groups=groups
        ),
        "fig1_attention_distribution",
    )
    check_figure(plots.error_analysis(d["pred"], 0.5, tmp_path / "error_analysis", top_n=3), "error_analysis", 3)
    with pytest.raises(ValueError, match="attention"):
        plots.fig1_attention_distribution(
            d["attributions"].query("method != 'attention'"), tmp_path / "x", RATE, N_BINS, 10.0
        )


def test_roc_pr_match_definitions():
    from ptbxl_xai.evaluation.metrics import roc_auc_per_label
    from ptbxl_xai.report.plots._common import precision_recall, roc

    rng = np.random.default_rng(1)
    y = rng.random((300, 1)) < 0.3
    s = np.round(rng.random((300, 1)) + 0.3 * y, 2)  # rounded: ties must count once
    assert roc(y[:, 0], s[:, 0])[2] == pytest.approx(roc_auc_per_label(y, s)[0], abs=1e-12)
    recall, precision, ap = precision_recall([1, 0, 1, 0], [0.9, 0.8, 0.7, 0.1])
    assert ap == pytest.approx(0.5 * 1.0 + 0.5 * 2 / 3)


def read_tsv(path) -> pd.DataFrame:
    return pd.read_csv(path, sep="\t", keep_default_na=True, float_precision="round_trip")


def check_table(paths, stem):
    tsv, md, tex = map(Path, paths)
    assert [p.name for p in (tsv, md, tex)] == [f"{stem}.tsv", f"{stem}.md", f"{stem}.tex"]
    assert md.read_text().startswith("| ") and "---" in md.read_text()
    tex_text = tex.read_text()
    assert r"\begin{tabular}" in tex_text and r"\bottomrule" in tex_text
    body = [line for line in tex_text.splitlines() if not line.startswith(r"\label")]
    assert "_" not in "\n".join(body).replace(r"\_", "")  # LaTeX specials escaped
    return read_tsv(tsv)


def exact(a, b) -> bool:
    """Numbers read back from a TSV equal the exact values as printed (ptbxl_xai.outputs.reading_precision)."""
    printed = [float(reading_precision(v)) for v in np.asarray(b, dtype=np.float64)]
    return np.array_equal(np.asarray(a, dtype=np.float64), printed, equal_nan=True)


def test_table1_overall(data, tmp_path):
    out = check_table(tables.table1_overall(data["overall"], data["comparison"], tmp_path / "table1"), "table1")
    ours = out[out.source == "this workflow"].reset_index(drop=True)
    for col in ("value", "ci_low", "ci_high"):
        assert exact(ours[col], data["overall"][col])
    assert list(ours.metric) == list(data["overall"].metric)
    paper = out[out.source.str.startswith("paper")].set_index("metric")["value"]
    assert paper["macro_auc"] == 0.919 and paper["macro_f1"] == 0.369
    md = (tmp_path / "table1.md").read_text()
    assert "0.919" in md and "0.925" in md and "Prior baseline" in md
    v = data["overall"].iloc[0]
    assert f"{v.value:.3f} [{v.ci_low:.3f}, {v.ci_high:.3f}]" in md


def _context(source: str, records: int, comparable: bool) -> dict:
    return {
        "run": "hybrid",
        "architecture": "hybrid",
        "data_source": source,
        "records_used": records,
        "records_of_ptbxl": 21799,
        "test_records": records // 10,
        "label_set": "all",
        "labels_in_set": 60,
        "labels_with_test_positives": 41,
        "split": "holdout: train folds 1-8, validation fold 9, test fold 10",
        "published_comparable": comparable,
        "comparability_note": "complete, checksum-verified PTB-XL" if comparable else "not comparable: partial data",
    }


@pytest.mark.parametrize("source", ["local", "synthetic"])
def test_table1_flags_published_columns_unless_data_are_complete(data, tmp_path, source):
    partial = comparison_table(data["overall"], data["overall"], "all", _context(source, 890, False))
    tables.table1_overall(data["overall"], partial, tmp_path / "partial")
    md = (tmp_path / "partial.md").read_text()
    assert "Paper (not comparable)" in md and "not comparable: partial data" in md
    assert "890 of 21,799 PTB-XL records used" in md and "41 with test positives" in md
    tidy = pd.read_csv(tmp_path / "partial.tsv", sep="\t")
    assert not tidy.loc[tidy.source.str.startswith("paper"), "comparable"].any()
    assert (tidy.records_used == 890).all() and (tidy.model.iloc[0] == "hybrid (run hybrid)")
    full = comparison_table(data["overall"], data["overall"], "all", _context("physionet", 21799, True))
    tables.table1_overall(data["overall"], full, tmp_path / "full")
    md = (tmp_path / "full.md").read_text()
    assert "not comparable" not in md and re.search(r"\|\s*Paper\s*\|", md)


def test_per_label_table(data, tmp_path):
    out = check_table(tables.per_label_table(data["per_label"], tmp_path / "per_label"), "per_label")
    assert list(out.support) == sorted(data["per_label"].support, reverse=True)
    merged = out.merge(data["per_label"], on="label", suffixes=("", "_in"))
    for col in ("support", "prevalence", "auc", "f1", "precision", "recall", "threshold"):
        assert exact(merged[col], merged[f"{col}_in"]), col
    assert out.set_index("label").at["MI", "description"] == "myocardial infarction"
    assert re.search(r"\|\s*Note\s*\|", (tmp_path / "per_label.md").read_text())


def test_per_label_descriptions_from_statements():
    assert tables.label_descriptions(["IMI", "AFIB", "NORM", "XYZ"])["IMI"].startswith("inferior myocardial")
    g = tables.label_groups(["IMI", "AFIB", "LVOLT", "NORM", "LAFB/LPFB", "XYZ"])
    assert g == {"IMI": "MI", "AFIB": "rhythm", "LVOLT": "form", "NORM": "NORM", "LAFB/LPFB": "CD", "XYZ": "other"}


def test_correlation_table(data, tmp_path):
    out = check_table(tables.correlation_table(data["summary"], tmp_path / "corr"), "corr")
    keys = ["method_a", "method_b", "space", "variant", "statistic"]
    merged = out.merge(data["summary"], on=keys, suffixes=("", "_in"))
    assert len(merged) == len(data["summary"])
    for col in ("mean", "median", "ci_low", "ci_high", "n", "n_nan"):
        assert exact(merged[col], merged[f"{col}_in"]), col
    sa = out[(out.method_a == "shap") & (out.method_b == "attention")].set_index(["variant", "statistic"])["paper"]
    assert sa[("abs", "pearson")] == 0.48 and sa[("signed", "spearman")] == 0.60
    assert out.loc[out.method_b != "attention", "paper"].isna().all()
    assert out.iloc[0].method_a == "shap" and out.iloc[0].method_b == "attention"


def test_faithfulness_table(data, tmp_path):
    out = check_table(tables.faithfulness_table(data["aucs"], tmp_path / "faith"), "faith")
    expected = data["aucs"].groupby(["method", "kind"])["auc"].mean()
    got = out.set_index(["method", "kind"])["mean"]
    assert exact(got.loc[expected.index], expected)
    assert exact(out["mean"], tables.faithfulness_summary(data["aucs"])["mean"])
    best = out[out.best].set_index("kind")["method"]
    assert best["deletion"] == "shap" and best["insertion"] == "shap"  # steepest synthetic curves
    md = (tmp_path / "faith.md").read_text()
    assert "bins: most faithful by deletion AUC (lower is better): shap" in md


def test_faithfulness_table_says_which_space_is_more_faithful(data, tmp_path):
    bins = data["aucs"].assign(feature_space="bins")
    # the same record-labels on waves, where every method but random gains 0.1 insertion AUC
    waves = bins.assign(
        feature_space="waves",
        auc=np.where((bins.kind == "insertion") & (bins.method != "random"), bins.auc + 0.1, bins.auc),
    )
    aucs = pd.concat([waves, bins], ignore_index=True)
    comp = tables.space_comparison(aucs)
    assert set(comp.method) == set(bins.method) - {"random"}
    assert (comp.more_faithful == "waves").all() and (comp.ci_low > 0).all()
    np.testing.assert_allclose(comp.difference, 0.1, rtol=1e-9)
    # a difference that averages to 0 over records (+0.05 on half of them, -0.05 on the others) names no winner
    ids = np.sort(bins.ecg_id.unique())
    sign = np.where(np.isin(bins.ecg_id, ids[::2]), 1.0, -1.0)
    bump = np.where((bins.kind == "insertion") & (bins.method != "random"), 0.05 * sign, 0.0)
    tie = tables.space_comparison(pd.concat([bins.assign(feature_space="waves", auc=bins.auc + bump), bins]))
    assert (tie.ci_low < 0).all() and (tie.ci_high > 0).all() and (tie.more_faithful == "neither").all()
    out = check_table(tables.faithfulness_table(aucs, tmp_path / "faith2"), "faith2")
    assert set(out.feature_space) == {"waves", "bins"}
    md = (tmp_path / "faith2.md").read_text()
    assert "shap: waves is the more faithful space" in md


def test_median_beats_are_referred_to_each_records_pr_baseline():
    """Pooled beats show ST/T relative to the isoelectric PR segment, whatever offset a record carries."""
    from ptbxl_xai.explain.spaces.features import FIDUCIALS
    from ptbxl_xai.report.plots.beats import BEFORE_S, record_median_beat

    rate, T = 100, 1000
    r = np.arange(50, 950, 80)
    beats = np.stack([r + d for d in (-20, -12, -4, 0, 4, 14, 30)], axis=1)  # FIDUCIALS order
    x = np.zeros((12, T), np.float32)
    for k in r:
        x[:, k - 4 : k + 5] += 1.0  # QRS
        x[:, k + 8 : k + 14] += 0.2  # ST elevation of 0.2 mV
    offset = np.linspace(-0.5, 0.5, 12, dtype=np.float32)[:, None]
    clean, fid = record_median_beat(x, beats, rate)
    shifted, _ = record_median_beat(x + offset, beats, rate)
    np.testing.assert_allclose(shifted, clean, atol=1e-6)
    pre = int(round(BEFORE_S * rate))
    st = pre + 10  # 100 ms after R
    assert clean[:, st] == pytest.approx(np.full(12, 0.2)) and fid[FIDUCIALS.index("r")] == pre
