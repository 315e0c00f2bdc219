"""Published CNN baselines for the ablation grid, re-implemented in plain torch.

Reference: Strodthoff, Wagner, Schaeffter, Samek (2021), "Deep Learning for ECG
Analysis: Benchmarks and Insights from PTB-XL", IEEE JBHI 25(5); code at
github.com/helme/ecg_ptbxl_benchmarking (commit ff776de), files

  * code/models/inception1d.py   -> Inception1d (`inception1d`)
  * code/models/xresnet1d.py     -> XResNet1d   (`xresnet1d18/34/50/101/152`)
  * code/models/basic_conv1d.py  -> the shared head (`create_head1d`,
    `AdaptiveConcatPool1d`) and the from-scratch init (`weight_init`)
  * code/models/fastai_model.py  -> the hyper-parameters the benchmark actually
    used: kernel_size=5 (so inception1d gets 8*5=40 -> kernels 39/19/9 and
    xresnet1d gets 5), lin_ftrs_head=[128], ps_head=0.5, and
    `learn.model.apply(weight_init)` before training from scratch.

The layer structure, layer order, widths, paddings, pooling, residual wiring and
head are those of the reference, so parameter counts match it exactly (tested in
tests/test_baselines.py). Re-written without fastai:

  * fastai v1 `bn_drop_lin(n_in, n_out, bn, p, actn)` = [BatchNorm1d(n_in)] +
    [Dropout(p) if p] + [Linear(n_in, n_out)] + [actn if actn]; `listify(ps)`
    with one value p gives p/2 for the hidden layers and p for the last one.
  * xresnet's `ConvLayer` (conv, then BN, then act; bias only without BN) and
    `ResBlock` only keep the options the benchmark used (no SE, no
    self-attention, no depthwise/groups, norm Batch/BatchZero, ReLU).
  * Init: the reference builds the xresnet with `init_cnn` and zero-init BN on each
    residual branch's last BN, but the benchmark then re-initialises every model with
    `weight_init` (kaiming_normal_ on Conv1d/Linear weights, zero biases, BN weight 1
    and bias 0), which overrides both; we apply that final init only.
  * `concat_pooling=False` is not offered: the reference then uses MaxPool1d(2) +
    Flatten, whose width depends on T and does not match its own first Linear.

Training protocol: the benchmark trains on random 2.5 s crops (250 samples at 100 Hz)
and predicts by max-aggregating sliding windows (stride half a window). `window_samples`
(a model hyper-parameter, e.g. 250) reproduces that with `Windowed`: in training mode each
record gets one random crop per step, in eval mode the windows slide and the highest logit
per label wins. Without it the models see the whole record (both end in adaptive pooling,
so any T works). The one-cycle schedule is not reproduced (ptbxl_xai.model.training is shared).

Interface, as HybridECGNet: forward(x [B, n_leads, T]) -> (logits [B, C],
weights [B, T']), `time_steps(T)`, `step_to_sample_edges(T)`, `stride`,
`n_leads`, `n_classes`. These baselines have no attention: the weights are
uniform (1/T') over the time steps of the last feature map, a placeholder so that
downstream code runs unchanged; they carry no information about the record and
must not be read as an explanation (the head pools with max as well as mean).

Cost on 2 CPU cores at T=1000, 5 classes (benchmarks/train.py --architecture ...,
torch 2.13 CPU; hybrid for scale: 578 records/s, 0.47 ms/record, 1.7 ms single):
inception1d 25 training records/s, 10.9 ms/record batched, 12 ms single, 2.4 GiB
peak RSS (it never downsamples: 128 channels x 1000 steps in every block);
xresnet1d101 77 records/s, 5.0 ms/record, 10-16 ms; xresnet1d50 117 records/s,
3.5 ms/record, 7.9 ms. One PTB-XL training epoch (~17.4k records) of inception1d
thus takes ~12 min on 2 cores.
"""

from __future__ import annotations

import inspect
from typing import Mapping, Optional, Sequence, Union

import numpy as np
import torch
from torch import nn

HEAD_ACTIVATIONS = ("relu", "elu")


# --------------------------------------------------------------------------- shared pieces


def weight_init(m: nn.Module) -> None:
    """basic_conv1d.weight_init, as fastai_model.fit applies it before training from scratch."""
    if isinstance(m, (nn.Conv1d, nn.Linear)):
        nn.init.kaiming_normal_(m.weight)
        if m.bias is not None:
            nn.init.zeros_(m.bias)
    if isinstance(m, nn.BatchNorm1d):
        nn.init.constant_(m.weight, 1)
        nn.init.constant_(m.bias, 0)


class AdaptiveConcatPool1d(nn.Module):
    """[B, C, T] -> [B, 2C, 1]: concat of adaptive max and average pooling (max first, as the reference)."""

    def __init__(self):
        super().__init__()
        self.mp, self.ap = nn.AdaptiveMaxPool1d(1), nn.AdaptiveAvgPool1d(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.mp(x), self.ap(x)], 1)


def create_head1d(
    nf: int,
    nc: int,
    lin_ftrs: Optional[Sequence[int]] = (128,),
    ps: Union[float, Sequence[float]] = 0.5,
    bn_final: bool = False,
    bn: bool = True,
    act: str = "relu",
) -> nn.Sequential:
    """basic_conv1d.create_head1d with concat pooling: pool -> flatten -> [BN -> dropout -> Linear -> act]*.

    lin_ftrs are the hidden widths (None or () for a single Linear); ps is one
    dropout probability (p/2 on hidden layers, p on the last) or one per Linear.
    """
    if act not in HEAD_ACTIVATIONS:
        raise ValueError(f"act_head must be one of {HEAD_ACTIVATIONS}, got {act!r}")
    sizes = [2 * nf] + [int(n) for n in (lin_ftrs or ())] + [nc]
    n_lin = len(sizes) - 1
    ps = [float(ps)] if isinstance(ps, (int, float)) else [float(p) for p in ps]
    if len(ps) == 1:
        ps = [ps[0] / 2] * (n_lin - 1) + ps
    if len(ps) != n_lin:
        raise ValueError(f"ps_head needs one dropout probability or one per Linear ({n_lin}), got {len(ps)}")
    if any(not 0 <= p < 1 for p in ps):
        raise ValueError(f"ps_head probabilities must be in [0, 1), got {ps}")
    layers: list[nn.Module] = [AdaptiveConcatPool1d(), nn.Flatten()]
    for i, (ni, no, p) in enumerate(zip(sizes[:-1], sizes[1:], ps)):
        if bn:
            layers.append(nn.BatchNorm1d(ni))
        if p:
            layers.append(nn.Dropout(p))
        layers.append(nn.Linear(ni, no))
        if i < n_lin - 1:
            layers.append(nn.ReLU(inplace=True) if act == "relu" else nn.ELU(inplace=True))
    if bn_final:
        layers.append(nn.BatchNorm1d(sizes[-1], momentum=0.01))
    return nn.Sequential(*layers)


class _UniformWeightsMixin:
    """Uniform placeholder weights over the last feature map, with HybridECGNet's step mapping.

    Subclasses define `stride` (input samples per step) and `time_steps(T)`.
    """

    stride: int

    def time_steps(self, T: int) -> int:  # pragma: no cover - overridden
        raise NotImplementedError

    def step_to_sample_edges(self, T: int) -> np.ndarray:
        """Edges [T'+1]: step i covers input samples edges[i]:edges[i+1] (nominal, by stride).

        Step i sits at samples i*stride .. (i+1)*stride-1; the ends are clipped to
        0..T (the last step of a ceil-rounded map is shorter, a floor-rounded one
        takes the leftover samples). The receptive field of a step is much wider
        than its span; the weights are uniform anyway.
        """
        n = self.time_steps(T)
        edges = np.minimum(np.arange(n + 1, dtype=np.int64) * self.stride, T)
        edges[-1] = T
        return edges

    @staticmethod
    def _uniform(features: torch.Tensor) -> torch.Tensor:
        B, n = features.shape[0], features.shape[-1]
        return torch.full((B, n), 1.0 / n, device=features.device, dtype=torch.float32)


# --------------------------------------------------------------------------- inception1d


def _conv(ni: int, nf: int, ks: int = 3, stride: int = 1) -> nn.Conv1d:
    """inception1d.conv: bias-free Conv1d with padding (ks-1)//2 (odd ks keep the length)."""
    return nn.Conv1d(ni, nf, kernel_size=ks, stride=stride, padding=(ks - 1) // 2, bias=False)


class InceptionBlock1d(nn.Module):
    """Bottleneck 1x1 -> parallel convs (kss) || maxpool(3) -> 1x1; concat -> BN -> ReLU."""

    def __init__(self, ni: int, nb_filters: int, kss: Sequence[int], bottleneck_size: int = 32):
        super().__init__()
        self.bottleneck = _conv(ni, bottleneck_size, 1) if bottleneck_size > 0 else nn.Identity()
        c = bottleneck_size if bottleneck_size > 0 else ni
        self.convs = nn.ModuleList([_conv(c, nb_filters, ks) for ks in kss])
        self.conv_bottle = nn.Sequential(nn.MaxPool1d(3, 1, padding=1), _conv(ni, nb_filters, 1))
        self.bn_relu = nn.Sequential(nn.BatchNorm1d((len(kss) + 1) * nb_filters), nn.ReLU())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        bottled = self.bottleneck(x)
        return self.bn_relu(torch.cat([c(bottled) for c in self.convs] + [self.conv_bottle(x)], dim=1))


class Shortcut1d(nn.Module):
    """relu(out + BN(conv1x1(inp)))."""

    def __init__(self, ni: int, nf: int):
        super().__init__()
        self.act_fn = nn.ReLU(True)
        self.conv = _conv(ni, nf, 1)
        self.bn = nn.BatchNorm1d(nf)

    def forward(self, inp: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
        return self.act_fn(out + self.bn(self.conv(inp)))


class InceptionBackbone(nn.Module):
    """`depth` inception blocks; a shortcut from the last residual point after every third one."""

    def __init__(
        self,
        input_channels: int,
        kss: Sequence[int],
        depth: int,
        bottleneck_size: int,
        nb_filters: int,
        use_residual: bool,
    ):
        super().__init__()
        if depth < 3 or depth % 3:
            raise ValueError(f"depth must be a positive multiple of 3, got {depth}")
        self.depth, self.use_residual = depth, use_residual
        n_ks = len(kss) + 1
        self.im = nn.ModuleList(
            [
                InceptionBlock1d(input_channels if d == 0 else n_ks * nb_filters, nb_filters, kss, bottleneck_size)
                for d in range(depth)
            ]
        )
        self.sk = nn.ModuleList(
            [Shortcut1d(input_channels if d == 0 else n_ks * nb_filters, n_ks * nb_filters) for d in range(depth // 3)]
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        input_res = x
        for d in range(self.depth):
            x = self.im[d](x)
            if self.use_residual and d % 3 == 2:
                x = self.sk[d // 3](input_res, x)
                input_res = x
        return x


class Inception1d(_UniformWeightsMixin, nn.Module):
    """InceptionTime-style 1-D CNN (inception1d.Inception1d); keeps the full time resolution.

    kernel_size K >= 40 gives branch kernels K, K//2, K//4, each made odd (40 -> 39, 19, 9).
    ~0.51M parameters for 71 classes (0.47M backbone, 43k head).
    """

    def __init__(
        self,
        n_leads: int = 12,
        n_classes: int = 5,
        kernel_size: int = 40,
        depth: int = 6,
        bottleneck_size: int = 32,
        nb_filters: int = 32,
        use_residual: bool = True,
        lin_ftrs_head: Optional[Sequence[int]] = (128,),
        ps_head: Union[float, Sequence[float]] = 0.5,
        bn_final_head: bool = False,
        bn_head: bool = True,
        act_head: str = "relu",
    ):
        super().__init__()
        if kernel_size < 40:
            raise ValueError(f"kernel_size must be >= 40 (as in the reference), got {kernel_size}")
        if nb_filters < 1 or bottleneck_size < 0:
            raise ValueError("nb_filters must be >= 1 and bottleneck_size >= 0")
        self.n_leads, self.n_classes = int(n_leads), int(n_classes)
        kss = [k - 1 if k % 2 == 0 else k for k in (kernel_size, kernel_size // 2, kernel_size // 4)]
        self.kernel_sizes = tuple(kss)
        n_ks = len(kss) + 1
        self.backbone = InceptionBackbone(self.n_leads, kss, depth, bottleneck_size, nb_filters, use_residual)
        self.head = create_head1d(
            n_ks * nb_filters, self.n_classes, lin_ftrs_head, ps_head, bn_final_head, bn_head, act_head
        )
        self.apply(weight_init)

    stride = 1  # every layer keeps the length

    def time_steps(self, T: int) -> int:
        return int(T)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.backbone(x)  # [B, 4*nb_filters, T]
        return self.head(h), self._uniform(h)


# --------------------------------------------------------------------------- xresnet1d


class ConvLayer(nn.Sequential):
    """xresnet1d.ConvLayer with ndim=1, norm Batch/BatchZero, bn_1st: Conv1d -> BN -> act."""

    def __init__(self, ni: int, nf: int, ks: int = 3, stride: int = 1, act: bool = True):
        layers = [
            nn.Conv1d(ni, nf, kernel_size=ks, stride=stride, padding=(ks - 1) // 2, bias=False),
            nn.BatchNorm1d(nf),
        ]
        if act:
            layers.append(nn.ReLU())
        super().__init__(*layers)


class ResBlock(nn.Module):
    """xresnet1d.ResBlock: basic (expansion 1: ks, ks) or bottleneck (1, ks, 1) conv path;
    identity path AvgPool(2, ceil) when strided, then 1x1 ConvLayer when widths differ."""

    def __init__(self, expansion: int, ni: int, nf: int, stride: int = 1, kernel_size: int = 3):
        super().__init__()
        nh = nf
        nf, ni = nf * expansion, ni * expansion
        if expansion == 1:
            layers = [ConvLayer(ni, nh, kernel_size, stride=stride), ConvLayer(nh, nf, kernel_size, act=False)]
        else:
            layers = [
                ConvLayer(ni, nh, 1),
                ConvLayer(nh, nh, kernel_size, stride=stride),
                ConvLayer(nh, nf, 1, act=False),
            ]
        self.convs = nn.Sequential(*layers)
        idpath: list[nn.Module] = []
        if stride != 1:
            idpath.append(nn.AvgPool1d(2, ceil_mode=True))
        if ni != nf:
            idpath.append(ConvLayer(ni, nf, 1, act=False))
        self.idpath = nn.Sequential(*idpath)
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.convs(x) + self.idpath(x))


XRESNET_LAYERS = {  # name -> (expansion, blocks per stage), xresnet1d.py
    "xresnet1d18": (1, (2, 2, 2, 2)),
    "xresnet1d34": (1, (3, 4, 6, 3)),
    "xresnet1d50": (4, (3, 4, 6, 3)),
    "xresnet1d101": (4, (3, 4, 23, 3)),
    "xresnet1d152": (4, (3, 8, 36, 3)),
}


class XResNet1d(_UniformWeightsMixin, nn.Module):
    """xresnet1d.XResNet1d: 3-conv stem (first strided) -> maxpool/2 -> 4 stages (stages 2-4 stride 2) -> head.

    The reference narrows the torchvision widths (64,128,256,512) to 64 per stage
    (x expansion), so xresnet1d101 has ~1.9M parameters. Total stride 32:
    T' = ceil(T / 32) (every downsampling rounds up).
    """

    def __init__(
        self,
        expansion: int,
        layers: Sequence[int],
        n_leads: int = 12,
        n_classes: int = 5,
        kernel_size: int = 5,
        kernel_size_stem: int = 5,
        stem_szs: Sequence[int] = (32, 32, 64),
        widen: float = 1.0,
        lin_ftrs_head: Optional[Sequence[int]] = (128,),
        ps_head: Union[float, Sequence[float]] = 0.5,
        bn_final_head: bool = False,
        bn_head: bool = True,
        act_head: str = "relu",
    ):
        super().__init__()
        if len(stem_szs) != 3:
            raise ValueError(f"stem_szs must have 3 widths, got {list(stem_szs)}")
        if len(layers) != 4:
            raise ValueError("layers must give the blocks of 4 stages")
        self.n_leads, self.n_classes = int(n_leads), int(n_classes)
        self.expansion, self.layers_per_stage = int(expansion), tuple(int(n) for n in layers)
        szs = [self.n_leads, *(int(s) for s in stem_szs)]
        stem = [ConvLayer(szs[i], szs[i + 1], kernel_size_stem, stride=2 if i == 0 else 1) for i in range(3)]
        block_szs = [64 // expansion] + [int(o * widen) for o in (64, 64, 64, 64)]
        if szs[-1] != block_szs[0] * expansion:
            raise ValueError(f"the last stem width must be {block_szs[0] * expansion} (64), got {szs[-1]}")
        blocks = [
            nn.Sequential(
                *[
                    ResBlock(
                        expansion,
                        block_szs[i] if j == 0 else block_szs[i + 1],
                        block_szs[i + 1],
                        stride=(1 if i == 0 else 2) if j == 0 else 1,
                        kernel_size=kernel_size,
                    )
                    for j in range(n)
                ]
            )
            for i, n in enumerate(self.layers_per_stage)
        ]
        self.features = nn.Sequential(*stem, nn.MaxPool1d(kernel_size=3, stride=2, padding=1), *blocks)
        self.head = create_head1d(
            block_szs[-1] * expansion, self.n_classes, lin_ftrs_head, ps_head, bn_final_head, bn_head, act_head
        )
        self.apply(weight_init)

    stride = 32  # stem conv, maxpool and three strided stages halve the length

    def time_steps(self, T: int) -> int:
        for _ in range(5):
            T = -(-T // 2)
        return int(T)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.features(x)  # [B, 64*expansion, ceil(T/32)]
        return self.head(h), self._uniform(h)


# --------------------------------------------------------------------------- config dispatch

ARCHITECTURES = ("inception1d",) + tuple(XRESNET_LAYERS)
_LIST_KEYS = ("lin_ftrs_head", "stem_szs")


def baseline_hparams(architecture: str) -> list[str]:
    """The hyper-parameter names a baseline accepts from a config (n_classes comes from the data)."""
    if architecture == "inception1d":
        params = inspect.signature(Inception1d.__init__).parameters
    elif architecture in XRESNET_LAYERS:
        params = inspect.signature(XResNet1d.__init__).parameters
    else:
        raise ValueError(f"unknown baseline architecture {architecture!r}; known: {list(ARCHITECTURES)}")
    return sorted(set(params) - {"self", "n_classes", "expansion", "layers"})


class Windowed(nn.Module):
    """The benchmark's crop protocol around a model: random crops in training, sliding windows at test.

    training mode: one random window of `window` samples per record (torch's global RNG, so a
    seeded run repeats); eval mode: windows every `window // 2` samples (the last one flush with
    the end), logits max-aggregated per label (sigmoid is monotone: the benchmark's max over
    probabilities). Records no longer than a window pass whole. The weights returned are the
    inner model's uniform placeholder over the whole record's steps.
    """

    def __init__(self, inner: nn.Module, window: int):
        super().__init__()
        if window < 2:
            raise ValueError(f"window_samples must be >= 2, got {window}")
        self.inner, self.window = inner, int(window)
        self.n_leads, self.n_classes, self.stride = inner.n_leads, inner.n_classes, inner.stride

    def time_steps(self, T: int) -> int:
        return self.inner.time_steps(T)

    def step_to_sample_edges(self, T: int) -> np.ndarray:
        return self.inner.step_to_sample_edges(T)

    def starts(self, T: int) -> list[int]:
        """Window starts at test time: every half window, plus one flush with the end."""
        if T <= self.window:
            return [0]
        starts = list(range(0, T - self.window + 1, self.window // 2))
        return starts if starts[-1] == T - self.window else starts + [T - self.window]

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        B, _, T = x.shape
        weights = torch.full((B, self.time_steps(T)), 1.0 / self.time_steps(T), device=x.device)
        if T <= self.window:
            return self.inner(x)[0], weights
        if self.training:
            offset = torch.randint(0, T - self.window + 1, (B,)).to(x.device)
            idx = (offset[:, None] + torch.arange(self.window, device=x.device))[:, None, :].expand(-1, x.shape[1], -1)
            return self.inner(torch.gather(x, 2, idx))[0], weights
        starts = self.starts(T)
        crops = torch.stack([x[:, :, s : s + self.window] for s in starts], dim=1)  # [B, W, leads, window]
        logits = self.inner(crops.reshape(B * len(starts), x.shape[1], self.window))[0]
        return logits.reshape(B, len(starts), -1).amax(dim=1), weights


def baseline_from_config(architecture: str, config: Mapping, n_classes: int) -> nn.Module:
    """Build a baseline from plain hyper-parameters; unknown keys are an error naming the architecture.

    `window_samples` (optional) wraps it in `Windowed`: the benchmark's crop protocol.
    """
    cfg = dict(config or {})
    window = cfg.pop("window_samples", None)
    if window:
        return Windowed(baseline_from_config(architecture, cfg, n_classes), int(window))
    allowed = baseline_hparams(architecture)
    unknown = sorted(set(cfg) - set(allowed))
    if unknown:
        raise ValueError(
            f"unknown model hyper-parameters {unknown} for architecture {architecture!r}; allowed: {allowed}"
        )
    for key in _LIST_KEYS:
        if cfg.get(key) is not None:
            cfg[key] = tuple(cfg[key])  # YAML/JSON give lists
    if isinstance(cfg.get("ps_head"), list):
        cfg["ps_head"] = tuple(cfg["ps_head"])
    if architecture == "inception1d":
        return Inception1d(n_classes=n_classes, **cfg)
    expansion, layers = XRESNET_LAYERS[architecture]
    return XResNet1d(expansion, layers, n_classes=n_classes, **cfg)
