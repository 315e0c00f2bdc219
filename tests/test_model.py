"""HybridECGNet shapes/attention, config building, and state_dict checkpoints."""

import numpy as np
import pytest
import torch

from ptbxl_xai.model.checkpoint import load_checkpoint, save_checkpoint, sidecar_path
from ptbxl_xai.model.hybrid import HybridECGNet, count_parameters, model_from_config

SMALL = dict(conv_channels=(8, 16), kernel_sizes=(5, 3), pool_sizes=(4, 2), lstm_hidden=8, attention_dim=8)


@pytest.mark.parametrize("temporal", ["bilstm", "none"])
@pytest.mark.parametrize("pooling", ["attention", "mean", "last"])
@pytest.mark.parametrize("T", [1000, 997])
def test_shapes_and_attention_sums_to_one(temporal, pooling, T):
    torch.manual_seed(0)
    m = HybridECGNet(n_classes=4, temporal=temporal, pooling=pooling, **SMALL).eval()
    with torch.no_grad():
        logits, att = m(torch.randn(3, 12, T))
    n = m.time_steps(T)
    assert n == T // 8
    assert logits.shape == (3, 4) and att.shape == (3, n)
    assert torch.isfinite(logits).all()
    assert torch.allclose(att.sum(1), torch.ones(3), atol=1e-5)
    assert (att >= 0).all()
    if pooling == "mean":
        assert torch.allclose(att, torch.full_like(att, 1 / n))
    if pooling == "last":
        assert (att[:, -1] == 1).all()


def test_default_model_and_sample_edges():
    m = HybridECGNet(n_classes=5)
    assert m.time_steps(1000) == 62
    edges = m.step_to_sample_edges(1000)
    assert len(edges) == 63 and edges[0] == 0 and edges[-1] == 1000
    assert (np.diff(edges) >= m.stride).all()
    logits, att = m.eval()(torch.randn(2, 12, 1000))
    assert logits.shape == (2, 5) and att.shape == (2, 62)
    assert 10_000 < count_parameters(m) < 1_000_000


def test_model_from_config():
    m = model_from_config(
        {"conv_channels": [8, 16], "kernel_sizes": [5, 3], "pool_sizes": [4, 2], "lstm_hidden": 8, "n_classes": 99},
        n_classes=3,
    )
    assert m.n_classes == 3 and m.pool_sizes == (4, 2)
    with pytest.raises(ValueError, match="unknown model hyper-parameters"):
        model_from_config({"hidden": 3}, n_classes=3)
    with pytest.raises(ValueError):
        HybridECGNet(n_classes=2, pooling="max")
    with pytest.raises(ValueError):
        HybridECGNet(n_classes=2, conv_channels=(8,), kernel_sizes=(3, 3), pool_sizes=(2,))


def _trained_like_model():
    torch.manual_seed(1)
    m = HybridECGNet(n_classes=3, **SMALL)
    m.train()
    with torch.no_grad():  # move the BatchNorm running statistics away from their init
        for _ in range(3):
            m(torch.randn(8, 12, 400) * 2 + 0.5)
    return m.eval()


def test_checkpoint_round_trip(tmp_path):
    m = _trained_like_model()
    path = tmp_path / "sub" / "model.pt"
    save_checkpoint(path, m, SMALL, ["NORM", "MI", "STTC"])
    assert path.is_file() and sidecar_path(path).is_file()
    assert not [p for p in path.parent.iterdir() if p.name.endswith(".tmp")]
    m2, meta = load_checkpoint(path)
    assert meta["label_names"] == ["NORM", "MI", "STTC"] and meta["n_classes"] == 3
    assert meta["torch_version"] == torch.__version__ and meta["hparams"]["lstm_hidden"] == 8
    assert not m2.training
    x = torch.randn(4, 12, 400)
    with torch.no_grad():
        a, b = m(x), m2(x)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])


def test_checkpoint_refuses_pickled_model(tmp_path):
    m = _trained_like_model()
    good = tmp_path / "good.pt"
    save_checkpoint(good, m, SMALL, ["a", "b", "c"])
    bad = tmp_path / "whole.pt"
    torch.save(m, bad)  # a whole pickled object, not a state_dict
    sidecar_path(bad).write_text(sidecar_path(good).read_text())
    with pytest.raises(ValueError, match="only state_dict checkpoints are accepted") as e:
        load_checkpoint(bad)
    assert str(bad) in str(e.value)


def test_checkpoint_errors_name_the_file(tmp_path):
    m = _trained_like_model()
    path = tmp_path / "m.pt"
    with pytest.raises(ValueError):
        save_checkpoint(path, m, SMALL, ["a", "b"])  # 2 names, 3 classes
    save_checkpoint(path, m, SMALL, ["a", "b", "c"])
    # hparams that do not match the weights
    other = tmp_path / "other.pt"
    save_checkpoint(other, m, dict(SMALL, lstm_hidden=4), ["a", "b", "c"])
    with pytest.raises(ValueError, match="does not match") as e:
        load_checkpoint(other)
    assert str(other) in str(e.value)
    # missing sidecar
    sidecar_path(path).unlink()
    with pytest.raises(FileNotFoundError, match="sidecar") as e:
        load_checkpoint(path)
    assert str(path) in str(e.value)
    # not a torch file at all
    junk = tmp_path / "junk.pt"
    junk.write_text("hello")
    sidecar_path(junk).write_text(sidecar_path(other).read_text())
    with pytest.raises(ValueError, match="junk.pt"):
        load_checkpoint(junk)


def test_inference_functions_fold_batchnorm_without_changing_outputs_or_the_model():
    """The explainers' fast path (Conv-BN folded, small batches) gives the model's own probabilities and
    attention, and leaves the caller's model (e.g. one being randomised by the sanity check) untouched."""
    from ptbxl_xai.model.inference import fuse_for_inference, model_functions

    torch.manual_seed(0)
    model = HybridECGNet(n_classes=4)
    with torch.no_grad():  # non-trivial running statistics, so folding has something to fold
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm1d):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
    model.eval()
    x = np.random.default_rng(0).standard_normal((70, 12, 1000)).astype(np.float32)
    with torch.inference_mode():
        logits, att = model(torch.from_numpy(x))
    predict, attention = model_functions(model, batch_size=32)  # 3 batches, the last partial
    np.testing.assert_allclose(predict(x), torch.sigmoid(logits).numpy(), atol=1e-5)
    np.testing.assert_allclose(attention(x), att.numpy(), atol=1e-5)
    assert predict(x[:0]).shape == (0, 4)
    fused = fuse_for_inference(model)
    assert not any(isinstance(m, torch.nn.BatchNorm1d) for m in fused.modules())
    assert sum(isinstance(m, torch.nn.BatchNorm1d) for m in model.modules()) == 3


def test_model_calls_stop_between_batches_when_asked():
    """`should_stop` is asked before every batch: the app's explanation of a client that left stops there."""
    from ptbxl_xai.model.inference import CallsStopped, model_functions

    model = HybridECGNet(n_classes=3).eval()
    x = np.zeros((5, 12, 1000), np.float32)
    asked = []

    def stop_at_third():
        asked.append(1)
        return len(asked) >= 3

    predict, _ = model_functions(model, batch_size=2, should_stop=stop_at_third)
    with pytest.raises(CallsStopped):
        predict(x)  # 3 batches: the third is not run
    assert len(asked) == 3
    assert model_functions(model, batch_size=2, should_stop=lambda: False)[0](x).shape == (5, 3)
