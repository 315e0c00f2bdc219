"""Published baselines (ptbxl_xai.model.baselines): interface parity with HybridECGNet, reference sizes, config, checkpoints."""

import numpy as np
import pytest
import torch
from torch import nn

from ptbxl_xai.model.baselines import ARCHITECTURES, Inception1d, XResNet1d, create_head1d
from ptbxl_xai.model.checkpoint import load_checkpoint, save_checkpoint
from ptbxl_xai.model.hybrid import HybridECGNet, count_parameters, model_from_config
from ptbxl_xai.model.training import TrainConfig, predict, train_model

# narrow variants for the round trip and the learning check
SMALL = {
    "inception1d": dict(nb_filters=8, bottleneck_size=8, depth=3, lin_ftrs_head=[16]),
    "xresnet1d50": dict(widen=0.25, lin_ftrs_head=[16]),
}


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny tensors: a second thread only adds synchronisation (and waits on a busy machine)."""
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


@pytest.mark.parametrize("architecture", ARCHITECTURES)
@pytest.mark.parametrize("T", [250, 97])
def test_shapes_uniform_weights_and_edges(architecture, T):
    torch.manual_seed(0)
    m = model_from_config({"architecture": architecture}, n_classes=3).eval()
    with torch.no_grad():
        logits, w = m(torch.randn(2, 12, T))
        feats = (m.backbone if architecture == "inception1d" else m.features)(torch.randn(1, 12, T))
    n = m.time_steps(T)
    assert feats.shape[-1] == n  # time_steps describes the real last feature map
    assert logits.shape == (2, 3) and torch.isfinite(logits).all()
    assert w.shape == (2, n) and w.dtype == torch.float32
    assert torch.allclose(w.sum(1), torch.ones(2), atol=1e-6)
    assert torch.allclose(w, torch.full_like(w, 1 / n))  # no attention: uniform placeholder
    edges = m.step_to_sample_edges(T)
    assert len(edges) == n + 1 and edges[0] == 0 and edges[-1] == T and (np.diff(edges) > 0).all()
    assert m.n_leads == 12 and m.n_classes == 3


def test_time_steps_at_1000():
    assert model_from_config({"architecture": "inception1d"}, 5).time_steps(1000) == 1000
    x = model_from_config({"architecture": "xresnet1d101"}, 5)
    assert x.time_steps(1000) == 32 and x.stride == 32
    assert list(x.step_to_sample_edges(1000)[-3:]) == [960, 992, 1000]


def _inception_params(nc, ni=12, nb=32, bott=32, kss=(39, 19, 9), depth=6, hidden=128):
    """Closed-form count of the reference Inception1d (inception1d.py + create_head1d, lin_ftrs [128])."""
    width = (len(kss) + 1) * nb

    def block(c):  # bottleneck 1x1, branch convs, maxpool->1x1, BN over the concat
        return c * bott + bott * nb * sum(kss) + c * nb + 2 * width

    im = block(ni) + (depth - 1) * block(width)
    sk = (ni * width + 2 * width) + (depth // 3 - 1) * (width * width + 2 * width)
    head = 2 * (2 * width) + (2 * width) * hidden + hidden + 2 * hidden + hidden * nc + nc
    return im + sk + head


def _xresnet_bottleneck_params(nc, layers, hidden=128):
    """Closed-form count of the reference xresnet1d50/101/152 (expansion 4, widths 64, kernel 5)."""
    stem = 12 * 32 * 5 + 64 + 32 * 32 * 5 + 64 + 32 * 64 * 5 + 128
    body = lambda ni: ni * 64 + 128 + 64 * 64 * 5 + 128 + 64 * 256 + 512  # noqa: E731
    blocks = body(64) + (64 * 256 + 512) + (sum(layers) - 1) * body(256)  # only the first block widens 64 -> 256
    head = 2 * 512 + 512 * hidden + hidden + 2 * hidden + hidden * nc + nc
    return stem + blocks + head


def test_parameter_counts_match_the_reference():
    inc = model_from_config({"architecture": "inception1d"}, 71)
    assert count_parameters(inc) == _inception_params(71) == 516_167
    assert count_parameters(model_from_config({"architecture": "inception1d"}, 5)) == _inception_params(5)
    assert count_parameters(inc.backbone) == 473_344  # ~0.47M without the head
    assert inc.kernel_sizes == (39, 19, 9)
    x101 = model_from_config({"architecture": "xresnet1d101"}, 71)
    assert count_parameters(x101) == _xresnet_bottleneck_params(71, (3, 4, 23, 3)) == 1_880_775
    x50 = model_from_config({"architecture": "xresnet1d50"}, 5)
    assert count_parameters(x50) == _xresnet_bottleneck_params(5, (3, 4, 6, 3))
    assert len(x101.features) == 3 + 1 + 4 and [len(s) for s in x101.features[4:]] == [3, 4, 23, 3]


def test_head_follows_create_head1d():
    head = create_head1d(128, 7)  # lin_ftrs [128], ps 0.5 -> hidden dropout 0.25, last 0.5
    kinds = [type(m).__name__ for m in head]
    assert kinds == [
        "AdaptiveConcatPool1d",
        "Flatten",
        "BatchNorm1d",
        "Dropout",
        "Linear",
        "ReLU",
        "BatchNorm1d",
        "Dropout",
        "Linear",
    ]
    assert [m.p for m in head if isinstance(m, nn.Dropout)] == [0.25, 0.5]
    assert head[4].in_features == 256 and head[-1].out_features == 7
    assert [type(m).__name__ for m in create_head1d(8, 2, lin_ftrs=None, ps=0.0, bn=False)] == [
        "AdaptiveConcatPool1d",
        "Flatten",
        "Linear",
    ]
    assert isinstance(create_head1d(8, 2, bn_final=True, act="elu")[-1], nn.BatchNorm1d)
    assert [m.p for m in create_head1d(8, 2, ps=(0.1, 0.2)) if isinstance(m, nn.Dropout)] == [0.1, 0.2]
    with pytest.raises(ValueError, match="ps_head"):
        create_head1d(8, 2, ps=(0.1, 0.2, 0.3))
    with pytest.raises(ValueError, match="act_head"):
        create_head1d(8, 2, act="gelu")
    x = torch.randn(3, 8, 11)  # max first, then mean
    assert torch.equal(head[0](x)[:, :8, 0], x.amax(-1)) and torch.allclose(head[0](x)[:, 8:, 0], x.mean(-1))


def test_init_is_the_benchmarks_weight_init():
    for m in (Inception1d(n_classes=2), XResNet1d(4, (3, 4, 6, 3), n_classes=2)):
        for mod in m.modules():
            if isinstance(mod, nn.BatchNorm1d):
                assert (mod.weight == 1).all() and (mod.bias == 0).all()
            if isinstance(mod, nn.Conv1d):
                assert mod.bias is None
            if isinstance(mod, nn.Linear):
                assert (mod.bias == 0).all()


def test_model_from_config_dispatch_and_refusals():
    m = model_from_config({"architecture": "inception1d", "n_classes": 99}, n_classes=4)
    assert isinstance(m, Inception1d) and m.n_classes == 4
    m = model_from_config(
        {
            "architecture": "inception1d",
            "kernel_size": 80,
            "lin_ftrs_head": [],
            "ps_head": [0.2],
            "use_residual": False,
        },
        2,
    )
    assert m.kernel_sizes == (79, 39, 19) and len(m.head) == 5
    m = model_from_config({"architecture": "xresnet1d18", "stem_szs": [16, 32, 64]}, 2)
    assert isinstance(m, XResNet1d) and m.expansion == 1
    assert isinstance(model_from_config({}, 2), HybridECGNet)
    assert isinstance(model_from_config({"architecture": "hybrid", "lstm_hidden": 8}, 2), HybridECGNet)
    with pytest.raises(
        ValueError,
        match=r"unknown model hyper-parameters \['conv_channels'\] for architecture "
        r"'inception1d'",
    ):
        model_from_config({"architecture": "inception1d", "conv_channels": [8]}, 2)
    with pytest.raises(ValueError, match="for architecture 'xresnet1d101'"):
        model_from_config({"architecture": "xresnet1d101", "nb_filters": 8}, 2)
    with pytest.raises(ValueError, match="for architecture 'hybrid'"):
        model_from_config({"nb_filters": 8}, 2)
    with pytest.raises(ValueError, match="unknown model architecture 'resnet9'"):
        model_from_config({"architecture": "resnet9"}, 2)
    with pytest.raises(ValueError, match="kernel_size"):
        model_from_config({"architecture": "inception1d", "kernel_size": 20}, 2)
    with pytest.raises(ValueError, match="depth"):
        model_from_config({"architecture": "inception1d", "depth": 4}, 2)


@pytest.mark.parametrize("architecture", sorted(SMALL))
def test_checkpoint_round_trip(tmp_path, architecture):
    hp = {"architecture": architecture, **SMALL[architecture]}
    torch.manual_seed(1)
    m = model_from_config(hp, 3).train()
    with torch.no_grad():  # move the BatchNorm running statistics away from their init
        for _ in range(3):
            m(torch.randn(8, 12, 200) * 2 + 0.5)
    m.eval()
    path = tmp_path / "model.pt"
    save_checkpoint(path, m, hp, ["NORM", "MI", "STTC"])
    m2, meta = load_checkpoint(path)
    assert type(m2) is type(m) and not m2.training
    assert meta["hparams"]["architecture"] == architecture and meta["n_classes"] == 3
    x = torch.randn(4, 12, 200)
    with torch.no_grad():
        a, b = m(x), m2(x)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])


def test_trains_and_predicts_through_the_common_loop():
    """A tiny inception1d learns a lead-0 sine vs noise task with ptbxl_xai.model.training, like HybridECGNet."""
    rng = np.random.default_rng(0)
    n, T = 80, 96
    X = rng.standard_normal((n, 12, T)).astype(np.float32) * 0.5
    y = rng.random(n) < 0.5
    X[y, 0] += 2 * np.sin(np.linspace(0, 8 * np.pi, T, dtype=np.float32))
    Y = np.stack([y, ~y], 1).astype(np.uint8)
    model = model_from_config({"architecture": "inception1d", **SMALL["inception1d"]}, 2)
    cfg = TrainConfig(epochs=4, batch_size=16, lr=3e-3, patience=None, device="cpu", num_threads=1, loss="bce")
    model, hist = train_model(model, X[:48], Y[:48], X[48:], Y[48:], cfg, progress=False)
    assert hist.val_macro_auc.max() > 0.9
    probs, w = predict(model, X[48:], device="cpu")
    assert probs.shape == (32, 2) and w.shape == (32, T) and np.allclose(w.sum(1), 1, atol=1e-5)


def test_windowed_baseline_trains_on_crops_and_max_aggregates_sliding_windows():
    """The benchmark protocol: a random window per record in training, max over half-overlapping windows at test."""
    from ptbxl_xai.model.baselines import Windowed
    from ptbxl_xai.model.hybrid import model_from_config

    torch.manual_seed(0)
    model = model_from_config({"architecture": "inception1d", "window_samples": 250}, n_classes=3)
    assert isinstance(model, Windowed) and model.starts(1000) == [0, 125, 250, 375, 500, 625, 750]
    assert model.starts(1010)[-1] == 760  # the last window ends flush with the record
    seen = []
    model.inner.register_forward_hook(lambda m, inp, out: seen.append(inp[0].shape[-1]))
    x = torch.randn(2, 12, 1000)
    model.train()
    logits, weights = model(x)
    assert seen == [250] and logits.shape == (2, 3) and weights.shape == (2, model.time_steps(1000))
    model.eval()
    with torch.no_grad():
        got = model(x)[0]
        each = torch.stack([model.inner(x[:, :, s : s + 250])[0] for s in model.starts(1000)], 1)
    torch.testing.assert_close(got, each.amax(1))


def test_windowed_baseline_round_trips_through_a_checkpoint(tmp_path):
    from ptbxl_xai.model.checkpoint import load_checkpoint, save_checkpoint
    from ptbxl_xai.model.hybrid import model_from_config

    hp = {"architecture": "xresnet1d18", "window_samples": 250}
    model = model_from_config(hp, n_classes=2).eval()
    save_checkpoint(tmp_path / "m.pt", model, hp, ["a", "b"])
    loaded, _ = load_checkpoint(tmp_path / "m.pt")
    x = torch.randn(1, 12, 1000)
    with torch.no_grad():
        torch.testing.assert_close(loaded(x)[0], model(x)[0])
