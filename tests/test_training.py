"""Losses, sampling weights, the training loop (determinism, best-weight restore, learning) and predict."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from ptbxl_xai.evaluation.metrics import macro_auc
from ptbxl_xai.model.hybrid import HybridECGNet
from ptbxl_xai.model.losses import FocalLoss, make_loss
from ptbxl_xai.model.training import HISTORY_COLUMNS, TrainConfig, predict, resolve_device, sample_weights, train_model

TINY = dict(conv_channels=(8, 8), kernel_sizes=(5, 5), pool_sizes=(4, 4), lstm_hidden=8, attention_dim=8)


# ---------------------------------------------------------------- losses
def test_focal_gamma0_equals_bce():
    torch.manual_seed(0)
    logits = torch.randn(64, 5) * 4
    y = (torch.rand(64, 5) > 0.6).float()
    fl = FocalLoss(gamma=0.0, alpha=None)
    torch.testing.assert_close(fl(logits, y), F.binary_cross_entropy_with_logits(logits, y), rtol=0, atol=1e-7)
    # extreme logits stay finite (BCE-with-logits is the stable core)
    big = torch.tensor([[100.0, -100.0]])
    assert torch.isfinite(FocalLoss(gamma=2.0)(big, torch.tensor([[0.0, 1.0]])))


def test_focal_down_weights_easy_examples():
    y = torch.ones(1, 2)
    logits = torch.tensor([[4.0, -1.0]])  # first easy (p=0.98), second hard (p=0.27)
    bce = F.binary_cross_entropy_with_logits(logits, y, reduction="none")
    fl = FocalLoss(gamma=2.0, reduction="none")(logits, y)
    ratio = fl / bce
    assert (fl < bce).all() and ratio[0, 0] < ratio[0, 1] / 10
    p = torch.sigmoid(logits)
    torch.testing.assert_close(fl, (1 - p) ** 2 * bce)
    # alpha weights positives by alpha and negatives by 1 - alpha
    fa = FocalLoss(gamma=0.0, alpha=0.25, reduction="none")
    torch.testing.assert_close(fa(logits, y), 0.25 * bce)
    torch.testing.assert_close(
        fa(logits, 1 - y), 0.75 * F.binary_cross_entropy_with_logits(logits, 1 - y, reduction="none")
    )
    assert FocalLoss(reduction="sum")(logits, y) == pytest.approx(float(fl.sum()))


def test_make_loss():
    assert isinstance(make_loss("focal", gamma=1.0, alpha=0.5), FocalLoss)
    assert isinstance(make_loss("bce", pos_weight=[1.0, 2.0]), torch.nn.BCEWithLogitsLoss)
    with pytest.raises(ValueError):
        make_loss("mse")


# ---------------------------------------------------------------- config, device, weights
def test_config_and_device():
    cfg = TrainConfig.from_dict({"epochs": 3, "lr": 0.01})
    assert cfg.epochs == 3 and TrainConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ValueError, match="unknown training options"):
        TrainConfig.from_dict({"epoch": 3})
    assert resolve_device("cpu").type == "cpu"
    with pytest.raises(ValueError):
        resolve_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError, match="CUDA is not available"):
            resolve_device("cuda")


def test_sample_weights():
    Y = np.array([[1, 0, 0]] * 6 + [[1, 1, 0]] * 2 + [[0, 0, 1]] + [[0, 0, 0]], dtype=np.uint8)
    w = sample_weights(Y)
    assert w.shape == (10,) and w.mean() == pytest.approx(1.0)
    freq = Y.mean(0)  # 0.8, 0.2, 0.1
    assert w[8] / w[0] == pytest.approx(freq[0] / freq[2])  # rarest label
    assert w[6] / w[0] == pytest.approx(freq[0] / freq[1])  # max over its labels
    assert w[9] == pytest.approx(w[0])  # no label -> weight of the most frequent label


# ---------------------------------------------------------------- training
def _random_data(n, T, C, seed):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 12, T)).astype(np.float32)
    Y = (rng.random((n, C)) < 0.4).astype(np.uint8)
    X[:, 0] += Y[:, :1] * 0.5  # a weak signal so the AUC moves between epochs
    return X, Y


def test_cpu_training_is_deterministic_and_restores_best():
    Xtr, Ytr = _random_data(96, 256, 3, 0)
    Xv, Yv = _random_data(48, 256, 3, 1)
    cfg = TrainConfig(epochs=3, batch_size=16, lr=3e-3, seed=7, num_threads=2, device="cpu", patience=None)
    runs = []
    for _ in range(2):
        torch.manual_seed(123)  # same init; train_model seeds everything else from cfg.seed
        model, hist = train_model(HybridECGNet(n_classes=3, **TINY), Xtr, Ytr, Xv, Yv, cfg, progress=False)
        runs.append((model, hist))
    (m1, h1), (m2, h2) = runs
    assert list(h1.columns) == HISTORY_COLUMNS and len(h1) == 3
    cols = [c for c in HISTORY_COLUMNS if c != "seconds"]
    assert h1[cols].equals(h2[cols])
    s1, s2 = m1.state_dict(), m2.state_dict()
    assert all(torch.equal(s1[k], s2[k]) for k in s1)
    # the returned weights are those of the best validation epoch
    probs, att = predict(m1, Xv, batch_size=32, device="cpu")
    assert probs.dtype == np.float32 and att.dtype == np.float32
    assert probs.shape == (48, 3) and att.shape == (48, m1.time_steps(256))
    np.testing.assert_allclose(att.sum(1), 1, atol=1e-5)
    assert macro_auc(Yv, probs)[0] == pytest.approx(h1.val_macro_auc.max(), abs=1e-6)


def test_training_options_and_validation_guard():
    Xtr, Ytr = _random_data(40, 128, 2, 2)
    Xv, Yv = _random_data(20, 128, 2, 3)
    cfg = TrainConfig(
        epochs=2,
        batch_size=16,
        loss="bce",
        weighted_sampling=False,
        grad_clip=None,
        patience=1,
        device="cpu",
        num_threads=1,
    )
    _, hist = train_model(HybridECGNet(n_classes=2, **TINY), Xtr, Ytr, Xv, Yv, cfg, progress=False)
    assert 1 <= len(hist) <= 2 and np.isfinite(hist[["train_loss", "val_loss", "val_macro_auc"]].values).all()
    Yv[:] = 1  # every label single-class in validation: nothing to select on
    with pytest.raises(ValueError, match="validation"):
        train_model(HybridECGNet(n_classes=2, **TINY), Xtr, Ytr, Xv, Yv, cfg, progress=False)


def _synthetic_ecg(n, seed, T=1000):
    """Noise plus one pattern per label: 8 Hz sine on all leads, sharp bumps on
    leads 0-5 at random positions, 1.5 Hz square wave on leads 6-11."""
    rng = np.random.default_rng(seed)
    Y = (rng.random((n, 3)) < 0.4).astype(np.uint8)
    t = np.arange(T) / 100.0
    X = rng.normal(0.0, 1.0, (n, 12, T)).astype(np.float32)
    phase = rng.uniform(0, 2 * np.pi, (n, 1, 1))
    X += 0.5 * Y[:, 0, None, None] * np.sin(2 * np.pi * 8 * t + phase).astype(np.float32)
    for i in np.flatnonzero(Y[:, 1]):
        centres = rng.integers(50, T - 50, 6)
        X[i, :6] += 1.5 * np.exp(-0.5 * ((np.arange(T)[None] - centres[:, None]) / 4.0) ** 2).sum(0)
    X[:, 6:] += 0.5 * Y[:, 2, None, None] * np.sign(np.sin(2 * np.pi * 1.5 * t + phase)).astype(np.float32)
    return X, Y


def test_default_model_learns_synthetic_problem():
    Xtr, Ytr = _synthetic_ecg(256, 0)
    Xv, Yv = _synthetic_ecg(128, 1)
    cfg = TrainConfig(epochs=3, batch_size=32, lr=3e-3, seed=0, num_threads=2, device="cpu", patience=None)
    model, hist = train_model(HybridECGNet(n_classes=3), Xtr, Ytr, Xv, Yv, cfg, progress=False)
    assert hist.val_macro_auc.max() > 0.85, hist
    probs, _ = predict(model, Xv, device="cpu")
    assert macro_auc(Yv, probs)[0] > 0.85


def test_sampling_weights_tempered_by_power_and_cap():
    rng = np.random.default_rng(0)
    Y = (rng.random((500, 6)) < np.array([0.5, 0.3, 0.1, 0.05, 0.02, 0.004])).astype(np.uint8)
    raw = sample_weights(Y)
    root = sample_weights(Y, power=0.5)
    np.testing.assert_allclose(root, raw**0.5 / (raw**0.5).mean())
    np.testing.assert_allclose(sample_weights(Y, power=0.0), np.ones(len(Y)))
    capped = sample_weights(Y, cap=3.0)
    assert capped.max() <= 3.0 * (1 + 1e-8) and raw.max() > 3.0  # the fixed point is reached to 1e-9 relative
    assert capped.mean() == pytest.approx(1.0)
    # ordering survives tempering: a rarer label's records are still drawn more often
    assert np.all(np.diff(capped[np.argsort(raw, kind="stable")]) >= -1e-12)
    with pytest.raises(ValueError):
        sample_weights(Y, cap=0.5)
