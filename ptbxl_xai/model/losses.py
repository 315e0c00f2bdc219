"""Multi-label losses: sigmoid focal loss (Lin et al. 2017) and plain BCE."""

from __future__ import annotations

from typing import Optional, Sequence, Union

import torch
import torch.nn.functional as F
from torch import nn

REDUCTIONS = ("mean", "sum", "none")


class FocalLoss(nn.Module):
    """Sigmoid focal loss for multi-label logits, element-wise over [B, C].

    FL = alpha_t * (1 - p_t)^gamma * BCE(logit, y), where p_t is the model's
    probability of the true class. The BCE term comes from
    binary_cross_entropy_with_logits (log-sum-exp stable), so gamma=0 and
    alpha=None give exactly BCE-with-logits. alpha (when set) weighs positives
    by alpha and negatives by 1 - alpha. "mean" averages over all B*C elements.
    """

    def __init__(
        self,
        gamma: float = 2.0,
        alpha: Optional[float] = None,
        reduction: str = "mean",
        pos_weight: Optional[torch.Tensor] = None,
    ):
        super().__init__()
        if gamma < 0:
            raise ValueError(f"gamma must be >= 0, got {gamma}")
        if alpha is not None and not 0.0 <= alpha <= 1.0:
            raise ValueError(f"alpha must be in [0, 1] or None, got {alpha}")
        if reduction not in REDUCTIONS:
            raise ValueError(f"reduction must be one of {REDUCTIONS}, got {reduction!r}")
        self.gamma, self.alpha, self.reduction = float(gamma), alpha, reduction
        # a buffer so .to(device) moves it with the module
        self.register_buffer(
            "pos_weight", None if pos_weight is None else torch.as_tensor(pos_weight, dtype=torch.float32)
        )

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        logits, targets = logits.float(), targets.float()  # loss in fp32 even under autocast
        bce = F.binary_cross_entropy_with_logits(logits, targets, pos_weight=self.pos_weight, reduction="none")
        loss = bce
        if self.gamma > 0:
            p = torch.sigmoid(logits)
            p_t = p * targets + (1 - p) * (1 - targets)
            loss = loss * (1 - p_t).pow(self.gamma)
        if self.alpha is not None:
            loss = loss * (self.alpha * targets + (1 - self.alpha) * (1 - targets))
        if self.reduction == "mean":
            return loss.mean()
        if self.reduction == "sum":
            return loss.sum()
        return loss


def make_loss(
    name: str = "focal",
    gamma: float = 2.0,
    alpha: Optional[float] = None,
    pos_weight: Union[None, Sequence[float], torch.Tensor] = None,
) -> nn.Module:
    """ "focal" -> FocalLoss(gamma, alpha); "bce" -> BCEWithLogitsLoss (gamma/alpha ignored)."""
    pw = None if pos_weight is None else torch.as_tensor(pos_weight, dtype=torch.float32)
    if name == "focal":
        return FocalLoss(gamma=gamma, alpha=alpha, pos_weight=pw)
    if name == "bce":
        return nn.BCEWithLogitsLoss(pos_weight=pw)
    raise ValueError(f"unknown loss {name!r}; expected 'focal' or 'bce'")
