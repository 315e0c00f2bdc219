"""Training loop, prediction and the training configuration.

Data contract: X float32 [n, n_leads, T], Y multi-hot [n, C] (uint8 or float).
Arrays stay in memory as numpy; batches are sliced from zero-copy torch views,
so no DataLoader workers are needed (and CPU runs stay deterministic).
"""

from __future__ import annotations

import copy
import dataclasses
import logging
import random
import sys
import time
import warnings
from dataclasses import dataclass
from typing import Mapping, Optional

import numpy as np
import pandas as pd
import torch
from torch import nn
from torch.utils.data import WeightedRandomSampler
from tqdm import tqdm  # plain text bars on stderr (tqdm.auto would pick a notebook widget)

from ptbxl_xai.evaluation.metrics import macro_auc
from ptbxl_xai.model.losses import make_loss

logger = logging.getLogger(__name__)

HISTORY_COLUMNS = ["epoch", "train_loss", "val_loss", "val_macro_auc", "lr", "seconds"]


@dataclass
class TrainConfig:
    epochs: int = 30
    batch_size: int = 64
    lr: float = 1e-3
    weight_decay: float = 1e-2
    loss: str = "focal"  # "focal" | "bce"
    focal_gamma: float = 2.0
    focal_alpha: Optional[float] = None
    weighted_sampling: bool = True  # WeightedRandomSampler with sample_weights(Y_train)
    sampling_power: float = 1.0  # weights ** power: 1 = inverse frequency, 0.5 = its square root (tempered)
    sampling_cap: Optional[float] = None  # no record drawn more than cap x the mean weight (None: no cap)
    grad_clip: Optional[float] = 1.0  # max global grad norm; None/0 disables
    patience: Optional[int] = 5  # early stopping on val macro AUC; None/0 disables
    lr_patience: int = 2  # ReduceLROnPlateau on val macro AUC
    lr_factor: float = 0.5
    min_lr: float = 1e-5
    amp: bool = True  # mixed precision, used on CUDA only
    seed: int = 0
    num_threads: Optional[int] = None  # torch.set_num_threads during training; None keeps torch's setting
    device: str = "auto"  # "auto" | "cpu" | "cuda"

    @classmethod
    def from_dict(cls, d: Optional[Mapping]) -> "TrainConfig":
        """Build from a plain dict (e.g. YAML); unknown keys are an error rather than silently ignored."""
        d = dict(d or {})
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise ValueError(f"unknown training options {unknown}; allowed: {sorted(names)}")
        return cls(**d)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def resolve_device(name: str = "auto") -> torch.device:
    """ "auto" -> cuda if available else cpu; "cuda" without a GPU is an error, not a silent CPU run."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise RuntimeError(
                f"device {name!r} requested but CUDA is not available "
                f"(torch {torch.__version__}, CUDA build: {torch.version.cuda}); use 'cpu' or 'auto'"
            )
        return torch.device(name)
    if name == "cpu":
        return torch.device("cpu")
    raise ValueError(f"unknown device {name!r}; expected 'auto', 'cpu' or 'cuda'")


def set_seed(seed: int) -> None:
    """Seed Python, numpy and torch (all devices)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def sample_weights(Y: np.ndarray, power: float = 1.0, cap: Optional[float] = None) -> np.ndarray:
    """Per-record sampling weight from inverse label frequencies, normalised to mean 1.

    Tempering, so that a rare label's few records are not drawn many times per epoch: the weights
    are raised to `power` (0 = uniform, 1 = inverse frequency) and then clipped at `cap` times
    their mean (repeatedly, as clipping lowers the mean) before the final normalisation.

    A record's weight is the max of 1/freq over its positive labels, so a record
    carrying a rare label is drawn as often as that rarest label calls for
    (a mean would dilute it with its common co-labels). Records without any
    label get the smallest label weight (that of the most frequent label): they
    are kept as negatives for every label but there is no minority to boost.
    """
    Y = np.asarray(Y) > 0
    if Y.ndim != 2 or len(Y) == 0:
        raise ValueError(f"Y must be a non-empty [n, C] array, got shape {Y.shape}")
    freq = Y.mean(0)
    if not freq.any():
        return np.ones(len(Y))
    inv = np.where(freq > 0, 1.0 / np.maximum(freq, 1e-12), 0.0)
    w = (Y * inv).max(1)
    w[~Y.any(1)] = inv[freq > 0].min()
    w = (w / w.mean()) ** float(power)
    w /= w.mean()
    if cap is not None:
        if cap < 1:
            raise ValueError(f"sampling_cap must be >= 1 (times the mean weight), got {cap}")
        for _ in range(100):  # clipping lowers the mean; a few rounds reach the fixed point
            if w.max() <= cap * w.mean() * (1 + 1e-9):
                break
            w = np.minimum(w, cap * w.mean())
    return w / w.mean()


def _as_tensor(a: np.ndarray) -> torch.Tensor:
    """Zero-copy view when the array already is contiguous float32 (the data contract).

    Read-only arrays (np.load(..., mmap_mode="r")) are fine: batches are only
    ever read, so torch's "not writable" warning is silenced rather than copying.
    """
    a = np.ascontiguousarray(a, dtype=np.float32)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
        return torch.from_numpy(a)


def _batched_forward(model: nn.Module, X: torch.Tensor, batch_size: int, device: torch.device):
    """Yield (logits, attention) per batch; callers set eval mode and inference_mode."""
    for a in range(0, len(X), batch_size):
        xb = X[a : a + batch_size].to(device, non_blocking=True)
        yield model(xb)


def predict(
    model: nn.Module, X: np.ndarray, batch_size: int = 256, device: str = "auto"
) -> tuple[np.ndarray, np.ndarray]:
    """Sigmoid probabilities [n, C] and attention weights [n, T'], both float32."""
    dev = resolve_device(device) if isinstance(device, str) else device
    was_training = model.training
    model.to(dev).eval()
    probs, att = [], []
    with torch.inference_mode():
        for logits, a in _batched_forward(model, _as_tensor(X), batch_size, dev):
            probs.append(torch.sigmoid(logits.float()).cpu())
            att.append(a.float().cpu())
    model.train(was_training)
    if not probs:
        raise ValueError("predict() got no records")
    return torch.cat(probs).numpy(), torch.cat(att).numpy()


def _evaluate_epoch(model, X, Y, loss_fn, batch_size, device) -> tuple[float, float]:
    """(validation loss, validation macro AUC over the labels having both classes)."""
    model.eval()
    total, logits_all = 0.0, []
    with torch.inference_mode():
        for a, (logits, _) in zip(range(0, len(X), batch_size), _batched_forward(model, X, batch_size, device)):
            yb = Y[a : a + batch_size].to(device)
            total += float(loss_fn(logits.float(), yb)) * len(yb)
            logits_all.append(logits.float().cpu())
    probs = torch.sigmoid(torch.cat(logits_all)).numpy()
    auc, _ = macro_auc(Y.numpy(), probs)
    return total / len(X), auc


def train_model(
    model: nn.Module, X_train, Y_train, X_val, Y_val, cfg: Optional[TrainConfig] = None, progress: bool = True
) -> tuple[nn.Module, pd.DataFrame]:
    """Train with AdamW; select, schedule and early-stop on validation macro AUC.

    Validation macro AUC averages over the labels that have both classes in the
    validation fold (a single-class label has no AUC); if no label qualifies the
    run is refused up front, as there would be nothing to select on.
    Returns the model (best-epoch weights restored, eval mode) and the history.
    On CPU two runs with the same seed give identical history and weights.
    """
    cfg = cfg or TrainConfig()
    if cfg.epochs < 1 or cfg.batch_size < 1:
        raise ValueError("epochs and batch_size must be >= 1")
    if len(X_train) != len(Y_train) or len(X_val) != len(Y_val):
        raise ValueError("X and Y must have the same number of records")
    Yv = np.asarray(Y_val) > 0
    if not (Yv.any(0) & ~Yv.all(0)).any():
        raise ValueError(
            "no label has both positives and negatives in the validation set; "
            "validation macro AUC (the model-selection criterion) is undefined"
        )

    device = resolve_device(cfg.device)
    old_threads = torch.get_num_threads()
    if cfg.num_threads:
        torch.set_num_threads(int(cfg.num_threads))
    set_seed(cfg.seed)
    try:
        return _train(model, X_train, Y_train, X_val, Y_val, cfg, device, progress)
    finally:
        torch.set_num_threads(old_threads)  # torch's thread count is process-wide: leave it as found


def _train(model, X_train, Y_train, X_val, Y_val, cfg: TrainConfig, device, progress):
    model.to(device)
    Xt, Yt = _as_tensor(X_train), _as_tensor(Y_train)
    Xv, Yv = _as_tensor(X_val), _as_tensor(Y_val)
    n = len(Xt)

    loss_fn = make_loss(cfg.loss, gamma=cfg.focal_gamma, alpha=cfg.focal_alpha).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.ReduceLROnPlateau(
        opt, mode="max", factor=cfg.lr_factor, patience=cfg.lr_patience, min_lr=cfg.min_lr
    )
    use_amp = bool(cfg.amp) and device.type == "cuda"  # CPU autocast (bf16) would be slower and less exact
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp)
    gen = torch.Generator().manual_seed(cfg.seed)  # drives the sampling order only
    if cfg.weighted_sampling:
        w = torch.as_tensor(sample_weights(Y_train, cfg.sampling_power, cfg.sampling_cap), dtype=torch.double)
        sampler = WeightedRandomSampler(w, num_samples=n, replacement=True, generator=gen)
    else:
        sampler = None

    best_auc, best_state, best_epoch, bad = -np.inf, None, 0, 0
    rows = []
    epochs = tqdm(range(1, cfg.epochs + 1), desc="epochs", file=sys.stderr, disable=not progress, dynamic_ncols=True)
    for epoch in epochs:
        t0 = time.perf_counter()
        lr = opt.param_groups[0]["lr"]
        order = torch.tensor(list(sampler)) if sampler is not None else torch.randperm(n, generator=gen)
        model.train()
        total = 0.0
        batches = tqdm(
            range(0, n, cfg.batch_size),
            desc=f"epoch {epoch}",
            file=sys.stderr,
            leave=False,
            disable=not progress,
            dynamic_ncols=True,
        )
        for a in batches:
            idx = order[a : a + cfg.batch_size]
            xb, yb = Xt[idx].to(device, non_blocking=True), Yt[idx].to(device, non_blocking=True)
            opt.zero_grad(set_to_none=True)
            with torch.autocast(device_type=device.type, enabled=use_amp):
                logits, _ = model(xb)
            loss = loss_fn(logits.float(), yb)
            scaler.scale(loss).backward()
            if cfg.grad_clip:
                scaler.unscale_(opt)  # clip the true gradients, not the scaled ones
                torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
            scaler.step(opt)
            scaler.update()
            loss_value = float(loss.detach())
            total += loss_value * len(idx)
            batches.set_postfix(loss=f"{loss_value:.4f}", refresh=False)
        train_loss = total / n

        val_loss, val_auc = _evaluate_epoch(model, Xv, Yv, loss_fn, max(256, cfg.batch_size), device)
        sched.step(val_auc)
        seconds = time.perf_counter() - t0
        rows.append(
            dict(epoch=epoch, train_loss=train_loss, val_loss=val_loss, val_macro_auc=val_auc, lr=lr, seconds=seconds)
        )
        improved = val_auc > best_auc
        if improved:
            best_auc, best_epoch, bad = val_auc, epoch, 0
            best_state = copy.deepcopy(model.state_dict())
        else:
            bad += 1
        logger.info(
            "epoch %d/%d train_loss=%.4f val_loss=%.4f val_macro_auc=%.4f lr=%.2e %.1fs%s",
            epoch,
            cfg.epochs,
            train_loss,
            val_loss,
            val_auc,
            lr,
            seconds,
            " *" if improved else "",
        )
        epochs.set_postfix(val_auc=f"{val_auc:.4f}", best=f"{best_auc:.4f}", refresh=False)
        if cfg.patience and bad >= cfg.patience:
            logger.info(
                "early stopping after epoch %d: no val macro AUC gain for %d epochs (best %.4f at epoch %d)",
                epoch,
                bad,
                best_auc,
                best_epoch,
            )
            break
    epochs.close()

    model.load_state_dict(best_state)
    model.eval()
    logger.info("restored weights of epoch %d (val macro AUC %.4f)", best_epoch, best_auc)
    return model, pd.DataFrame(rows, columns=HISTORY_COLUMNS)
