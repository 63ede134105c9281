"""Students: shapes on several inputs, hand-counted sizes, input checks, max-norm, registry."""
from __future__ import annotations


import pytest
import torch
import torch.nn.functional as F

from eegkd_bench.api import EEGModel, InputSpec, UserError
from eegkd_plugins.students import conformer, deep, eegnet, shallow, transformer
from eegkd_plugins.students.common import MaxNormLinear

BUILDERS = {
    "eegnet": eegnet.build,
    "shallowconvnet": shallow.build,
    "deepconvnet": deep.build,
    "eegconformer": conformer.build,
    "tinytransformer": transformer.build,
}
SHAPES = [  # (channels, samples, classes, sfreq)
    (22, 800, 4, 200.0),
    (16, 1000, 6, 200.0),
    (32, 400, 2, 200.0),
    (3, 256, 2, 128.0),
]
BCI = InputSpec(22, 800, 4, 200.0)  # BCIC-IV-2a after the CBraMod recipe: 22 ch, 4 s at 200 Hz


def n_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: f"{s[0]}x{s[1]}-{s[2]}cls-{s[3]:g}Hz")
@pytest.mark.parametrize("name", list(BUILDERS))
def test_forward_shapes(name, shape):
    c, t, n, sfreq = shape
    model = BUILDERS[name](InputSpec(c, t, n, sfreq)).eval()
    assert isinstance(model, EEGModel)
    x = torch.randn(3, c, t)
    with torch.no_grad():
        out = model.forward_features(x)
        logits = model(x)
    assert out.logits.shape == (3, n) and torch.allclose(logits, out.logits)
    assert list(out.features) == list(model.feature_names) and len(model.feature_names) >= 2
    for v in out.features.values():
        assert v.ndim == 3 and v.shape[0] == 3 and v.shape[-1] >= 1  # (B, features, T')
    assert out.embedding is not None and out.embedding.ndim == 2 and out.embedding.shape[0] == 3
    assert torch.isfinite(out.logits).all()


def test_feature_time_axes_at_bci_shape():
    with torch.no_grad():
        x = torch.randn(2, 22, 800)
        shapes = {name: {k: tuple(v.shape[1:]) for k, v in b(BCI).eval().forward_features(x).features.items()}
                  for name, b in BUILDERS.items()}
    assert shapes["eegnet"] == {"block1": (16, 200), "block2": (16, 25)}
    assert shapes["shallowconvnet"] == {"conv": (40, 781), "pool": (40, 61)}
    assert shapes["deepconvnet"] == {"block1": (25, 264), "block2": (50, 85), "block3": (100, 26),
                                     "block4": (200, 6)}
    assert shapes["eegconformer"]["patch_embed"] == (40, 61) and shapes["eegconformer"]["layer_6"] == (40, 61)
    assert shapes["tinytransformer"]["layer_2"] == (32, 4)


# Parameter counts for BCIC-IV-2a (22 channels, 800 samples at 200 Hz, 4 classes), by hand.
HAND_COUNTS = {
    # temporal conv 8*1*100 (k = 200/2, no bias) = 800; BN 2*8 = 16; depthwise 16*1*22 = 352; BN 2*16 = 32;
    # separable depthwise 16*25 (k = 200/8) = 400; pointwise 16*16 = 256; BN 32;
    # dense 16*(800//4//8 = 25)*4 + 4 = 1604  -> 3492
    "eegnet": 800 + 16 + 352 + 32 + 400 + 256 + 32 + 1604,
    # temporal 40*20 + 40 (k = 25*200/250) = 840; spatial 40*40*22 = 35200; BN 80;
    # pool 60/12 over 781 -> 61 steps; dense 40*61*4 + 4 = 9764  -> 45884
    "shallowconvnet": 840 + 35200 + 80 + 9764,
    # k = 10*200/250 = 8; conv 25*8+25 = 225; spatial 25*25*22 = 13750; BN 50;
    # 50*25*8 = 10000 + BN 100; 100*50*8 = 40000 + BN 200; 200*100*8 = 160000 + BN 400;
    # time 800 -> 793/3=264 -> 257/3=85 -> 78/3=26 -> 19/3=6; dense 200*6*4 + 4 = 4804  -> 229529
    "deepconvnet": 225 + 13750 + 50 + 10000 + 100 + 40000 + 200 + 160000 + 400 + 4804,
    # conv 40*20+40 = 840; spatial 40*40*22+40 = 35240; BN 80; projection 40*40+40 = 1640;
    # block: 2 LN 160 + q,k,v,proj 4*(1600+40) = 6560 + MLP (40*160+160) + (160*40+40) = 13000
    # -> 19720 x 6 = 118320; 61 tokens; head 2440*256+256 + 256*32+32 + 32*4+4 = 633252  -> 789372
    "eegconformer": 840 + 35240 + 80 + 1640 + 6 * (160 + 6560 + 13000) + 633252,
    # spatial 22*8 = 176 + BN 16; patch conv 8*200*32 + 32 = 51232; pos 4*32 = 128;
    # layer: in_proj 3*32*32+96 = 3168, out_proj 1024+32 = 1056, ff 32*64+64 + 64*32+32 = 4192, 2 LN 128
    # -> 8544 x 2 = 17088; final LN 64; classifier 32*4+4 = 132  -> 68836
    "tinytransformer": 176 + 16 + 51232 + 128 + 2 * 8544 + 64 + 132,
}


@pytest.mark.parametrize("name", list(BUILDERS))
def test_parameter_count_matches_hand_arithmetic(name):
    assert n_params(BUILDERS[name](BCI)) == HAND_COUNTS[name]


def test_hand_counts_are_the_documented_ones():
    assert HAND_COUNTS == {"eegnet": 3492, "shallowconvnet": 45884, "deepconvnet": 229529,
                           "eegconformer": 789372, "tinytransformer": 68836}


@pytest.mark.parametrize("name, minimum", [
    ("eegnet", 32), ("shallowconvnet", 79), ("deepconvnet", 361), ("eegconformer", 79), ("tinytransformer", 200),
])
def test_too_short_window_names_model_minimum_and_got(name, minimum):
    with pytest.raises(UserError) as err:
        BUILDERS[name](InputSpec(4, minimum - 1, 2, 200.0))
    msg = str(err.value)
    assert msg.startswith(f"{name}: window of {minimum - 1} samples") and f"at least {minimum} samples" in msg
    BUILDERS[name](InputSpec(4, minimum, 2, 200.0))  # the minimum itself works


@pytest.mark.parametrize("name", list(BUILDERS))
def test_wrong_input_shape_and_unknown_option_are_user_errors(name):
    model = BUILDERS[name](InputSpec(4, 400, 2, 200.0))
    with pytest.raises(UserError, match=rf"^{name}: built for input \(batch, 4, 400\), got \(2, 5, 400\)"):
        model(torch.randn(2, 5, 400))
    with pytest.raises(UserError, match=rf"^unknown option 'colour' of student {name}"):
        BUILDERS[name](InputSpec(4, 400, 2, 200.0), colour="red")


def test_kernel_lengths_follow_sampling_rate():
    assert eegnet.build(InputSpec(22, 512, 4, 128.0)).kernel_temporal == 64  # the paper's value
    assert eegnet.build(InputSpec(22, 512, 4, 128.0)).kernel_separable == 16
    s = shallow.build(InputSpec(22, 1000, 4, 250.0))
    assert (s.kernel, s.pool_size, s.pool_stride) == (25, 75, 15)  # the paper's values
    assert deep.build(InputSpec(22, 1000, 4, 250.0)).kernel == 10
    c = conformer.build(InputSpec(22, 1000, 4, 250.0))
    assert (c.kernel, c.pool_size, c.pool_stride, c.n_tokens) == (25, 75, 15, 61)  # 61 tokens as the release


def test_eegnet_max_norm_constraints():
    model = eegnet.build(BCI)
    with torch.no_grad():
        model.conv_spatial.weight.mul_(100.0)
        model.classifier.weight.mul_(100.0)
    model(torch.randn(2, 22, 800))
    assert model.conv_spatial.weight.flatten(1).norm(dim=1).max() <= 1.0 + 1e-5
    assert model.classifier.weight.norm(dim=1).max() <= 0.25 + 1e-5


def test_max_norm_leaves_small_weights_and_autograd_alone():
    layer = MaxNormLinear(3, 2, max_norm=10.0)
    before = layer.weight.detach().clone()
    x = torch.randn(4, 3)
    y1, y2 = layer(x), layer(x)  # two forwards before one backward must not break autograd
    (y1.sum() + y2.sum()).backward()
    assert torch.equal(layer.weight.detach(), before) and layer.weight.grad is not None


@pytest.mark.parametrize("name", list(BUILDERS))
def test_one_training_step_updates_every_parameter(name):
    torch.manual_seed(0)
    model = BUILDERS[name](InputSpec(4, 400, 2, 200.0)).train()
    x, y = torch.randn(6, 4, 400), torch.tensor([0, 1, 0, 1, 0, 1])
    F.cross_entropy(model(x), y).backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or not torch.any(p.grad != 0)]
    assert missing == []


def test_students_are_registered_through_the_entry_point():
    import importlib.metadata as md

    from eegkd_bench.plugins import PluginHost

    (ep,) = [e for e in md.entry_points(group="eegkd_bench") if e.name == "students"]
    host = PluginHost()
    info = host.register_plugin(ep.load(), "students")
    assert info.status == "loaded" and set(info.registered["students"]) == set(BUILDERS)
    for name in BUILDERS:
        model = host.registry.get("students", name).factory(InputSpec(8, 400, 3, 200.0)).eval()
        assert model.name == name and model(torch.randn(1, 8, 400)).shape == (1, 3)
