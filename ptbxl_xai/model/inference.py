"""Fast, gradient-free model calls for the explainers, the checks and the app.

Explaining one record costs hundreds of forward passes (permutation SHAP, LIME, faithfulness curves),
so the explainers call the model through `model_functions`, which
  * folds every Conv1d -> BatchNorm1d pair into one convolution (eval-time BN is an affine map, so the
    outputs agree to ~1e-7), on a copy: the caller's model, e.g. one being randomised, is left as is;
  * runs batches of `INFERENCE_BATCH` records: small enough that a batch's first-block activations
    ([64, 32, 1000]) stay in the cache, where a batch of 512 (65 MB) does not and costs more per record
    (benchmarks/explain.py prints the per-call figure; the docs' Benchmarks page has the measurements).
"""

from __future__ import annotations

import copy
from typing import Callable

import numpy as np
import torch
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

INFERENCE_BATCH = 64


class CallsStopped(Exception):
    """Raised by a model call whose `should_stop` said so: the caller no longer wants the answer (the app's
    client has gone), so the rest of an explanation's hundreds of calls are not made."""


class Probabilities(nn.Module):
    """x -> sigmoid(logits): the single-tensor model that gradient SHAP differentiates."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.model(x)[0])


def fuse_for_inference(model: nn.Module) -> nn.Module:
    """An eval-mode copy with each Conv1d directly followed by BatchNorm1d (inside a Sequential) fused."""
    fused = copy.deepcopy(model).eval()
    for seq in fused.modules():
        if not isinstance(seq, nn.Sequential):
            continue
        names = list(seq._modules)
        for a, b in zip(names, names[1:]):
            conv, bn = seq._modules[a], seq._modules[b]
            if isinstance(conv, nn.Conv1d) and isinstance(bn, nn.BatchNorm1d) and bn.track_running_stats:
                seq._modules[a] = fuse_conv_bn_eval(conv, bn)
                seq._modules[b] = nn.Identity()
    return fused


def model_functions(
    model: nn.Module,
    batch_size: int = INFERENCE_BATCH,
    fuse: bool = True,
    should_stop: Callable[[], bool] | None = None,
) -> tuple[Callable[[np.ndarray], np.ndarray], Callable[[np.ndarray], np.ndarray]]:
    """(predict_proba, attention): numpy [m, leads, T] -> sigmoid probabilities [m, C] / attention [m, T'].

    should_stop: asked before every batch; when it answers True the call raises `CallsStopped`."""
    net = fuse_for_inference(model) if fuse else model.eval()

    def run(x: np.ndarray, which: int) -> np.ndarray:
        out = []
        with torch.inference_mode():
            for start in range(0, len(x), batch_size):
                if should_stop is not None and should_stop():
                    raise CallsStopped("stopped: the answer is no longer wanted")
                res = net(torch.from_numpy(np.ascontiguousarray(x[start : start + batch_size], dtype=np.float32)))
                out.append((torch.sigmoid(res[0]) if which == 0 else res[1]).float().numpy())
        if not out:  # no rows: keep the output's width
            return run(np.zeros((1,) + tuple(x.shape[1:]), np.float32), which)[:0]
        return np.concatenate(out)

    return (lambda x: run(x, 0)), (lambda x: run(x, 1))
