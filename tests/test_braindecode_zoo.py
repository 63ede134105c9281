"""braindecode's models as bd-* students and teachers (needs ``pip install 'eegkd-bench[braindecode]'``).

Skipped when braindecode does not import, except where ``EEGKD_REQUIRE_BRAINDECODE=1`` (the CI step
that installs it), where a missing braindecode fails instead.
"""
from __future__ import annotations

import copy
import json
import os
from pathlib import Path

import pytest
import torch

if os.environ.get("EEGKD_REQUIRE_BRAINDECODE") != "1":
    pytest.importorskip("braindecode", reason="braindecode is not installed (pip install 'eegkd-bench[braindecode]')")

import braindecode  # noqa: E402

from eegkd_bench.api import InputSpec, UserError  # noqa: E402
from eegkd_bench.cli import main  # noqa: E402
from eegkd_bench.plugins import get_registry  # noqa: E402
from eegkd_bench.teachers import resolve_checkpoint  # noqa: E402

SPEC = InputSpec(n_channels=8, n_samples=400, n_classes=3, sfreq=200.0)
TINY = ["sim-mi.n_subjects=6", "sim-mi.split=[2,1,1,2]", "sim-mi.trials_per_class=1", "sim-mi.window_s=2",
        "train.epochs=1", "teacher_train.epochs=1"]


def _records(root: Path) -> dict[tuple[str, str, str], dict]:
    out = {}
    for p in (root / "cells").glob("*.json"):
        r = json.loads(p.read_text())
        out[(r["teacher"], r["student"], r["distiller"])] = r
    return out


def _grid(tmp_path: Path, *args: str) -> int:
    argv = ["run", "--datasets", "sim-mi", "--seeds", "0", "--results", str(tmp_path / "r"),
            "--cache-dir", str(tmp_path / "c"), "-q", "--no-latency", *args]
    for s in TINY:
        argv += ["--set", s]
    return main(argv)


def test_the_zoo_is_listed_with_a_reason_for_every_model_it_cannot_serve() -> None:
    reg = get_registry()
    listed = reg.entries("students", "bd-*")
    usable = [e for e in listed if not e.unavailable]
    assert len(listed) >= 30 and len(usable) >= 25
    assert all(e.unavailable and "\n" not in e.unavailable for e in listed if e not in usable)
    assert "bd-eegsym" in {e.name for e in listed}  # listed ...
    with pytest.raises(UserError, match="bd-eegsym' is unavailable: needs channel positions"):
        reg.get("students", "bd-eegsym")  # ... but refused by name
    assert not {e.name for e in listed} & set(reg.select("students", "all"))  # bd-* only by name or pattern
    assert reg.get("students", "bd-atcnet").distribution.endswith(f"+ braindecode {braindecode.__version__}")
    teachers = {e.name: e for e in reg.entries("teachers", "bd-*")}
    assert not teachers["bd-cbramod"].unavailable and not teachers["bd-labram"].unavailable
    assert teachers["bd-biot"].unavailable


def test_a_student_exposes_time_last_taps_and_its_copy_taps_itself() -> None:
    reg = get_registry()
    torch.manual_seed(0)
    student = reg.get("students", "bd-shallowfbcspnet").factory(SPEC)
    x = torch.randn(4, SPEC.n_channels, SPEC.n_samples)
    out = student.forward_features(x)
    assert out.logits.shape == (4, SPEC.n_classes)
    # braindecode's ShallowFBCSPNet keeps time on axis 2 of (B, F, T, 1); the tap has it last
    assert student.feature_names[-1] in out.features
    last = out.features[student.feature_names[-1]]
    assert last.shape[:2] == (4, 40) and last.shape[-1] == student.tap_shapes[student.feature_names[-1]][-1]
    assert out.embedding.shape[0] == 4
    twin = copy.deepcopy(student)
    with torch.no_grad():
        twin.net.final_layer.conv_classifier.weight.mul_(0)
    student.eval(), twin.eval()
    assert not torch.equal(student(x), twin(x))
    assert set(twin.forward_features(x).features) == set(student.feature_names)


def test_a_student_that_cannot_be_built_for_the_input_says_so_in_one_line() -> None:
    with pytest.raises(UserError) as err:
        get_registry().get("students", "bd-usleep").factory(InputSpec(8, 400, 3, 200.0))
    assert "braindecode's USleep cannot be built for 8 channels x 400 samples" in str(err.value)
    assert "\n" not in str(err.value)


def test_kd_and_dlink_cells_with_a_braindecode_student_from_the_cli(tmp_path: Path) -> None:
    assert _grid(tmp_path, "--methods", "kd,dlink", "--students", "bd-eegnet", "--teacher", "cbramod-mini",
                 "--teacher-checkpoint", "none") == 0
    records = _records(tmp_path / "r")
    for method in ("kd", "dlink"):
        r = records[("cbramod-mini", "bd-eegnet", method)]
        assert r["status"] == "ok", r.get("error")
        assert r["provenance"]["student"].endswith(f"braindecode {braindecode.__version__}")
        assert r["student_params"] > 0 and r["student_flops"] > 0
    assert records[("cbramod-mini", "bd-eegnet", "dlink")]["training_only_params"] > 0  # MiC's projector


def test_a_cell_with_a_braindecode_foundation_model_as_teacher(tmp_path: Path) -> None:
    args = ["--methods", "kd", "--students", "eegnet", "--teacher", "bd-cbramod", "--teacher-checkpoint", "none",
            "--set", "bd-cbramod.n_layer=2", "--set", "bd-cbramod.dim_feedforward=64"]
    assert _grid(tmp_path, *args) == 0
    r = _records(tmp_path / "r")[("bd-cbramod", "eegnet", "kd")]
    assert r["status"] == "ok", r.get("error")
    assert r["teacher_init"] == "random" and "braindecode" in r["provenance"]["teacher"]


@pytest.mark.parametrize("name,options", [("bd-cbramod", {"n_layer": 2, "dim_feedforward": 64}),
                                          ("bd-labram", {"num_layers": 2})])
def test_teachers_tap_every_layer_as_channels_patches_width_and_load_their_own_weights(tmp_path, name, options):
    factory = get_registry().get("teachers", name).factory
    torch.manual_seed(0)
    model = factory(SPEC, **options).eval()
    x = torch.randn(2, SPEC.n_channels, SPEC.n_samples)
    with torch.no_grad():
        out = model.forward_features(x)
    assert model.feature_names == ("layer_1", "layer_2")
    assert all(out.features[n].shape == (2, SPEC.n_channels, 2, 200) for n in model.feature_names)
    path = tmp_path / "w.pt"
    torch.save(model.backbone.state_dict(), path)
    torch.manual_seed(1)
    other = factory(SPEC, checkpoint=str(path), **options).eval()
    assert other.init_source.startswith("sha256:")
    with torch.no_grad():
        assert torch.equal(out.features["layer_2"], other.forward_features(x).features["layer_2"])
    torch.save({"blocks.0.weight": torch.zeros(3)}, tmp_path / "bad.pt")
    with pytest.raises(UserError, match="missing"):
        factory(SPEC, checkpoint=str(tmp_path / "bad.pt"), **options)


def test_the_hub_checkpoint_offline_is_one_line_naming_the_path_option() -> None:
    entry = get_registry().get("teachers", "bd-labram")
    with pytest.raises(UserError) as err:
        resolve_checkpoint(entry, "hub")
    msg = str(err.value)
    assert "braindecode/labram-pretrained" in msg and "--teacher-checkpoint PATH" in msg and "\n" not in msg


def test_our_cbramod_and_braindecodes_compute_the_same_layers_from_the_same_checkpoint() -> None:
    """The shipped 4-layer checkpoint loads into both (the public release's key layout) and every layer matches."""
    from importlib import resources

    reg = get_registry()
    ckpt = str(resources.files("eegkd_plugins").joinpath("checkpoints/cbramod-sim-sup.pt"))
    spec = InputSpec(8, 400, 3, 200.0)
    ours = reg.get("teachers", "cbramod-sim").factory(spec, checkpoint=ckpt).eval()
    theirs = reg.get("teachers", "bd-cbramod").factory(spec, checkpoint=ckpt, n_layer=4).eval()
    x = torch.randn(2, 8, 400, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        a, b = ours.forward_features(x), theirs.forward_features(x)
    assert ours.feature_names == theirs.feature_names
    for name in ours.feature_names:
        torch.testing.assert_close(a.features[name], b.features[name], rtol=0, atol=1e-5)
