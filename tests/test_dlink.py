"""DLink: the router, the project-then-compress student and the ablation variants."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from torch import nn

from eegkd_bench.api import EEGModel, InputSpec, ModelOutput, TeacherBatch, TeacherInfo
from eegkd_plugins.distillers.dlink import DLink
from eegkd_plugins.distillers.mic import MiCStudent, StructuredCompressor, TeacherLayoutProjector, drop_unused_head
from eegkd_plugins.distillers.router import LayerRouter, layer_summaries

SPEC = InputSpec(n_channels=5, n_samples=48, n_classes=3)
LAYERS = ("layer_1", "layer_2", "layer_3")
SHAPE = (4, 3, 8)
INFO = TeacherInfo("fake", LAYERS, {n: SHAPE for n in LAYERS}, SPEC.n_classes)
count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


class FakeStudent(EEGModel):
    feature_names = ("block1", "block2")

    def __init__(self, spec: InputSpec = SPEC, strict_head: bool = False) -> None:
        super().__init__()
        self.strict_head = strict_head
        self.conv1 = nn.Conv1d(spec.n_channels, 6, 5, stride=2, padding=2)
        self.conv2 = nn.Conv1d(6, 8, 5, stride=2, padding=2)
        self.head = nn.Linear(8, spec.n_classes)

    def forward_features(self, x: torch.Tensor) -> ModelOutput:
        f1 = torch.relu(self.conv1(x))
        f2 = torch.relu(self.conv2(f1))
        emb = f2.mean(-1)
        logits = self.head(emb)
        if self.strict_head:  # a backbone whose forward cannot live without its head
            logits = logits.view(len(x), SPEC.n_classes)
        return ModelOutput(logits, {"block1": f1, "block2": f2}, emb)


def layered_teacher(n: int = 90, informative: int = 1, seed: int = 0) -> tuple[torch.Tensor, TeacherBatch]:
    """Layers of noise, except layer ``informative`` (0-based) which carries a class-specific pattern."""
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % SPEC.n_classes
    patterns = torch.randn(SPEC.n_classes, SHAPE[2], generator=g) * 2.0
    feats = {}
    for i, name in enumerate(LAYERS):
        h = torch.randn(n, *SHAPE, generator=g)
        if i == informative:
            h = h + patterns[y][:, None, None, :]
        feats[name] = h
    return y, TeacherBatch(features=feats)


# ------------------------------------------------------------------ router
def test_router_weights_sum_to_one_per_input_and_top_k_keeps_k():
    layers = [torch.randn(6, *SHAPE) for _ in LAYERS]
    summaries, _ = layer_summaries(layers)
    router = LayerRouter(len(LAYERS), SHAPE[2], hidden=16)
    nn.init.normal_(router.mlp[2].weight)  # away from the uniform start
    alpha = router(summaries)
    assert alpha.shape == (6, 3) and torch.allclose(alpha.sum(1), torch.ones(6)) and (alpha >= 0).all()
    assert not torch.allclose(alpha[0], alpha[1])  # input-conditioned
    router.top_k = 1
    one = router(summaries)
    assert torch.allclose(one.sum(1), torch.ones(6)) and ((one > 0).sum(1) == 1).all()


def test_router_starts_uniform():
    router = LayerRouter(len(LAYERS), SHAPE[2])
    alpha = router(layer_summaries([torch.randn(4, *SHAPE) for _ in LAYERS])[0])
    assert torch.allclose(alpha, torch.full((4, 3), 1 / 3))


@pytest.mark.parametrize("informative", [0, 2])
def test_two_stage_router_finds_the_informative_layer_and_freezes(informative):
    y, tb = layered_teacher(informative=informative)
    torch.manual_seed(0)  # the router's initialisation and stage-1 order, whatever ran before this test
    d = DLink(FakeStudent(), INFO, SPEC, router_epochs=60, router_lr=1e-2, router_batch=32)
    d.on_train_start(tb, y)
    rep = d.report()["router"]
    assert rep["fitted_before_training"] and rep["probe_train_acc"] > 0.9
    assert int(np.argmax(rep["alpha_mean"])) == informative and max(rep["alpha_mean"]) > 0.5
    assert sum(rep["alpha_mean"]) == pytest.approx(1.0, abs=1e-4)
    assert set(rep["alpha_per_class"]) == {"0", "1", "2"}
    assert not any(p.requires_grad for p in d.router.parameters())
    d.train()
    assert not d.router.training and not d.probe.training and d.mic.training
    x = torch.randn(len(y), SPEC.n_channels, SPEC.n_samples)
    assert "router" not in d.losses(x, y, tb)
    json.dumps(d.report())


def test_on_train_start_reads_float16_arrays_in_batches():
    y, tb = layered_teacher(n=40)
    half = TeacherBatch(features={k: v.numpy().astype(np.float16) for k, v in tb.features.items()})
    d = DLink(FakeStudent(), INFO, SPEC, router_epochs=2, router_batch=16)
    d.on_train_start(half, y)
    assert d.router_fitted


def test_joint_router_learns_only_from_the_probe():
    y, tb = layered_teacher(n=30)
    x = torch.randn(30, SPEC.n_channels, SPEC.n_samples)
    d = DLink(FakeStudent(), INFO, SPEC, router_mode="joint")
    d.on_train_start(tb, y)  # joint: nothing happens before training
    assert not d.router_fitted
    terms = d.losses(x, y, tb)
    assert "router" in terms
    terms["mimic"].backward(retain_graph=True)
    assert all(p.grad is None for p in d.router.parameters())  # alpha is detached in the mimic target
    terms["router"].backward()
    assert all(p.grad is not None for p in d.router.parameters())
    d.on_epoch_end(0)
    assert sum(d.report()["router"]["alpha_mean"]) == pytest.approx(1.0, abs=1e-4)


def test_two_stage_without_cached_layers_falls_back_to_joint():
    y, tb = layered_teacher(n=12)
    d = DLink(FakeStudent(), INFO, SPEC)
    with pytest.warns(UserWarning, match="trained jointly"):
        d.on_train_start(None, y)
    assert "router" in d.losses(torch.randn(12, SPEC.n_channels, SPEC.n_samples), y, tb)


# ------------------------------------------------------------------ MiC student
def test_mic_is_deployed_and_replaces_the_backbone_head():
    student = FakeStudent()
    d = DLink(student, INFO, SPEC)
    mic = d.deployed()
    assert isinstance(mic, MiCStudent) and isinstance(student.head, nn.Identity)
    assert mic.parts()["dropped_backbone_modules"] == ["head"]
    backbone_without_head = count(student.conv1) + count(student.conv2)
    assert count(mic) == backbone_without_head + count(mic.projector) + count(mic.compressor)
    x = torch.randn(4, SPEC.n_channels, SPEC.n_samples)
    d.eval()
    logits, projected = mic.forward_mimic(x)
    assert projected.shape == (4, *SHAPE) and torch.allclose(d.predict(x), logits)
    assert torch.allclose(mic.forward_features(x).logits, logits)


def test_head_is_kept_when_the_backbone_needs_it():
    student = FakeStudent(strict_head=True)
    assert drop_unused_head(student, SPEC, "block2") == []
    assert isinstance(student.head, nn.Linear)


def test_projector_and_compressor_sizes_follow_their_formulas():
    F_, (C, P, D), K, r = 16, (22, 4, 200), 4, 16
    proj = TeacherLayoutProjector(F_, (C, P, D), rank=r, basis=K)
    assert count(proj) == K * r * F_ + C * K + r * D  # no biases; the input batch norm has no parameters
    assert proj(torch.randn(2, F_, 1, 31)).shape == (2, C, P, D)  # (B, F, 1, T') maps work too
    c, d, n_cls = 4, 8, 4
    comp = StructuredCompressor((C, P, D), n_cls, channels=c, width=d, stride=2)
    p_out = 2
    assert count(comp) == C * c + D * d + 2 * c * d + c * d * (2 + 1) + c * d * p_out * n_cls + n_cls  # kernel 2
    assert comp(torch.randn(2, C, P, D)).shape == (2, n_cls)
    # a single patch: the temporal reduction degrades to kernel 1 instead of failing
    assert StructuredCompressor((C, 1, D), n_cls)(torch.randn(2, C, 1, D)).shape == (2, n_cls)


def test_mic_overhead_is_modest_for_a_bcic_layout():
    spec = InputSpec(22, 1000, 4, 250.0)
    info = TeacherInfo("cbramod-like", tuple(f"layer_{i}" for i in range(1, 13)),
                       {f"layer_{i}": (22, 4, 200) for i in range(1, 13)}, 4)
    student = FakeStudent(spec)
    plain = count(student)
    mic = DLink(student, info, spec).deployed()
    overhead = count(mic) - (plain - 8 * 4 - 4)  # the dropped head was 8 * 4 + 4
    assert 0 < overhead < 8000  # Pi + compressor + classifier, independent of the teacher's 14 M-parameter head


# ------------------------------------------------------------------ variants
def test_variants_switch_one_part_each():
    x = torch.randn(6, SPEC.n_channels, SPEC.n_samples)
    y, tb = layered_teacher(n=6)
    assert "spec" in DLink(FakeStudent(), INFO, SPEC).losses(x, y, tb)
    assert "spec" not in DLink(FakeStudent(), INFO, SPEC, lambda_spec=0.0).losses(x, y, tb)
    norouter = DLink(FakeStudent(), INFO, SPEC, use_router=False)
    assert norouter.router is None and norouter.layers == ("layer_3",)
    norouter.on_train_start(tb, y)
    assert "router" not in norouter.report()
    nomic = DLink(FakeStudent(), INFO, SPEC, use_mic=False)
    assert nomic.deployed() is nomic.student and isinstance(nomic.student.head, nn.Linear)
    assert set(nomic.losses(x, y, tb)) == {"ce", "mimic", "spec", "router"}  # router untrained: joint fallback
    assert set(DLink(FakeStudent(), INFO, SPEC, kd_weight=1.0, mimic_loss="cosine").losses(
        x, y, TeacherBatch(logits=torch.randn(6, 3), features=tb.features))) >= {"ce", "mimic", "spec", "kd"}


def test_mic_ce_control_trains_the_mic_student_on_labels_only():
    """Every distillation weight 0: no teacher output is read, only CE; the deployed model is the MiC student."""
    d = DLink(FakeStudent(), INFO, SPEC, use_router=False, lambda_feat=0.0, lambda_spec=0.0, kd_weight=0.0)
    assert not d.teacher_needs().any
    x, y = torch.randn(4, SPEC.n_channels, SPEC.n_samples), torch.tensor([0, 1, 2, 0])
    terms = d.losses(x, y, TeacherBatch())  # an empty batch: nothing from the teacher
    assert set(terms) == {"ce"} and torch.isfinite(terms["ce"])
    terms["ce"].backward()
    assert d.deployed() is d.mic and d.training_only_params() == 0
    assert d.student_label("eegnet") == "eegnet+mic"
    assert DLink(FakeStudent(), INFO, SPEC, use_mic=False).student_label("eegnet") == "eegnet"


def test_losses_are_finite_for_an_all_zero_teacher():
    x = torch.randn(4, SPEC.n_channels, SPEC.n_samples)
    y = torch.tensor([0, 1, 2, 0])
    tb = TeacherBatch(features={n: torch.zeros(4, *SHAPE) for n in LAYERS})
    d = DLink(FakeStudent(), INFO, SPEC, router_mode="joint")
    terms = d.losses(x, y, tb)
    sum(terms.values()).backward()
    assert all(torch.isfinite(t) for t in terms.values())
    assert all(torch.isfinite(p.grad).all() for p in d.parameters() if p.grad is not None)


# ------------------------------------------------------------------ numerics of the MiC head and the routed target
def test_routed_target_has_unit_scale_whatever_the_router_spread():
    from eegkd_plugins.distillers.router import mix_layers, routed_target
    g = torch.Generator().manual_seed(0)
    layers = [torch.nn.functional.layer_norm(h, h.shape[-1:]) for h in torch.randn(3, 6, *SHAPE, generator=g)]
    rms = lambda h: float(h.pow(2).mean().sqrt())  # noqa: E731
    uniform, one_hot = torch.full((6, 3), 1 / 3), torch.eye(3)[[1] * 6]
    assert rms(mix_layers(layers, uniform)) < 0.7  # disagreeing tokens: a plain convex mix shrinks
    for alpha in (uniform, one_hot, torch.softmax(torch.randn(6, 3, generator=g), 1)):
        target = routed_target(layers, alpha)
        assert rms(target) == pytest.approx(1.0, abs=1e-3)
        assert torch.allclose(target.mean(-1), torch.zeros(target.shape[:-1]), atol=1e-5)
    assert torch.allclose(routed_target(layers, one_hot), layers[1], atol=1e-4)
    assert torch.allclose(routed_target(layers, uniform, normalize=False), mix_layers(layers, uniform))


class MapBackbone(EEGModel):
    """A one-layer backbone whose final map has a chosen size, scale and offset (EEGNet's is small and off-centre)."""

    feature_names = ("map",)

    def __init__(self, spec: InputSpec, n_features: int, n_time: int, scale: float, offset: float) -> None:
        super().__init__()
        self.conv = nn.Conv1d(spec.n_channels, n_features, 1)
        self.head = nn.Linear(n_features, spec.n_classes)
        self.n_time, self.scale, self.offset = n_time, scale, offset

    def forward_features(self, x: torch.Tensor) -> ModelOutput:
        f = torch.nn.functional.adaptive_avg_pool1d(torch.nn.functional.elu(self.conv(x.pow(2))), self.n_time)
        f = self.scale * f + self.offset
        return ModelOutput(self.head(f.mean(-1)), {"map": f}, f.mean(-1))


@pytest.mark.parametrize("n_features,n_time,scale,offset", [(8, 6, 0.1, 0.2), (64, 40, 5.0, -1.0)])
def test_mic_head_trains_on_a_separable_toy_problem(n_features, n_time, scale, offset):
    """Class c doubles input channel c: the MiC student fits it from labels alone at lr 1e-2, batch 8.

    With the small, off-centre map, a head with biased projections and a plain LayerNorm stays near
    chance here (training accuracy 0.54-0.67 over four seeds)."""
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(1)
    n = 96
    y = torch.arange(n) % SPEC.n_classes
    x = torch.randn(n, SPEC.n_channels, SPEC.n_samples, generator=g)
    x[torch.arange(n), y] *= 2.0
    backbone = MapBackbone(SPEC, n_features, n_time, scale, offset)
    mic = MiCStudent(backbone, SPEC, "map", n_features, (4, 3, 16))
    opt = torch.optim.Adam(mic.parameters(), lr=1e-2)
    losses = []
    for step in range(40):
        idx = torch.randperm(n, generator=g)[:8]
        loss = nn.functional.cross_entropy(mic(x[idx]), y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    mic.eval()
    with torch.no_grad():
        acc = float((mic(x).argmax(1) == y).float().mean())
    assert np.mean(losses[-10:]) < 0.5 * np.mean(losses[:5]) and acc > 0.9, (losses[:5], losses[-10:], acc)
