"""FM teachers: CBraMod (official key layout, reference forward, checkpoint loading) and LaBraM."""
from __future__ import annotations

import argparse
import math

import pytest
import torch
import torch.nn.functional as F

from eegkd_bench.api import InputSpec, UserError
from eegkd_bench.teachers import teacher_info
from eegkd_plugins import cbramod as cb
from eegkd_plugins import labram as lb

BCI = InputSpec(22, 800, 4, 200.0)  # BCIC-IV-2a after the CBraMod recipe: 22 ch, 4 s at 200 Hz


def cbramod_key_table(d: int = 200, ff: int = 800, layers: int = 12, conv: int = 25) -> dict[str, tuple]:
    """Key -> shape of the official CBraMod state dict, from our reading of models/cbramod.py."""
    t: dict[str, tuple] = {
        "patch_embedding.mask_encoding": (200,),
        "patch_embedding.positional_encoding.0.weight": (d, 1, 19, 7),
        "patch_embedding.positional_encoding.0.bias": (d,),
        "patch_embedding.proj_in.0.weight": (conv, 1, 1, 49),
        "patch_embedding.proj_in.0.bias": (conv,),
        "patch_embedding.proj_in.1.weight": (conv,),
        "patch_embedding.proj_in.1.bias": (conv,),
        "patch_embedding.proj_in.3.weight": (conv, conv, 1, 3),
        "patch_embedding.proj_in.3.bias": (conv,),
        "patch_embedding.proj_in.4.weight": (conv,),
        "patch_embedding.proj_in.4.bias": (conv,),
        "patch_embedding.proj_in.6.weight": (conv, conv, 1, 3),
        "patch_embedding.proj_in.6.bias": (conv,),
        "patch_embedding.proj_in.7.weight": (conv,),
        "patch_embedding.proj_in.7.bias": (conv,),
        "patch_embedding.spectral_proj.0.weight": (d, 101),
        "patch_embedding.spectral_proj.0.bias": (d,),
    }
    h = d // 2
    for i in range(layers):
        p = f"encoder.layers.{i}."
        for branch in ("self_attn_s", "self_attn_t"):
            t[p + branch + ".in_proj_weight"] = (3 * h, h)
            t[p + branch + ".in_proj_bias"] = (3 * h,)
            t[p + branch + ".out_proj.weight"] = (h, h)
            t[p + branch + ".out_proj.bias"] = (h,)
        t[p + "linear1.weight"] = (ff, d)
        t[p + "linear1.bias"] = (ff,)
        t[p + "linear2.weight"] = (d, ff)
        t[p + "linear2.bias"] = (d,)
        for norm in ("norm1", "norm2"):
            t[p + norm + ".weight"] = (d,)
            t[p + norm + ".bias"] = (d,)
    t["proj_out.0.weight"] = (200, d)
    t["proj_out.0.bias"] = (200,)
    return t


@pytest.fixture(scope="module")
def full() -> cb.CBraModTeacher:
    torch.manual_seed(0)
    return cb.cbramod(BCI).eval()


@pytest.fixture(scope="module")
def mini() -> cb.CBraModTeacher:
    torch.manual_seed(1)
    return cb.cbramod_mini(BCI).eval()


# ------------------------------------------------------------------ CBraMod layout
def test_backbone_state_dict_matches_official_key_table(full):
    ours = {k: tuple(v.shape) for k, v in full.backbone.state_dict().items()}
    assert ours == cbramod_key_table()


def test_backbone_and_head_parameter_counts(full):
    # per layer: 2 branches x (in_proj 3*100*100 + 300 + out_proj 100*100 + 100) = 80,800
    #            + linear1 200*800 + 800 + linear2 800*200 + 200 = 321,000 + 2 LayerNorms 800 -> 402,600
    # 12 layers = 4,831,200; positional conv 200*19*7 + 200 = 26,800; temporal convs
    # (25*49+25) + 50 + 2*(25*25*3+25 + 50) = 5,200; spectral 101*200+200 = 20,400; mask 200;
    # proj_out 200*200+200 = 40,200  -> 4,924,000
    assert full.backbone_params == 4_924_000
    # flatten head: 17600*800+800 + 800*200+200 + 200*4+4
    assert full.head_params == 17600 * 800 + 800 + 800 * 200 + 200 + 200 * 4 + 4 == 14_241_804
    assert cb.cbramod(BCI, head="avgpool").head_params == 200 * 4 + 4
    assert cb.cbramod(BCI, head="chanpool").head_params == 22 * 200 * 4 + 4


def test_chanpool_head_keeps_channels(mini):
    model = cb.cbramod_mini(BCI, head="chanpool").eval()
    x = torch.randn(2, 22, 800)
    with torch.no_grad():
        out = model.forward_features(x)
        # swapping two channels' features changes the chanpool embedding, not the avgpool one
        h = out.features["layer_4"]
        swapped = h[:, [1, 0] + list(range(2, 22))]
        emb, emb_swapped = model.head(h)[1], model.head(swapped)[1]
    torch.testing.assert_close(out.embedding, h.mean(dim=2).flatten(1))
    assert out.logits.shape == (2, 4) and out.embedding.shape == (2, 22 * 64)
    assert not torch.allclose(emb, emb_swapped)
    torch.testing.assert_close(mini.head(h)[1], mini.head(swapped)[1])


def test_mini_sizes(mini):
    # per layer: 2 x (3*32*32+96 + 32*32+32) = 8,448 + (64*128+128) + (128*64+64) + 4*64 = 25,280; x4 = 101,120
    # positional conv 64*19*7+64 = 8,576; convs (8*49+8) + 2*(8*8*3+8) + 3*16 = 848; spectral 101*64+64 = 6,528;
    # mask 200; proj_out 64*200+200 = 13,000  -> 130,272
    assert mini.backbone_params == 101_120 + 8_576 + 848 + 6_528 + 200 + 13_000 == 130_272
    assert mini.head_params == 64 * 4 + 4
    # labram-mini per block: 4*64 + 192*64 + 4*16 + (64*64+64) + (64*256+256) + (256*64+64) + 2*64 = 49,984; x4;
    # patch_embed 848; cls 64 + pos 129*64 + time 16*64 = 9,344  -> 210,128; head LN 128 + 64*4+4
    small = lb.labram_mini(BCI)
    assert small.backbone_params == 4 * 49_984 + 848 + 9_344 == 210_128
    assert small.head_params == 128 + 260


def test_forward_features_shapes_and_taps(full, mini):
    x = torch.randn(2, 22, 800)
    with torch.no_grad():
        out = full.forward_features(x)
        small = mini.forward_features(x)
    assert out.logits.shape == (2, 4) and out.embedding.shape == (2, 200)
    assert list(out.features) == [f"layer_{i}" for i in range(1, 13)] == list(full.feature_names)
    assert all(v.shape == (2, 22, 4, 200) for v in out.features.values())
    assert full.n_layers == 12 and mini.n_layers == 4
    assert all(v.shape == (2, 22, 4, 64) for v in small.features.values())
    assert small.embedding.shape == (2, 64)
    # the last tap is the tensor the head reads: the avgpool head's embedding is its mean
    torch.testing.assert_close(small.embedding, small.features["layer_4"].mean(dim=(1, 2)))
    with torch.no_grad():
        assert mini.forward_features(x, return_features=False).features == {}
        torch.testing.assert_close(mini(x), small.logits)


def test_teacher_info_from_model(mini):
    info = teacher_info("cbramod-mini", mini, BCI)
    assert info.layer_names == tuple(f"layer_{i}" for i in range(1, 5))
    assert info.feature_shapes["layer_1"] == (22, 4, 64) and info.n_classes == 4


def _reference_forward(state: dict[str, torch.Tensor], x: torch.Tensor, cfg: cb.CBraModConfig) -> list[torch.Tensor]:
    """Independent functional CBraMod forward (eval mode) from a state dict, written from the paper's equations."""
    b, c, t = x.shape
    p = t // 200
    patches = x.reshape(b, c, p, 200)
    k = "patch_embedding."
    h = patches.reshape(b, 1, c * p, 200)
    h = F.gelu(F.group_norm(F.conv2d(h, state[k + "proj_in.0.weight"], state[k + "proj_in.0.bias"],
                                     stride=(1, 25), padding=(0, 24)), cfg.gn_groups,
                            state[k + "proj_in.1.weight"], state[k + "proj_in.1.bias"]))
    for conv, norm in ((3, 4), (6, 7)):
        h = F.conv2d(h, state[f"{k}proj_in.{conv}.weight"], state[f"{k}proj_in.{conv}.bias"], padding=(0, 1))
        h = F.gelu(F.group_norm(h, cfg.gn_groups, state[f"{k}proj_in.{norm}.weight"],
                                state[f"{k}proj_in.{norm}.bias"]))
    # (B, filters, C*P, positions) -> token vector [filter0 pos0..7, filter1 pos0..7, ...]
    emb = torch.stack([h[:, :, i, :].reshape(b, -1) for i in range(c * p)], dim=1).reshape(b, c, p, -1)
    mag = torch.abs(torch.fft.rfft(patches, dim=-1)) / 200.0  # forward-normalised magnitude
    emb = emb + mag @ state[k + "spectral_proj.0.weight"].T + state[k + "spectral_proj.0.bias"]
    pos = F.conv2d(emb.permute(0, 3, 1, 2), state[k + "positional_encoding.0.weight"],
                   state[k + "positional_encoding.0.bias"], padding=(9, 3), groups=cfg.d_model)
    h = emb + pos.permute(0, 2, 3, 1)

    def attention(seq: torch.Tensor, pre: str, heads: int) -> torch.Tensor:
        n, length, dim = seq.shape
        qkv = seq @ state[pre + "in_proj_weight"].T + state[pre + "in_proj_bias"]
        q, kk, v = qkv.split(dim, dim=-1)
        hd = dim // heads
        q, kk, v = (z.reshape(n, length, heads, hd).transpose(1, 2) for z in (q, kk, v))
        att = torch.softmax(q @ kk.transpose(-1, -2) / math.sqrt(hd), dim=-1)
        o = (att @ v).transpose(1, 2).reshape(n, length, dim)
        return o @ state[pre + "out_proj.weight"].T + state[pre + "out_proj.bias"]

    outs = []
    half = cfg.d_model // 2
    for i in range(cfg.n_layer):
        pre = f"encoder.layers.{i}."
        z = F.layer_norm(h, (cfg.d_model,), state[pre + "norm1.weight"], state[pre + "norm1.bias"])
        spatial = torch.stack([attention(z[:, :, j, :half], pre + "self_attn_s.", cfg.nhead // 2)
                               for j in range(p)], dim=2)  # each patch: attend over channels
        temporal = torch.stack([attention(z[:, ch, :, half:], pre + "self_attn_t.", cfg.nhead // 2)
                                for ch in range(c)], dim=1)  # each channel: attend over patches
        h = h + torch.cat((spatial, temporal), dim=-1)
        z = F.layer_norm(h, (cfg.d_model,), state[pre + "norm2.weight"], state[pre + "norm2.bias"])
        ffn = F.gelu(z @ state[pre + "linear1.weight"].T + state[pre + "linear1.bias"])
        h = h + ffn @ state[pre + "linear2.weight"].T + state[pre + "linear2.bias"]
        outs.append(h)
    return outs


def test_matches_independent_reference_forward(mini):
    torch.manual_seed(3)
    x = torch.randn(2, 22, 800)
    with torch.no_grad():
        for p in mini.backbone.parameters():  # non-trivial norms and biases
            p.add_(0.05 * torch.randn_like(p))
        got = mini.forward_features(x).features
        ref = _reference_forward(mini.backbone.state_dict(), x, cb.MINI)
    for i, r in enumerate(ref, start=1):
        torch.testing.assert_close(got[f"layer_{i}"], r, atol=1e-4, rtol=1e-4)


# ------------------------------------------------------------------ checkpoints
def test_pretrained_round_trip_reproduces_outputs(full, tmp_path):
    path = tmp_path / "pretrained_weights.pth"
    torch.save(full.backbone.state_dict(), path)  # the official file is a bare backbone state dict
    torch.manual_seed(99)
    fresh = cb.cbramod(BCI).eval()
    assert fresh.init_source == "random"
    source = fresh.load_pretrained(str(path))
    assert source.startswith("sha256:") and len(source) == 7 + 64 and fresh.init_source == source
    fresh.head.load_state_dict(full.head.state_dict())
    x = torch.randn(2, 22, 800)
    with torch.no_grad():
        a, b = full.forward_features(x), fresh.forward_features(x)
    assert torch.equal(a.logits, b.logits)
    assert all(torch.equal(a.features[k], b.features[k]) for k in a.features)


def test_factory_loads_checkpoint_with_module_prefix(mini, tmp_path):
    path = tmp_path / "ddp.pth"
    torch.save({"module." + k: v for k, v in mini.backbone.state_dict().items()}, path)
    model = cb.cbramod_mini(BCI, checkpoint=str(path))
    assert model.init_source.startswith("sha256:")
    w = "encoder.layers.3.linear2.weight"
    assert torch.equal(model.backbone.state_dict()[w], mini.backbone.state_dict()[w])


def test_downstream_checkpoint_without_proj_out_loads(mini, tmp_path):
    path = tmp_path / "finetuned.pth"
    state = {"backbone." + k: v for k, v in mini.backbone.state_dict().items() if not k.startswith("proj_out")}
    state["classifier.3.weight"] = torch.zeros(4, 64)
    torch.save(state, path)
    model = cb.cbramod_mini(BCI)
    model.load_pretrained(str(path))
    w = "patch_embedding.spectral_proj.0.weight"
    assert torch.equal(model.backbone.state_dict()[w], mini.backbone.state_dict()[w])


def test_wrong_size_checkpoint_is_a_one_line_user_error(full, tmp_path):
    path = tmp_path / "full.pth"
    torch.save(full.backbone.state_dict(), path)
    with pytest.raises(UserError) as err:
        cb.cbramod_mini(BCI).load_pretrained(str(path))
    msg = str(err.value)
    assert "\n" not in msg and msg.startswith("cbramod-mini:")
    assert "shape" in msg and "another size (d_model 200, 12 layers" in msg


def test_foreign_or_broken_checkpoints_are_user_errors(tmp_path):
    model = cb.cbramod_mini(BCI)
    vit = tmp_path / "vit.pth"
    torch.save({"blocks.0.attn.qkv.weight": torch.zeros(3, 3)}, vit)
    with pytest.raises(UserError, match="unexpected.*LaBraM"):
        model.load_pretrained(str(vit))
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(UserError, match="could not read"):
        model.load_pretrained(str(junk))
    with pytest.raises(UserError, match="not found"):
        model.load_pretrained(str(tmp_path / "missing.pth"))
    assert model.init_source == "random"


# ------------------------------------------------------------------ input checks
@pytest.mark.parametrize("x, match", [
    (torch.randn(2, 22, 700), "multiple of 200"),
    (torch.randn(2, 21, 800), "built for 22 channels, got 21"),
    (torch.randn(22, 800), "expected input"),
])
def test_bad_inputs_raise_user_error_naming_the_model(mini, x, match):
    with pytest.raises(UserError, match=f"^cbramod-mini: .*{match}"):
        mini.forward_features(x)


def test_nan_input_is_a_user_error(mini):
    x = torch.randn(2, 22, 800)
    x[1, 3, 17] = float("nan")
    with pytest.raises(UserError, match="^cbramod-mini: input contains NaN"):
        mini(x)


@pytest.mark.parametrize("spec, kwargs, match", [
    (InputSpec(22, 850, 4, 200.0), {}, "multiple of 200 samples, got 850"),
    (InputSpec(22, 1000, 4, 250.0), {}, "expects 200 Hz"),
    (BCI, {"head": "mlp"}, "head = 'mlp' is not one of 'flatten', 'avgpool', 'chanpool'"),
    (BCI, {"heads": "flatten"}, "unknown option 'heads' of teacher"),
    (BCI, {"dropout": 1.5}, "dropout=1.5"),
])
def test_bad_specs_and_options(spec, kwargs, match):
    with pytest.raises(UserError, match=match):
        cb.cbramod_mini(spec, **kwargs)


def test_cbramod_mini_learns_a_tiny_batch():
    torch.manual_seed(0)
    model = cb.cbramod_mini(InputSpec(2, 200, 2, 200.0), head="flatten")
    x = torch.randn(8, 2, 200)
    y = torch.arange(8) % 2
    x[y == 1, 0] += 2.0 * torch.sin(torch.linspace(0, 40 * math.pi, 200))  # class 1: 20 Hz on channel 0
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=3e-3)
    model.train()
    losses = []
    for _ in range(6):
        loss = F.cross_entropy(model(x), y)
        losses.append(loss.item())
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert losses[-1] < 0.5 * losses[0]


# ------------------------------------------------------------------ LaBraM
def labram_key_table(d: int = 200, depth: int = 12, heads: int = 10, filters: int = 8, k1: int = 15) -> dict:
    """Key -> shape of the release's NeuralTransformer backbone (modeling_finetune.py), head excluded."""
    t = {"cls_token": (1, 1, d), "pos_embed": (1, 129, d), "time_embed": (1, 16, d),
         "patch_embed.conv1.weight": (filters, 1, 1, k1), "patch_embed.conv1.bias": (filters,)}
    for i in (1, 2, 3):
        t[f"patch_embed.norm{i}.weight"] = (filters,)
        t[f"patch_embed.norm{i}.bias"] = (filters,)
    for i in (2, 3):
        t[f"patch_embed.conv{i}.weight"] = (filters, filters, 1, 3)
        t[f"patch_embed.conv{i}.bias"] = (filters,)
    for i in range(depth):
        p = f"blocks.{i}."
        t.update({p + "gamma_1": (d,), p + "gamma_2": (d,), p + "norm1.weight": (d,), p + "norm1.bias": (d,),
                  p + "attn.qkv.weight": (3 * d, d), p + "attn.q_norm.weight": (d // heads,),
                  p + "attn.q_norm.bias": (d // heads,), p + "attn.k_norm.weight": (d // heads,),
                  p + "attn.k_norm.bias": (d // heads,), p + "attn.proj.weight": (d, d), p + "attn.proj.bias": (d,),
                  p + "norm2.weight": (d,), p + "norm2.bias": (d,), p + "mlp.fc1.weight": (4 * d, d),
                  p + "mlp.fc1.bias": (4 * d,), p + "mlp.fc2.weight": (d, 4 * d), p + "mlp.fc2.bias": (d,)})
    return t


@pytest.fixture(scope="module")
def labram_base() -> lb.LaBraMTeacher:
    torch.manual_seed(0)
    return lb.labram(BCI).eval()


def test_labram_base_layout_and_size(labram_base):
    ours = {k: tuple(v.shape) for k, v in labram_base.backbone.state_dict().items()}
    assert ours == labram_key_table()
    # per block: norms 4*200 + qkv 600*200 + q/k norms 4*20 + proj 200*200+200 + fc1 200*800+800
    #            + fc2 800*200+200 + gammas 2*200 = 482,480 -> 12 blocks 5,789,760;
    # patch_embed (8*15+8) + 2*(8*8*3+8) + 3*16 = 576; cls 200 + pos 129*200 + time 16*200 = 29,200
    assert labram_base.backbone_params == 5_819_536
    assert labram_base.head_params == 2 * 200 + 200 * 4 + 4


def test_labram_features_and_mini(labram_base):
    x = torch.randn(2, 22, 800)
    with torch.no_grad():
        out = labram_base.forward_features(x)
        small = lb.labram_mini(BCI).eval().forward_features(x)
    assert out.logits.shape == (2, 4) and out.embedding.shape == (2, 200)
    assert len(out.features) == 12 and all(v.shape == (2, 22, 4, 200) for v in out.features.values())
    assert len(small.features) == 4 and small.features["layer_4"].shape == (2, 22, 4, 64)


def test_labram_tokens_are_channel_major(labram_base):
    # Changing only channel 5's second patch must change that token in layer 1 the most.
    x = torch.randn(1, 22, 800)
    y = x.clone()
    y[0, 5, 200:400] += 5.0
    with torch.no_grad():
        a = labram_base.backbone.patch_embed(x.reshape(1, 22, 4, 200))
        b = labram_base.backbone.patch_embed(y.reshape(1, 22, 4, 200))
    changed = (a - b).abs().sum(-1).reshape(22, 4)
    # GroupNorm statistics are shared by all tokens (as in the release), so others move a little
    assert changed.argmax().item() == 5 * 4 + 1
    assert changed[5, 1] > 3 * changed.flatten().sort().values[-2]


def test_labram_loads_release_layout(labram_base, tmp_path):
    state = {"student." + k: v for k, v in labram_base.backbone.state_dict().items()}
    state.update({"student.mask_token": torch.zeros(1, 1, 200), "student.norm.weight": torch.ones(200),
                  "student.lm_head.weight": torch.zeros(16, 200), "lm_head.weight": torch.zeros(16, 200)})
    path = tmp_path / "labram-base.pth"
    torch.save({"model": state, "epoch": 49, "args": argparse.Namespace(model="labram_base")}, path)
    torch.manual_seed(5)
    fresh = lb.labram(BCI).eval()
    assert fresh.load_pretrained(str(path)).startswith("sha256:")
    fresh.head.load_state_dict(labram_base.head.state_dict())
    x = torch.randn(2, 22, 800)
    with torch.no_grad():
        assert torch.equal(fresh(x), labram_base(x))


def test_labram_rejects_cbramod_weights_and_bad_channels(mini, tmp_path):
    path = tmp_path / "cbramod.pth"
    torch.save(mini.backbone.state_dict(), path)
    with pytest.raises(UserError, match="^labram-mini: .*CBraMod checkpoint"):
        lb.labram_mini(BCI).load_pretrained(str(path))
    with pytest.raises(UserError, match="at most 16 patches"):
        lb.labram_mini(InputSpec(4, 3400, 2, 200.0))
    with pytest.raises(UserError, match=r"\['XX1'\]"):
        lb.labram_mini(InputSpec(2, 400, 2, 200.0), ch_names=["C3", "XX1"])
    named = lb.labram_mini(InputSpec(2, 400, 2, 200.0), ch_names=["C3", "cz"])
    assert named.channel_slots.tolist() == [lb.STANDARD_1020.index("C3") + 1, lb.STANDARD_1020.index("CZ") + 1]


# ------------------------------------------------------------------ registry
def test_teachers_are_registered_through_the_entry_points():
    import importlib.metadata as md

    from eegkd_bench.plugins import PluginHost

    host = PluginHost()
    for ep in md.entry_points(group="eegkd_bench"):
        if ep.name in ("cbramod", "labram"):
            assert host.register_plugin(ep.load(), ep.name).status == "loaded"
    assert host.registry.names("teachers") == ["cbramod", "cbramod-mini", "cbramod-sim", "labram", "labram-mini"]
    model = host.registry.get("teachers", "cbramod-mini").factory(InputSpec(3, 200, 2, 200.0))
    assert model.head_kind == "avgpool" and model.init_source == "random"


def test_checkpoint_init_follows_the_file_when_it_changes(tmp_path):
    import os

    from eegkd_bench.storage import file_sha256
    from eegkd_bench.identity import checkpoint_init

    ckpt = tmp_path / "t.pt"
    ckpt.write_bytes(b"first")
    first = checkpoint_init(str(ckpt))
    assert first == f"sha256:{file_sha256(ckpt)}" and checkpoint_init(str(ckpt)) == first
    ckpt.write_bytes(b"second!")
    os.utime(ckpt, ns=(1, 1))  # a new size and modification time: the remembered digest is not reused
    assert checkpoint_init(str(ckpt)) == f"sha256:{file_sha256(ckpt)}" != first
