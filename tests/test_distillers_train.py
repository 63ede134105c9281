"""Every distiller trains a tiny fake student against a tiny fake teacher, and rejects bad input early."""
from __future__ import annotations

import functools
import json
import warnings

import numpy as np
import pytest
import torch
from torch import nn

from eegkd_bench.api import (
    Distiller,
    EEGModel,
    InputSpec,
    ModelOutput,
    TeacherBatch,
    TeacherInfo,
    UserError,
    option_defaults,
)
from eegkd_plugins.distillers.at import AttentionTransfer, at_loss, student_attention, teacher_attention
from eegkd_plugins.distillers.common import pooled_teacher_embedding, student_embedding
from eegkd_plugins.distillers.dkd import DKD, nckd_loss, tckd_loss
from eegkd_plugins.distillers.dlink import DLink, eegkd_register_distillers
from eegkd_plugins.distillers.fitnets import FitNets
from eegkd_plugins.distillers.kd import KD, kd_loss
from eegkd_plugins.distillers.none import NoDistillation
from eegkd_plugins.distillers.pkt import PKT, pkt_loss
from eegkd_plugins.distillers.rkd import RKD, rkd_angle_loss, rkd_distance_loss

SPEC = InputSpec(n_channels=5, n_samples=48, n_classes=3)
LAYERS = ("layer_1", "layer_2", "layer_3")
SHAPE = (4, 3, 8)  # (C, P, D)
INFO = TeacherInfo("fake", LAYERS, {n: SHAPE for n in LAYERS}, SPEC.n_classes)



def dlink_variants() -> dict[str, functools.partial]:
    """The variants the dlink plugin registers, as DLink with their options."""
    found: dict[str, functools.partial] = {}
    eegkd_register_distillers(lambda name, factory=None, *, base=None, options=None, **_: found.update(
        {name: functools.partial(DLink, **options)} if base == "dlink" else {}))
    return found


ALL = {
    "none": NoDistillation, "kd": KD, "fitnets": FitNets, "rkd": RKD, "at": AttentionTransfer, "pkt": PKT,
    "dkd": DKD, "dlink": DLink, **dlink_variants(),
}
FEATURE_DISTILLERS = [n for n, c in ALL.items() if getattr(c, "func", c).needs_student_features]


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Tiny tensors: one intra-op thread is faster and immune to a busy machine."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


class FakeStudent(EEGModel):
    """Two 1-D conv blocks (the feature maps) and a linear head on the time-averaged last map."""

    feature_names = ("block1", "block2")

    def __init__(self, spec: InputSpec = SPEC) -> None:
        super().__init__()
        self.conv1 = nn.Conv1d(spec.n_channels, 6, 5, stride=2, padding=2)
        self.conv2 = nn.Conv1d(6, 8, 5, stride=2, padding=2)
        self.head = nn.Linear(8, spec.n_classes)

    def forward_features(self, x: torch.Tensor) -> ModelOutput:
        f1 = torch.relu(self.conv1(x))
        f2 = torch.relu(self.conv2(f1))
        emb = f2.mean(-1)
        return ModelOutput(self.head(emb), {"block1": f1, "block2": f2}, emb)


class FeaturelessStudent(EEGModel):
    feature_names = ()

    def __init__(self, spec: InputSpec = SPEC) -> None:
        super().__init__()
        self.head = nn.Linear(spec.n_channels * spec.n_samples, spec.n_classes)

    def forward_features(self, x: torch.Tensor) -> ModelOutput:
        return ModelOutput(self.head(x.flatten(1)))


def fake_data(n: int = 24, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, TeacherBatch]:
    """Windows whose class sets a channel's power, and a fixed random 'teacher' computed from them."""
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % SPEC.n_classes
    x = torch.randn(n, SPEC.n_channels, SPEC.n_samples, generator=g)
    x[torch.arange(n), y] *= 3.0
    patches = x.reshape(n, SPEC.n_channels, SHAPE[1], -1).pow(2).mean(-1)  # (n, channels, P)
    feats = {}
    for i, name in enumerate(LAYERS):
        w = torch.randn(SPEC.n_channels, SHAPE[0] * SHAPE[2], generator=g) / (i + 1)
        h = torch.tanh(torch.einsum("ncp,ck->npk", patches.log(), w)).reshape(n, SHAPE[1], SHAPE[0], SHAPE[2])
        feats[name] = h.permute(0, 2, 1, 3).contiguous().requires_grad_(True)  # (n, C, P, D)
    logits = torch.nn.functional.one_hot(y, SPEC.n_classes).float() * 4 + 0.1 * torch.randn(n, 3, generator=g)
    return x, y, TeacherBatch(logits=logits.requires_grad_(True), features=feats)


def build(name: str, student: EEGModel | None = None, **options) -> Distiller:
    torch.manual_seed(0)
    return ALL[name](student=student or FakeStudent(), teacher=None if name == "none" else INFO, spec=SPEC, **options)


def train_steps(d: Distiller, x, y, tb, steps: int, lr: float = 1e-2) -> list[float]:
    """What the shared loop does per batch: sum the terms, backward, AdamW on trainable parameters."""
    params = [p for p in d.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=lr)
    d.train()
    history = []
    for _ in range(steps):
        terms = d.losses(x, y, tb)
        loss = sum(terms.values())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        history.append(float(loss.detach()))
    return history


# ------------------------------------------------------------------ training
@pytest.mark.parametrize("name", list(ALL))
def test_every_distiller_reduces_its_total_loss(name):
    x, y, tb = fake_data()
    options = {"stage": "joint"} if name == "fitnets" else {}
    d = build(name, **options)
    d.on_train_start(tb, y)
    history = train_steps(d, x, y, tb, steps=40)
    assert all(np.isfinite(history))
    assert np.mean(history[-3:]) < 0.8 * np.mean(history[:3]), history
    d.eval()
    with torch.no_grad():
        logits = d.predict(x)
    assert logits.shape == (len(x), SPEC.n_classes)
    json.dumps(d.report())  # diagnostics must be storable


@pytest.mark.parametrize("name", [n for n in ALL if n != "none"])
def test_gradients_reach_student_and_never_teacher(name):
    x, y, tb = fake_data()
    d = build(name, **({"stage": "joint"} if name == "fitnets" else {}))
    d.on_train_start(tb, y)
    terms = d.losses(x, y, tb)
    assert "ce" in terms and all(t.dim() == 0 for t in terms.values())
    sum(terms.values()).backward()
    assert tb.logits.grad is None and all(h.grad is None for h in tb.features.values())
    assert d.student.conv1.weight.grad is not None and d.student.conv1.weight.grad.abs().sum() > 0
    for aux in ("regressor", "projector"):
        module = getattr(d, aux, None)
        if module is not None:
            assert all(p.grad is not None for p in module.parameters()), aux


def test_fitnets_two_stages():
    x, y, tb = fake_data()
    d = build("fitnets", hint_epochs=2)
    terms = d.losses(x, y, tb)
    assert set(terms) == {"ce", "hint"} and float(terms["ce"]) == 0.0
    sum(terms.values()).backward()
    assert d.student.head.weight.grad is None  # stage 1 trains up to the guided layer only
    assert d.student.conv2.weight.grad is None  # guided layer is the middle map (block1)
    hint_history = train_steps(d, x, y, tb, steps=30)
    assert hint_history[-1] < 0.8 * hint_history[0]
    d.on_epoch_end(0)
    assert d.in_hint_stage
    d.on_epoch_end(1)
    assert not d.in_hint_stage and set(d.losses(x, y, tb)) == {"ce", "kd"}
    joint = build("fitnets", stage="joint")
    assert set(joint.losses(x, y, tb)) == {"ce", "hint", "kd"}


def test_dkd_warmup_keeps_the_official_share_of_the_recipe():
    for total, warmup in ((0, 1), (7, 1), (100, 8), (240, 20)):
        assert build("dkd", total_epochs=total).warmup_epochs == warmup  # given by the runner at construction
    assert build("dkd", warmup=5).warmup_epochs == 5
    d = build("dkd", total_epochs=240)
    d.epoch = 10
    assert d.warm() == 0.5


def test_fitnets_hint_stage_scales_with_the_recipe_and_is_never_restored():
    from eegkd_bench.training import TrainConfig, fit

    for total, hints in ((0, 1), (7, 2), (100, 25)):
        assert build("fitnets", total_epochs=total).hint_epochs == hints
    assert build("fitnets", hint_epochs=3).hint_epochs == 3
    # every epoch but the last is a hint epoch: the restored state is the last (stage-2) epoch, not an
    # earlier hint epoch whose untrained classifier happened to score higher on validation
    x, y, tb = fake_data()
    d = build("fitnets", hint_epochs=3)

    class Source:  # one batch of every window, in order: the whole fake teacher batch
        def batch(self, idx, xb):
            return tb

    result = fit(d, x.numpy(), y.numpy(), x.numpy(), y.numpy(), int(y.max()) + 1, TrainConfig(epochs=4,
                 batch_size=len(x)), seed=0, teacher=Source())
    assert result.best_epoch == 4


def test_fitnets_default_layers_are_the_middle():
    d = build("fitnets")
    assert d.student_layer == "block1" and d.teacher_layer == "layer_1"  # layer_{L//2} with L = 3
    big = TeacherInfo("big", tuple(f"layer_{i}" for i in range(1, 13)), {f"layer_{i}": SHAPE for i in range(1, 13)}, 3)
    assert FitNets(FakeStudent(), big, SPEC).teacher_layer == "layer_6"


def test_dkd_warmup_is_linear_over_epochs():
    d = build("dkd", total_epochs=240)  # the official schedule: 20 warm-up epochs
    assert d.warm() == pytest.approx(1 / 20)
    d.on_epoch_end(8)
    assert d.warm() == pytest.approx(10 / 20)
    d.on_epoch_end(40)
    assert d.warm() == 1.0


def test_kd_alpha_mixes_terms():
    x, y, tb = fake_data()
    d = build("kd", alpha=0.25, temperature=2.0)
    with torch.no_grad():
        terms = d.losses(x, y, tb)
        plain = build("kd", alpha=0.0).losses(x, y, tb)
        ce = torch.nn.functional.cross_entropy(d.student(x), y)
    assert float(plain["kd"]) == 0.0
    assert float(terms["ce"]) == pytest.approx(0.75 * float(ce), rel=1e-5)


# ------------------------------------------------------------------ weights and defaults
_DLINK = {
    "transfer": True, "use_router": True, "use_mic": True, "lambda_feat": 1.0, "lambda_spec": 0.1, "phase_weight": 1.0,
    "spec_nfft": 8, "mimic_loss": "mse", "normalize_layers": True, "router_mode": "two-stage", "router_tau": 1.0,
    "router_top_k": 0, "router_hidden": 64, "router_epochs": 30, "router_lr": 0.001, "router_batch": 256,
    "router_balance": 0.01, "router_weight": 1.0, "mic_rank": 16, "mic_basis": 4, "mic_channels": 4, "mic_dim": 8,
    "mic_stride": 2, "kd_weight": 0.0, "temperature": 4.0,
}
#: The defaults docs/distillers.md documents (they enter every cell key, so a change must be deliberate).
DOCUMENTED_DEFAULTS = {
    "none": {},
    "kd": {"temperature": 4.0, "alpha": 0.9, "transfer": True},
    "fitnets": {"transfer": True, "stage": "two-stage", "hint_epochs": None, "hint_weight": 1.0, "kd_weight": 1.0, "temperature": 4.0,
                "student_layer": None, "teacher_layer": None},
    "rkd": {"distance_weight": 1.0, "angle_weight": 2.0, "transfer": True},
    "at": {"beta": 1000.0, "student_layers": None, "teacher_layers": None, "transfer": True},
    "pkt": {"weight": 30000.0, "transfer": True},
    "dkd": {"alpha": 1.0, "beta": 8.0, "temperature": 4.0, "warmup": None, "ce_weight": 1.0},
    "dlink": _DLINK,
    "dlink-norouter": {**_DLINK, "use_router": False},
    "dlink-nospec": {**_DLINK, "lambda_spec": 0.0},
    "dlink-nomic": {**_DLINK, "use_mic": False},
    "mic-ce": {**_DLINK, "use_router": False, "lambda_feat": 0.0, "lambda_spec": 0.0, "kd_weight": 0.0,
               "transfer": False},
}


@pytest.mark.parametrize("name", list(ALL))
def test_defaults_are_the_documented_ones(name):
    factory = ALL[name]
    declared = {**option_defaults(getattr(factory, "func", factory).defaults), **getattr(factory, "keywords", {})}
    assert declared == DOCUMENTED_DEFAULTS[name]
    assert build(name).hparams == DOCUMENTED_DEFAULTS[name]  # what a cell without options trains with


def _terms(d: Distiller, x, y, tb):
    """The distiller's loss terms and its student's outputs on the same batch (eval mode: deterministic)."""
    d.eval()
    with torch.no_grad():
        return d.losses(x, y, tb), d.student.forward_features(x)


def test_kd_default_terms():
    x, y, tb = fake_data()
    terms, out = _terms(build("kd"), x, y, tb)
    ce = torch.nn.functional.cross_entropy(out.logits, y)
    assert float(terms["ce"]) == pytest.approx(0.1 * float(ce), rel=1e-5)
    assert float(terms["kd"]) == pytest.approx(0.9 * float(kd_loss(out.logits, tb.logits, 4.0)), rel=1e-5)


def test_dkd_default_terms():
    x, y, tb = fake_data()
    d = build("dkd", total_epochs=240)  # the official schedule: 20 warm-up epochs
    terms, out = _terms(d, x, y, tb)
    s, t = out.logits, tb.logits.detach()
    expected = (1.0 * tckd_loss(s, t, y, 4.0) + 8.0 * nckd_loss(s, t, y, 4.0)) / 20  # warm-up: epoch 1 of 20
    assert float(terms["dkd"]) == pytest.approx(float(expected), rel=1e-5)
    assert float(terms["ce"]) == pytest.approx(float(torch.nn.functional.cross_entropy(s, y)), rel=1e-5)


@pytest.mark.parametrize("beta", [None, 3.0])
def test_at_term_is_half_beta_times_the_summed_pair_losses(beta):
    x, y, tb = fake_data()
    d = build("at") if beta is None else build("at", beta=beta)
    terms, out = _terms(d, x, y, tb)
    total = sum(at_loss(student_attention(out.features[s], SHAPE[1]), teacher_attention(tb.features[t].detach()))
                for s, t in d.pairs)
    assert float(total) > 0
    assert float(terms["at"]) == pytest.approx((beta or 1000.0) / 2 * float(total), rel=1e-5)


@pytest.mark.parametrize("options", [{}, {"distance_weight": 2.0, "angle_weight": 0.5}])
def test_rkd_terms_carry_their_weights(options):
    x, y, tb = fake_data()
    terms, out = _terms(build("rkd", **options), x, y, tb)
    s = student_embedding(out, FakeStudent.feature_names[-1])
    t = pooled_teacher_embedding(tb.features[LAYERS[-1]].detach())
    w = {**DOCUMENTED_DEFAULTS["rkd"], **options}
    assert float(terms["rkd_distance"]) == pytest.approx(w["distance_weight"] * float(rkd_distance_loss(s, t)), rel=1e-5)
    assert float(terms["rkd_angle"]) == pytest.approx(w["angle_weight"] * float(rkd_angle_loss(s, t)), rel=1e-5)


@pytest.mark.parametrize("options", [{}, {"weight": 7.0}])
def test_pkt_term_carries_its_weight(options):
    x, y, tb = fake_data()
    terms, out = _terms(build("pkt", **options), x, y, tb)
    s = student_embedding(out, FakeStudent.feature_names[-1])
    t = pooled_teacher_embedding(tb.features[LAYERS[-1]].detach())
    w = {**DOCUMENTED_DEFAULTS["pkt"], **options}["weight"]
    assert float(pkt_loss(s, t)) > 0
    assert float(terms["pkt"]) == pytest.approx(w * float(pkt_loss(s, t)), rel=1e-5)


# ------------------------------------------------------------------ what the runner reads
def test_teacher_needs():
    assert not build("none").teacher_needs().any
    assert build("kd").teacher_needs().logits and build("dkd").teacher_needs().logits
    assert build("fitnets").teacher_needs().layers == ("layer_1",)
    assert build("rkd").teacher_needs().layers == ("layer_3",)
    assert build("at").teacher_needs().layers == ("layer_2", "layer_3")
    assert build("dlink").teacher_needs().layers == LAYERS and not build("dlink").teacher_needs().logits
    assert build("dlink-norouter").teacher_needs().layers == ("layer_3",)
    assert build("dlink", kd_weight=0.5).teacher_needs().logits
    assert not build("mic-ce").teacher_needs().any  # the size-matched control reads no teacher output


def test_training_only_params_count_aux_modules_not_the_deployed_model():
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    for name in ("none", "kd", "rkd", "pkt", "at", "dkd"):
        assert build(name).training_only_params() == 0
    fit = build("fitnets")
    assert fit.training_only_params() == count(fit.regressor) > 0
    dl = build("dlink")
    assert dl.training_only_params() == count(dl.router) + count(dl.probe)
    assert dl.deployed() is dl.mic and dl.projector is None  # Pi is deployed inside MiC
    nomic = build("dlink-nomic")
    assert nomic.deployed() is nomic.student
    assert nomic.training_only_params() == count(nomic.router) + count(nomic.probe) + count(nomic.projector)
    assert build("dlink-norouter").training_only_params() == 0


def test_registered_through_entry_points():
    from eegkd_bench.plugins import get_registry

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a broken third-party plugin in this environment only warns
        names = get_registry(check=False).names("distillers")
    assert set(ALL) <= set(names)


# ------------------------------------------------------------------ bad input
@pytest.mark.parametrize("name", FEATURE_DISTILLERS)
def test_feature_distiller_rejects_featureless_student(name):
    with pytest.raises(UserError, match="exposes none"):
        build(name, student=FeaturelessStudent())


@pytest.mark.parametrize("name", [n for n in ALL if n != "none"])
def test_distiller_without_teacher_is_a_user_error(name):
    with pytest.raises(UserError, match="needs a teacher"):
        ALL[name](student=FakeStudent(), teacher=None, spec=SPEC)


@pytest.mark.parametrize("name, options, pattern", [
    ("fitnets", {"teacher_layer": "layer_9"}, "no layer 'layer_9'"),
    ("fitnets", {"student_layer": "block7"}, "no feature 'block7'"),
    ("fitnets", {"stage": "both"}, "fitnets.stage = 'both' is not one of 'two-stage', 'joint'"),
    ("at", {"teacher_layers": ["layer_1"]}, "one teacher layer per student layer"),
    ("at", {"teacher_layers": ["layer_1", "layer_0"]}, "no layer 'layer_0'"),
    ("kd", {"alpha": 2.0}, r"kd.alpha = 2.0 is out of range; expected number in \[0, 1\]"),
    ("kd", {"temperature": 0}, "kd.temperature = 0.0 is out of range; expected number > 0"),
    ("kd", {"temperatur": 2.0}, "unknown option"),
    ("dlink", {"router_mode": "later"}, "dlink.router_mode = 'later' is not one of"),
    ("dlink", {"mic_rank": 0}, "dlink.mic_rank = 0 is out of range; expected integer >= 1"),
    ("dlink", {"mic_rank": 2.5}, "dlink.mic_rank = 2.5 has the wrong type; expected an integer"),
    ("dlink", {"lambda_spec": -1}, "dlink.lambda_spec = -1.0 is out of range"),
])
def test_bad_options_are_one_line_user_errors(name, options, pattern):
    with pytest.raises(UserError, match=pattern) as err:
        build(name, **options)
    assert "\n" not in str(err.value)


def test_dlink_rejects_layers_of_different_shapes():
    odd = TeacherInfo("odd", LAYERS, {"layer_1": (4, 3, 8), "layer_2": (4, 3, 16), "layer_3": (4, 3, 8)}, 3)
    with pytest.raises(UserError, match="dlink-norouter"):
        DLink(FakeStudent(), odd, SPEC)
    ALL["dlink-norouter"](FakeStudent(), odd, SPEC)  # only the last layer is used: fine


# ------------------------------------------------------------------ through the shared loop
@pytest.mark.parametrize("name", ["fitnets", "dlink", "dkd"])
def test_runs_in_the_shared_training_loop(name):
    from eegkd_bench.training import TrainConfig, fit

    x, y, tb = fake_data(n=30)
    arrays = {k: v.detach().numpy() for k, v in tb.features.items()}

    class Source:
        def batch(self, idx, *_):  # the loop may also pass the (augmented) windows
            return TeacherBatch(logits=tb.logits.detach()[idx],
                                features={k: torch.from_numpy(a[idx]) for k, a in arrays.items()})

    d = build(name, **({"hint_epochs": 1} if name == "fitnets" else {}))
    d.on_train_start(Source().batch(np.arange(30)), y)
    result = fit(d, x.numpy(), y.numpy(), x.numpy(), y.numpy(), SPEC.n_classes,
                 TrainConfig(epochs=3, batch_size=10), seed=0, teacher=Source())
    assert len(result.history) == 3 and np.isfinite(result.history[-1]["loss"]["ce"])


class _BatchNormNet(nn.Module):
    """A conv + slow batch norm (EEGNet's momentum 0.01) + linear head, trainable by ``fit``."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv1d(3, 4, 1)
        self.bn = nn.BatchNorm1d(4, momentum=0.01)
        self.drop = nn.Dropout(0.5)
        self.head = nn.Linear(4, 2)

    def predict(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.drop(self.bn(self.conv(x))).mean(-1))

    def losses(self, x, y, teacher):
        return {"ce": nn.functional.cross_entropy(self.predict(x), y)}


@pytest.mark.parametrize("recalibrate", [True, False])
def test_batch_norm_statistics_are_the_training_population_s_before_each_validation(recalibrate):
    from eegkd_bench.training import TrainConfig, fit

    rng = np.random.default_rng(0)
    X = (5.0 * rng.standard_normal((64, 3, 10)) + 3.0).astype(np.float32)
    y = (np.arange(64) % 2).astype(np.int64)
    torch.manual_seed(0)
    net = _BatchNormNet()
    cfg = TrainConfig(epochs=1, batch_size=8, lr=1e-3, bn_recalibrate=recalibrate)
    fit(net, X, y, X[:16], y[:16], 2, cfg, seed=0)
    with torch.no_grad():
        pre = net.conv(torch.from_numpy(X))  # (N, 4, T): what the batch norm normalises
    population_mean = pre.mean(dim=(0, 2))
    close = torch.allclose(net.bn.running_mean, population_mean, atol=1e-3)
    assert close == recalibrate  # a momentum of 0.01 leaves the running mean far from it after 8 steps
    if recalibrate:
        assert torch.allclose(net.bn.running_var, pre.var(dim=(0, 2)), rtol=2e-2)
        assert net.bn.momentum == 0.01 and net.training  # the layer's own settings come back


def test_the_base_class_enforces_needs_student_features_for_any_distiller():
    class ReadsFeatures(Distiller):
        needs_student_features = True

    with pytest.raises(UserError, match="ReadsFeatures reads the student's feature maps"):
        ReadsFeatures(student=FeaturelessStudent(), teacher=None, spec=SPEC)
    ReadsFeatures(student=FakeStudent(), teacher=None, spec=SPEC)  # a student with maps is fine
