"""Per-label decision thresholds tuned for F1 (on the validation fold).

Convention shared with ptbxl_xai.evaluation.metrics: a label is predicted iff prob >= threshold.
"""

from __future__ import annotations

import numpy as np

DEFAULT_GRID = np.linspace(0.05, 0.95, 91)
UNTUNED = 0.5  # labels without a validation positive


def grid_decimals(grid: np.ndarray) -> int:
    """Decimals that state every grid value exactly (0.01 steps -> 2): linspace leaves float noise."""
    for decimals in range(12):
        if np.allclose(np.round(grid, decimals), grid, rtol=0, atol=1e-9):
            return decimals
    return 12


def f1_over_grid(y_true: np.ndarray, probs: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """F1 of every label at every grid threshold -> [C, G] (0 where TP+FP+FN = 0)."""
    y = np.asarray(y_true) > 0
    p = np.asarray(probs, dtype=np.float64)
    grid = np.asarray(grid, dtype=np.float64)
    n, C = y.shape
    out = np.empty((C, grid.size))
    # chunk labels so the [n, c, G] boolean cube stays around 50 MB
    step = max(1, int(5e7 // max(1, n * grid.size)))
    for a in range(0, C, step):
        pred = p[:, a : a + step, None] >= grid  # [n, c, G]
        tp = (pred & y[:, a : a + step, None]).sum(0)
        denom = pred.sum(0) + y[:, a : a + step].sum(0)[:, None]  # 2TP + FP + FN = n_pred + n_pos
        out[a : a + step] = np.divide(2.0 * tp, denom, out=np.zeros(tp.shape), where=denom > 0)
    return out


def tune_thresholds(y_true: np.ndarray, probs: np.ndarray, grid: np.ndarray = DEFAULT_GRID) -> np.ndarray:
    """Per-label threshold from `grid` maximising F1; ties go to the lowest threshold.

    Labels with no positive in y_true get 0.5: F1 there can only be 0 (or
    undefined), so any tuned value would be arbitrary.
    """
    y = np.asarray(y_true) > 0
    if y.ndim != 2 or np.shape(probs) != y.shape:
        raise ValueError(f"y_true and probs must both be [n, C]; got {y.shape} and {np.shape(probs)}")
    grid = np.asarray(grid, dtype=np.float64)
    f1 = f1_over_grid(y, probs, grid)
    thr = grid[np.argmax(f1, axis=1)]  # argmax returns the first maximum
    thr[~y.any(axis=0)] = UNTUNED
    # the grid values as written (0.47, not 0.4699999999999999); predictions use the same numbers
    return np.round(thr, grid_decimals(grid)).astype(np.float64)


def write_thresholds(path, *, thresholds, label_names, label_set: str, tuned_on_folds) -> None:
    """thresholds.json: the label set, the folds tuned on and one threshold per label (grid values)."""
    from ptbxl_xai.outputs import write_json

    write_json(
        path,
        {
            "label_set": label_set,
            "tuned_on_folds": [int(f) for f in tuned_on_folds],
            "thresholds": dict(zip(label_names, map(float, thresholds))),
        },
    )


def _ordered(tuned: dict, label_names, where) -> np.ndarray:
    missing = [n for n in label_names if n not in tuned]
    if missing:
        raise ValueError(f"{where}: no threshold for label(s) {missing[:5]}")
    return np.array([tuned[n] for n in label_names], dtype=np.float64)


def read_thresholds(path, label_names, test_fold=None) -> np.ndarray:
    """Per-label thresholds from a train rule's thresholds.json, in `label_names` order -> [C].

    A pooled cross-validation file (`thresholds_per_fold`, from ptbxl_xai.evaluation.crossval) gives
    each record the thresholds of the model that predicted it: pass the records' `test_fold`
    to get [n, C].
    """
    import json

    with open(path) as f:
        data = json.load(f)
    if "thresholds_per_fold" not in data:
        return _ordered(data["thresholds"], label_names, path)
    if test_fold is None:
        raise ValueError(f"{path}: per-fold thresholds need the records' test folds")
    per_fold = {int(k): _ordered(v, label_names, f"{path} fold {k}") for k, v in data["thresholds_per_fold"].items()}
    folds = np.asarray(test_fold, dtype=np.int64)
    unknown = sorted(set(folds.tolist()) - set(per_fold))
    if unknown:
        raise ValueError(f"{path}: no thresholds for test fold(s) {unknown}")
    return np.stack([per_fold[int(k)] for k in folds]) if len(folds) else np.empty((0, len(label_names)))
