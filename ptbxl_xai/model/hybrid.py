"""Hybrid CNN -> BiLSTM -> additive-attention classifier for 12-lead ECGs.

Input  x: float32 [B, n_leads, T] (z-scored per lead).
Output (logits [B, C], attention [B, T']) where T' = time_steps(T) and the
attention weights sum to 1 over T' for every record, whatever the pooling, so
explainability code can always map weights back to input samples.
"""

from __future__ import annotations

import inspect
from typing import Mapping, Sequence

import numpy as np
import torch
from torch import nn

from ptbxl_xai.model.baselines import ARCHITECTURES as BASELINE_ARCHITECTURES
from ptbxl_xai.model.baselines import baseline_from_config

ARCHITECTURES = ("hybrid",) + BASELINE_ARCHITECTURES
TEMPORAL = ("bilstm", "none")
POOLING = ("attention", "mean", "last")


class AdditiveAttention(nn.Module):
    """Bahdanau attention pooling: score_t = v^T tanh(W h_t + b), alpha = softmax_t(score)."""

    def __init__(self, in_dim: int, attention_dim: int):
        super().__init__()
        self.proj = nn.Linear(in_dim, attention_dim)
        self.v = nn.Linear(attention_dim, 1, bias=False)

    def forward(self, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        # h: [B, T', D]
        scores = self.v(torch.tanh(self.proj(h))).squeeze(-1)  # [B, T']
        # softmax in float32 so the weights sum to 1 even under autocast
        alpha = torch.softmax(scores.float(), dim=1)
        context = torch.bmm(alpha.unsqueeze(1).to(h.dtype), h).squeeze(1)  # [B, D]
        return context, alpha


class HybridECGNet(nn.Module):
    """Conv blocks (Conv1d-BN-ReLU-MaxPool-Dropout) -> BiLSTM -> attention -> dropout -> Linear.

    Defaults are sized for 2 CPU cores at T=1000 (benchmarks/train.py, shared
    2-core machine: 490-640 training records/s, 0.43 ms/record batched, 0.9-1.8 ms
    for one record; targets >= 200, <= 1, <= 3). Widths (64, 128, 128) with pools
    (2, 2, 2) missed them (~190 records/s, 1.9 ms/record): the LSTM is sequential
    over T', so the first block pools by 4 (T' = 1000 // 16 = 62 steps of 160 ms
    at 100 Hz) and the full-length first conv is kept narrow (32 channels).
    """

    def __init__(
        self,
        n_leads: int = 12,
        n_classes: int = 5,
        conv_channels: Sequence[int] = (32, 64, 128),
        kernel_sizes: Sequence[int] = (7, 5, 5),
        pool_sizes: Sequence[int] = (4, 2, 2),
        dropout: float = 0.3,
        lstm_hidden: int = 64,
        lstm_layers: int = 1,
        attention_dim: int = 64,
        temporal: str = "bilstm",
        pooling: str = "attention",
    ):
        super().__init__()
        if not (len(conv_channels) == len(kernel_sizes) == len(pool_sizes)) or not conv_channels:
            raise ValueError("conv_channels, kernel_sizes and pool_sizes must be non-empty and of equal length")
        if temporal not in TEMPORAL:
            raise ValueError(f"temporal must be one of {TEMPORAL}, got {temporal!r}")
        if pooling not in POOLING:
            raise ValueError(f"pooling must be one of {POOLING}, got {pooling!r}")
        self.n_leads, self.n_classes = int(n_leads), int(n_classes)
        self.pool_sizes = tuple(int(p) for p in pool_sizes)
        self.temporal, self.pooling = temporal, pooling

        blocks, c_in = [], self.n_leads
        for c_out, k, p in zip(conv_channels, kernel_sizes, pool_sizes):
            blocks += [
                # odd kernels with padding k//2 keep the length, so only pooling shrinks time
                nn.Conv1d(c_in, c_out, int(k), padding=int(k) // 2, bias=False),  # BN has the bias
                nn.BatchNorm1d(c_out),
                nn.ReLU(inplace=True),
                nn.MaxPool1d(int(p)),
                nn.Dropout(dropout),
            ]
            c_in = c_out
        self.features = nn.Sequential(*blocks)

        if temporal == "bilstm":
            self.lstm = nn.LSTM(
                c_in,
                lstm_hidden,
                num_layers=lstm_layers,
                batch_first=True,
                bidirectional=True,
                dropout=dropout if lstm_layers > 1 else 0.0,
            )
            d = 2 * lstm_hidden
        else:
            self.lstm = None
            d = c_in
        self.attention = AdditiveAttention(d, attention_dim) if pooling == "attention" else None
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(d, self.n_classes)

    @property
    def stride(self) -> int:
        """Input samples per attention step."""
        return int(np.prod(self.pool_sizes))

    def time_steps(self, T: int) -> int:
        """Length T' of the attention sequence for an input of T samples (each MaxPool floors)."""
        for p in self.pool_sizes:
            T //= p
        return int(T)

    def step_to_sample_edges(self, T: int) -> np.ndarray:
        """Edges [T'+1] so that attention step i covers input samples edges[i]:edges[i+1].

        Step i pools samples i*stride .. (i+1)*stride-1; the samples left over by
        the flooring pools are given to the last step so the edges cover 0..T.
        """
        n = self.time_steps(T)
        edges = np.arange(n + 1, dtype=np.int64) * self.stride
        edges[-1] = T
        return edges

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.features(x).transpose(1, 2)  # [B, T', C]
        if self.lstm is not None:
            h, _ = self.lstm(h)  # [B, T', 2H]
        B, n = h.shape[0], h.shape[1]
        if self.pooling == "attention":
            z, alpha = self.attention(h)
        elif self.pooling == "mean":
            z = h.mean(dim=1)
            alpha = torch.full((B, n), 1.0 / n, device=h.device)
        else:  # last step
            z = h[:, -1]
            alpha = torch.zeros((B, n), device=h.device)
            alpha[:, -1] = 1.0
        return self.head(self.dropout(z)), alpha


def model_from_config(config: Mapping, n_classes: int) -> nn.Module:
    """Build from a plain dict of hyper-parameters (e.g. from YAML); unknown keys are an error.

    `architecture` picks the model: "hybrid" (default, HybridECGNet) or one of the
    published baselines in ptbxl_xai.model.baselines (BASELINE_ARCHITECTURES), each with its
    own hyper-parameters. The dict is stored as-is in checkpoint sidecars, so
    load_checkpoint rebuilds whichever architecture it names.
    """
    cfg = dict(config or {})
    cfg.pop("n_classes", None)  # always taken from the data
    architecture = cfg.pop("architecture", "hybrid")
    if architecture != "hybrid":
        if architecture not in BASELINE_ARCHITECTURES:
            raise ValueError(f"unknown model architecture {architecture!r}; known: {list(ARCHITECTURES)}")
        return baseline_from_config(architecture, cfg, n_classes)
    allowed = set(inspect.signature(HybridECGNet.__init__).parameters) - {"self"}
    unknown = sorted(set(cfg) - allowed)
    if unknown:
        raise ValueError(
            f"unknown model hyper-parameters {unknown} for architecture 'hybrid'; allowed: {sorted(allowed)}"
        )
    for key in ("conv_channels", "kernel_sizes", "pool_sizes"):
        if key in cfg:
            cfg[key] = tuple(cfg[key])  # YAML/JSON give lists
    return HybridECGNet(n_classes=n_classes, **cfg)


def count_parameters(model: nn.Module, trainable_only: bool = True) -> int:
    return int(sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only))
