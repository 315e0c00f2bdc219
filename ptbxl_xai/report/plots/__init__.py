"""Figures of the paper (and more) from the workflow's outputs.

Each function takes data frames / prediction dicts, writes `<out_stem>.png` (150 dpi) and
`<out_stem>.pdf` and returns both paths. Name the stems after the functions
(e.g. results/figures/{run}/fig1_attention_distribution) so `caption(stem)` finds the text.
Figures are drawn on Agg canvases without pyplot: nothing stays open, any backend works.
"""

from __future__ import annotations

from pathlib import Path

from ptbxl_xai.report.plots._common import DPI, FIGSIZES, figsize
from ptbxl_xai.report.plots.beats import beat_attribution
from ptbxl_xai.report.plots.checks import (
    CHECK_CAPTIONS,
    expert_rule_alignment,
    randomisation_cascade,
    rule_deletion_probe,
)
from ptbxl_xai.report.plots.counterfactuals import COUNTERFACTUAL_CAPTIONS, counterfactual_examples
from ptbxl_xai.report.plots.delineation import delineation_examples
from ptbxl_xai.report.plots.explanations import (
    faithfulness_curves,
    fig1_attention_distribution,
    fig2_shap_heatmap,
    fig3_shap_attention_alignment,
)
from ptbxl_xai.report.plots.known_answer import KNOWN_ANSWER_CAPTIONS, localisation_figure
from ptbxl_xai.report.plots.performance import (
    error_analysis,
    per_label_bars,
    reliability_diagram,
    roc_pr_curves,
    training_curves,
)

__all__ = [
    "beat_attribution",
    "counterfactual_examples",
    "fig1_attention_distribution",
    "fig2_shap_heatmap",
    "fig3_shap_attention_alignment",
    "roc_pr_curves",
    "training_curves",
    "per_label_bars",
    "error_analysis",
    "reliability_diagram",
    "faithfulness_curves",
    "delineation_examples",
    "expert_rule_alignment",
    "rule_deletion_probe",
    "randomisation_cascade",
    "localisation_figure",
    "CAPTIONS",
    "caption",
    "DPI",
    "FIGSIZES",
    "figsize",
]

CAPTIONS = {
    "fig1_attention_distribution": "Figure 1. Attention weights of the BiLSTM attention layer mapped onto the equal time bins of the 10-s "
    "record (each record's weights sum to 1; dashed line: uniform attention). (a) Distribution over all "
    "explained test records (boxes: quartiles, whiskers: 1.5 IQR). (b) Mean per label group (diagnostic "
    "superclass of the explained label, or rhythm/form statements) with 95% bootstrap intervals; a record "
    "counts once per group. Caveat: a bin's weight is the attention of the LSTM steps overlapping it, normalised "
    "by how many steps cover the bin; each BiLSTM state depends on the whole record (both directions), so a high "
    "weight marks where the model reads its summary, not evidence that lies in that bin alone.",
    "fig2_shap_heatmap": "Figure 2. Permutation SHAP attributions per lead and time bin, averaged over the test records explained "
    "for one label (by default the most often explained). Red bins raise, blue bins lower the predicted "
    "probability (colour scale symmetric around 0). Above: the records' z-scored lead II on the same time "
    "axis (grey) and their mean (blue); records are not beat-aligned, so the mean mainly shows shared "
    "structure.",
    "fig3_shap_attention_alignment": "Figure 3. Agreement of SHAP and attention over time. Left: records with the highest, median and lowest "
    "SHAP-attention Pearson correlation; bars: absolute SHAP summed over the 12 leads per bin, line: attention "
    "weight; shaded: bins in the top 20% of both. Right: per record-label Pearson and Spearman correlations "
    "(violin and points), our medians (black) and the paper's 0.48 and 0.60 (dashed).",
    "roc_pr_curves": "ROC (left) and precision-recall (right) curves on the test fold for the most frequent labels; legend: "
    "ROC AUC with the number of positive records, average precision with the prevalence (dotted lines: "
    "precision of a random classifier).",
    "training_curves": "Training history (the holdout model; under crossval the fold-10 model): focal loss on the training folds and the validation fold (9), validation macro ROC AUC "
    "and the learning rate per epoch; the dotted line marks the epoch with the best validation AUC, whose "
    "weights are kept.",
    "per_label_bars": "Labels with the highest (left) and lowest (right) test ROC AUC; n is the number of positive test records. "
    "Low-support labels have wide uncertainty; labels without positives or negatives have no AUC and are left "
    "out.",
    "error_analysis": "Error analysis at the validation-tuned thresholds. (a) Labels with the most errors on the test fold, "
    "split into missed positives (FN) and false alarms (FP). (b) For the most frequent false positives (rows), "
    "the true labels of those records (columns): cell = number of test records where the row label was "
    "predicted while the column label was present; empty cells are 0.",
    "reliability_diagram": "Calibration (reliability diagram): test records' predicted probabilities in 10 equal-width "
    "bins against the observed frequency of the label in each bin; on the dashed diagonal a probability means what it "
    "says. Left: every record-label pair pooled (point area and number: pairs in the bin); right: the most frequent "
    "labels. Brier score: mean squared error of the probabilities; ECE (expected calibration error): bin-size-"
    "weighted gap between mean probability and observed frequency, per label and averaged over the labels with test "
    "positives. Weighted sampling and focal loss shift probabilities, so tuned thresholds, not 0.5, are used for F1.",
    "faithfulness_curves": "Deletion and insertion curves, one row per feature space (waves: lead x P/PR/QRS/ST/T/TP; "
    "bins: lead x time bins): the predicted probability of the explained label as the most important "
    "features (by each method's ranking) are replaced by the background (deletion) or restored onto it "
    "(insertion). Lines: mean over explained record-label pairs, bands: 95% intervals; legend: mean area "
    "under the curve. A faithful map falls fast under deletion (low AUC) and rises fast under insertion "
    "(high AUC); 'random' is a random ranking.",
    **{
        f"beat_attribution_{m}": f"Figure 2 on the beat ({label}). For each label (rows, most often explained first; n: "
        "test records explained for it on wave features) and lead (columns): the median beat of those records "
        "(R-aligned, median over beats then records; in mV where the data carry the scale; each record's beat "
        "referred to its PR segment, the dotted 0 line; one amplitude scale per row), each wave segment "
        f"(P, PR, QRS, ST, T, TP) shaded by the mean {label} of that lead and segment over the records. "
        + (
            "Red raises, blue lowers the label's probability (scale symmetric around 0)."
            if m != "attention"
            else "Attention has no lead axis, so the shading repeats over leads; it is the mean attention of the "
            "LSTM steps covering each segment."
        )
        for m, label in (
            ("shap", "permutation SHAP value"),
            ("lime", "LIME weight"),
            ("attention", "attention weight"),
        )
    },
    "delineation_examples": "Delineated example records (rule delineate): the filtered signal in mV (leads II, V2 and V5, "
    "first 5 s) with each beat's global P wave (green), QRS complex (blue) and T wave (orange) shaded from "
    "onset to offset and the R peaks dashed. Boundaries are global over the 12 leads (CSE convention: "
    "earliest onset, latest offset), so one span covers every lead. Rows: a record with the median heart "
    "rate, the widest QRS, the most irregular rhythm, and a record that could not be delineated (with its "
    "reason) or the least completely delineated one. The title gives the method, the sampling rate and how "
    "many of the preprocessed records were delineated; each row's title gives the record's summary line "
    "(heart rate, RR coefficient of variation, median QRS, PR and QT durations).",
}

CAPTIONS.update(CHECK_CAPTIONS)  # expert-rule and sanity checks (figures and their tables)
CAPTIONS.update(COUNTERFACTUAL_CAPTIONS)  # rule counterfactuals (its figure and table)
CAPTIONS.update(KNOWN_ANSWER_CAPTIONS)  # the known-answer benchmark (its figure and table share the caption)


def caption(out_stem) -> str:
    """Caption of a figure from its stem or path (e.g. 'results/figures/r/fig2_shap_heatmap.png')."""
    name = Path(out_stem).name
    for ext in (".png", ".pdf"):
        name = name.removesuffix(ext)
    return CAPTIONS[name]
