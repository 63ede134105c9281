"""Experiments as configuration: option parsing and validation, variants, precedence, keys, show, dry runs."""
from __future__ import annotations

import dataclasses
import io
from pathlib import Path

import numpy as np
import pytest

from eegkd_bench.api import Distiller, EEGWindows, Option, TeacherNeeds
from eegkd_bench.identity import cell_key
from eegkd_bench.cli import main
from eegkd_bench.config import (
    Settings,
    load_config,
    parse_set,
    parse_value,
    resolve,
    settings_from,
    validate,
)
from eegkd_bench.errors import UserError
from eegkd_bench.plan import grid_cells
from eegkd_bench.presets import PRESETS
from eegkd_bench.registry import Entry, Registry
from eegkd_bench.identity import latest_records
from eegkd_bench.identity import teacher_key
from eegkd_bench.training import TrainConfig

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "configs" / "kd-temperature-sweep.toml"


class Soft(Distiller):
    defaults = {"temperature": Option(4.0, "softmax temperature"), "alpha": 0.9,
                "layer": Option(None, "a teacher layer", type=str)}

    def teacher_needs(self) -> TeacherNeeds:
        return TeacherNeeds(logits=True)


def _registry(distribution: str = "pkg 1.0", distiller: type = Soft) -> Registry:
    reg = Registry()
    reg.add(Entry("datasets", "toy", object, "p", distribution="data 1.0"))
    reg.add(Entry("teachers", "tt", object, "p", metadata={"options": {"depth": Option(2, "layers")}},
                  distribution="teach 1.0"))
    reg.add(Entry("students", "ss", object, "p", metadata={"options": {"width": 8}}, distribution="stud 1.0"))
    reg.add(Entry("distillers", "soft", distiller, "p", distribution=distribution))
    reg.add(Entry("distillers", "soft-t2", None, "p", metadata={"base": "soft", "options": {"temperature": 2}},
                  distribution=distribution))
    return reg


def _windows() -> EEGWindows:
    n = 6
    return EEGWindows("toy", np.zeros((n, 2, 8), np.float32), np.arange(n) % 2, np.array(["s"] * n),
                      np.array(["train", "train", "val", "val", "test", "test"]), 100.0, ["a", "b"], ["x", "y"],
                      "simulated", "toy-1")


def _key(reg: Registry, distiller: str = "soft", **options) -> str:
    cell, = grid_cells(reg, "toy", "tt", ["ss"], [distiller], (0,), PRESETS["quick"], options=options)
    return cell_key(cell, _windows(), "random")


# ------------------------------------------------------------------ parsing
@pytest.mark.parametrize("text, value", [
    ("2", 2), ("3e-4", 3e-4), ("true", True), ('"x y"', "x y"), ("[1, 2]", [1, 2]), ("two-stage", "two-stage"),
    ("avgpool", "avgpool"), ('["T7", "C3"]', ["T7", "C3"]),
])
def test_values_are_toml_and_bare_words_are_strings(text, value):
    assert parse_value(text, "--set x.y") == value


@pytest.mark.parametrize("text", ["kd.temperature", "temperature=2", "kd.temperature=", ".t=1", "kd.t=[1"])
def test_malformed_set_is_a_user_error(text):
    with pytest.raises(UserError):
        parse_set(text)


def test_set_splits_name_option_value():
    assert parse_set("cbramod-mini.head=flatten") == ("cbramod-mini", "head", "flatten")
    assert parse_set("train.lr=3e-4") == ("train", "lr", 3e-4)


# ------------------------------------------------------------------ validation
@pytest.mark.parametrize("setting, expected", [
    ("kd.temprature=2", "unknown option 'temprature' of distiller kd (did you mean 'temperature'?)"),
    ("kd.temperature=hot", "kd.temperature = 'hot' has the wrong type; expected a number"),
    ("kd.temperature=true", "expected a number"),  # a boolean is not a number
    ("eegnet.F1=2.5", "eegnet.F1 = 2.5 has the wrong type; expected an integer"),
    ("dlink.use_mic=1", "expected a boolean"),
    ("train.lrr=1e-3", "unknown option 'lrr' of recipe train (did you mean 'lr'?)"),
    ("train.schedule=linear", "not one of 'cosine', 'constant'"),
    ("kdd.alpha=0.5", "unknown component 'kdd' (did you mean 'kd'?)"),
    ("sim-mi.noise=1", "unknown option 'noise' of dataset sim-mi; options: effect_scale, n_subjects, seed, split"),
    ("sim-mi.n_subject=24", "unknown option 'n_subject' of dataset sim-mi (did you mean 'n_subjects'?)"),
    ("sim-mi.n_subjects=2.5", "sim-mi.n_subjects = 2.5 has the wrong type; expected an integer"),
    ("sim-mi.split=8", "sim-mi.split = 8 has the wrong type; expected a list"),
    ("sim-mi.split=[1, 1, 1.5]", "sim-mi: split=[1, 1, 1.5]; expected three positive integers"),
    ("sim-mi.n_subjects=2", "sim-mi: n_subjects=2 is too small"),
    ("sim-mi.use_cache=false", "unknown option 'use_cache' of dataset sim-mi"),  # changes no result: not keyed
    ("sim-mi.effect_scale=0", "sim-mi: effect_scale=0; expected a number in (0, 5]"),
    ("fitnets.hint_epochs=1.5", "fitnets.hint_epochs = 1.5 has the wrong type; expected an integer"),
    ("tuev.window_s=5", "unknown option 'window_s': dataset tuev declares no options"),
    ("labram-mini.ch_names=T7", "expected a list"),
    ("teacher_train.epochs=0", "invalid teacher_train.epochs = 0; expected 1 or more"),
    ("train.eegnt.epochs=9", "unknown student 'eegnt' in 'train.eegnt' (did you mean 'eegnet'?)"),
    ("train.eegnet.epochz=9", "unknown option 'epochz' of recipe train.eegnet (did you mean 'epochs'?)"),
    ("train.eegnet.epochs=0", "invalid train.eegnet.epochs = 0; expected 1 or more"),
    ("train.eegnet.lr=fast", "train.eegnet.lr = 'fast' has the wrong type; expected a number"),
])
def test_bad_options_exit_2_with_one_line_and_write_nothing(capsys, tmp_path, setting, expected):
    code = main(["run", "--results", str(tmp_path / "r"), "--cache-dir", str(tmp_path / "c"), "--set", setting])
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.count("\n") == 1 and expected in err and "Traceback" not in err
    assert not (tmp_path / "r").exists()


def test_ints_are_accepted_for_floats_and_stored_as_floats():
    reg = validate(_registry(), settings_from(sets=["soft.temperature=3", "soft.layer=layer_2"]))
    comp = resolve(reg, "distillers", "soft", {"soft": {"temperature": 3}})
    assert dict(comp.options) == {"alpha": 0.9, "layer": None, "temperature": 3.0}
    assert isinstance(dict(comp.options)["temperature"], float)
    assert _key(reg, soft={"temperature": 3}) == _key(reg, soft={"temperature": 3.0})


def test_a_variant_may_build_on_a_variant():
    reg = validate(_registry(), Settings(variants={"b": {"base": "soft-t2", "alpha": 0.5}}))
    comp = resolve(reg, "distillers", "b", {"soft": {"temperature": 9.0, "layer": "l1"}})
    assert comp.base == "soft" and dict(comp.options) == {"alpha": 0.5, "layer": "l1", "temperature": 2.0}


def test_variant_errors():
    reg = _registry()
    with pytest.raises(UserError, match="variant 'x': unknown component 'sofft'"):
        validate(reg, settings_from(variants=["x=sofft"]))
    with pytest.raises(UserError, match="already a registered distiller"):
        validate(reg, settings_from(variants=["soft-t2=soft"]))
    with pytest.raises(UserError, match="based on each other"):
        validate(reg, Settings(variants={"a": {"base": "b"}, "b": {"base": "a"}}))
    with pytest.raises(UserError, match="unknown option 'temp' of variant of distiller a"):
        validate(reg, Settings(variants={"a": {"base": "soft", "temp": 1.0}}))


# ------------------------------------------------------------------ precedence
def test_preset_config_flags_and_set_apply_in_that_order(tmp_path):
    cfg = tmp_path / "run.toml"
    cfg.write_text('preset = "paper"\nmethods = ["kd", "kd-t2"]\nseeds = [0, 1]\n'
                   "[train]\nepochs = 3\nlr = 1e-4\n[options.kd]\ntemperature = 3.0\nalpha = 0.5\n"
                   '[variants]\nkd-t2 = { base = "kd", temperature = 2 }\n')
    only_file = settings_from(config=cfg)
    assert (only_file.preset, only_file.methods, only_file.seeds) == ("paper", "kd,kd-t2", "0,1")
    assert only_file.recipe("train").epochs == 3 and only_file.recipe("train").lr == 1e-4
    assert only_file.recipe("train").batch_size == PRESETS["paper"].student_cfg.batch_size  # the rest: preset
    s = settings_from("quick", cfg, {"methods": "kd", "epochs": 5}, sets=["train.epochs=6", "kd.temperature=5"])
    assert s.preset == "quick" and s.methods == "kd"  # flags over the file
    assert s.recipe("train").epochs == 6 and s.recipe("train").lr == 1e-4  # --set over the flag
    assert s.options["kd"] == {"temperature": 5, "alpha": 0.5}
    assert settings_from("quick", cfg, {"epochs": 5}).recipe("train").epochs == 5
    from eegkd_bench.plugins import get_registry

    reg = validate(get_registry(), s)
    kd, t2 = (dict(resolve(reg, "distillers", n, s.options).options) for n in ("kd", "kd-t2"))
    assert kd == {"temperature": 5.0, "alpha": 0.5, "transfer": True}
    assert t2 == {"temperature": 2.0, "alpha": 0.5, "transfer": True}  # the variant's own value over options for its base
    s.set("kd-t2", "temperature", 7)
    assert dict(resolve(reg, "distillers", "kd-t2", s.options).options)["temperature"] == 7.0


def test_a_students_own_recipe_changes_its_cells_only(tmp_path):
    from eegkd_bench.plugins import get_registry

    cfg = tmp_path / "run.toml"
    cfg.write_text("[train]\nlr = 1e-4\n[train.eegnet]\nepochs = 9\n")
    s = settings_from("quick", cfg, sets=["train.eegnet.batch_size=4"], variants=["eeg4=eegnet"])
    s.set("eeg4", "F1", 4)
    reg = validate(get_registry(), s)
    preset = s.applied_preset()
    # the preset's own EEGNet change the run did not set (its warm-up epoch) stays
    assert preset.student_overrides == {"eegnet": {"warmup_epochs": 1, "epochs": 9, "batch_size": 4}}
    cells = grid_cells(reg, "sim-mi", "cbramod-mini", ["eegnet", "eeg4", "shallowconvnet"], ["none"], (0,), preset,
                       options=s.options)
    by = {c.student: c.student_cfg for c in cells}
    assert (by["eegnet"].epochs, by["eegnet"].batch_size, by["eegnet"].lr) == (9, 4, 1e-4)
    assert by["eeg4"] == by["eegnet"]  # a variant takes its base's recipe
    quick = PRESETS["quick"].student_cfg
    assert (by["shallowconvnet"].epochs, by["shallowconvnet"].batch_size) == (quick.epochs, quick.batch_size)
    plain = grid_cells(reg, "sim-mi", "cbramod-mini", ["eegnet", "shallowconvnet"], ["none"], (0,),
                       settings_from("quick", sets=["train.lr=1e-4"]).applied_preset(), options=s.options)
    w = _windows()
    keys = {c.student: cell_key(c, w, "random") for c in plain}
    assert cell_key(cells[2], w, "random") == keys["shallowconvnet"]
    assert cell_key(cells[0], w, "random") != keys["eegnet"]


def test_a_runs_train_options_beat_the_presets_per_student_recipe(monkeypatch):
    preset = dataclasses.replace(PRESETS["quick"], student_overrides={"eegnet": {"epochs": 14, "lr": 1e-2}})
    monkeypatch.setitem(PRESETS, "quick", preset)
    assert Settings().applied_preset().student_recipe(["eegnet"]).epochs == 14
    s = settings_from("quick", flags={"epochs": 3})
    assert s.student_overrides() == {"eegnet": {"lr": 1e-2}}  # --epochs is for every student
    s.set("train.eegnet", "epochs", 5)
    recipe = s.applied_preset().student_recipe(["eegnet"])
    assert (recipe.epochs, recipe.lr) == (5, 1e-2)
    assert s.applied_preset().student_recipe(["shallowconvnet"]).epochs == 3


def test_config_file_errors(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("methods = [kd]\n")
    with pytest.raises(UserError, match="not valid TOML"):
        load_config(bad)
    bad.write_text('method = "kd"\n')
    with pytest.raises(UserError, match="unknown key 'method' .*did you mean 'methods'"):
        load_config(bad)
    bad.write_text('[variants]\nkd2 = { temperature = 2 }\n')
    with pytest.raises(UserError, match="needs base"):
        settings_from(config=bad)


def test_documented_example_config_resolves():
    from eegkd_bench.plugins import get_registry

    s = settings_from(config=EXAMPLE)
    reg = validate(get_registry(), s)
    preset = s.applied_preset()
    methods = reg.select("distillers", s.methods)
    assert {"kd-t1", "kd-t8", "mic-ce"} <= set(methods)
    cells = grid_cells(reg, "sim-mi", s.teacher, [s.students], methods, (0,), preset, options=s.options)
    t8 = next(c for c in cells if c.distiller == "kd-t8")
    assert t8.distiller_base == "kd" and dict(t8.distiller_options) == {"temperature": 8.0, "alpha": 0.9,
                                                                         "transfer": True}
    assert t8.student_cfg.epochs == 10 and t8.teacher_cfg.epochs == 4


# ------------------------------------------------------------------ keys
def test_resolved_defaults_and_distribution_versions_enter_the_key():
    base = _key(_registry())
    assert _key(_registry()) == base
    assert _key(_registry(), soft={"temperature": 4.0}) == base  # passing the default changes nothing
    assert _key(_registry(), soft={"temperature": 5.0}) != base
    hotter = type("Soft", (Soft,), {"defaults": {**Soft.defaults, "temperature": Option(5.0)}})
    assert _key(_registry(distiller=hotter)) != base  # a changed default is a new cell
    assert _key(_registry(distribution="pkg 1.1")) != base  # so is a new version of the plugin
    assert _key(_registry(), "soft-t2") != _key(_registry(), soft={"temperature": 2.0})  # the name counts


def test_teacher_key_changes_with_the_teachers_options_and_package():
    w, cfg = _windows(), TrainConfig(epochs=1)
    keys = set()
    for reg, options in ((_registry(), {}), (_registry(), {"tt": {"depth": 3}})):
        cell, = grid_cells(reg, "toy", "tt", ["ss"], ["soft"], (0,), PRESETS["quick"], options=options)
        keys.add(teacher_key("tt", dict(cell.teacher_options), "random", w, 0, cfg, 0.1, True, cell.teacher_provenance()))
    reg = _registry()
    reg._entries["teachers"]["tt"].distribution = "teach 2.0"
    cell, = grid_cells(reg, "toy", "tt", ["ss"], ["soft"], (0,), PRESETS["quick"])
    keys.add(teacher_key("tt", dict(cell.teacher_options), "random", w, 0, cfg, 0.1, True, cell.teacher_provenance()))
    assert len(keys) == 3
    assert dict(cell.provenance)["core"].startswith("eegkd-bench ")


# ------------------------------------------------------------------ records
def test_variant_records_carry_base_options_and_label(tmp_path, monkeypatch):
    """A config variant (kd-t2) and a plugin variant (mic-ce) run through the grid under their own names."""
    from test_teacher_cache import CFG, _toy_registry

    import eegkd_bench.teacher_cache.outputs as outputs_mod
    from eegkd_bench.context import make_context
    from eegkd_bench.plugins import get_registry
    from eegkd_bench.progress import PlainReporter
    from eegkd_bench.runner import Grid

    reg = _toy_registry()
    reg.add(get_registry().get("distillers", "mic-ce"))
    settings = settings_from(variants=["kd-t2=kd"], sets=["kd-t2.temperature=2"])
    reg = validate(reg, settings)
    ctx = make_context(tmp_path / "results", tmp_path / "cache", None, latency=False)
    preset = dataclasses.replace(PRESETS["quick"], teacher_cfg=CFG, student_cfg=TrainConfig(epochs=1, batch_size=16))
    grid = Grid(reg, ctx, PlainReporter(total=2, stream=io.StringIO()))
    passes: list[set[str]] = []
    real = outputs_mod._compute_outputs
    monkeypatch.setattr(outputs_mod, "_compute_outputs",
                        lambda m, X, names, *a: passes.append(set(names)) or real(m, X, names, *a))
    records = grid.run(grid.plan(["toy"], "toy-teacher", ["tinytransformer"], ["kd-t2", "mic-ce"], (0,), preset,
                                 options=settings.options), jobs=1)
    by = {r["distiller"]: r for r in records}
    assert [r["status"] for r in records] == ["ok", "ok"], [r.get("error") for r in records]
    assert by["kd-t2"]["distiller_base"] == "kd" and by["kd-t2"]["config"]["distiller_options"] == {
        "temperature": 2.0, "alpha": 0.9, "transfer": True}
    assert by["kd-t2"]["hparams"]["temperature"] == 2.0 and by["kd-t2"]["student_label"] == "tinytransformer"
    assert by["mic-ce"]["distiller_base"] == "dlink" and by["mic-ce"]["student_label"] == "tinytransformer+mic"
    assert by["mic-ce"]["config"]["distiller_options"]["lambda_feat"] == 0.0
    assert set(by["kd-t2"]["provenance"]) == {"core", "dataset", "teacher", "student", "distiller"}
    assert passes == [{"logits"}]  # only kd-t2's logits: the control reads no teacher output
    # the stored weights rebuild from the bases' factories, without the run's own variants (as `export` does)
    from eegkd_bench.weights import rebuild_deployed

    plain = _toy_registry()
    plain.add(get_registry().get("distillers", "mic-ce"))
    for r in records:
        model = rebuild_deployed(ctx.results.get_weights(r["key"]), plain, what=r["distiller"])
        assert sum(p.numel() for p in model.parameters()) == r["student_params"]


def test_latest_keeps_the_newest_record_of_each_cell():
    def rec(key, created, distiller="kd", seed=0):
        return {"key": key, "created": created, "dataset": "d", "teacher": "t", "student": "s",
                "distiller": distiller, "seed": seed}

    old, new, other = rec("a", "2026-01-01T00:00:00"), rec("b", "2026-02-01T00:00:00"), rec("c", "2026-01-01", seed=1)
    assert latest_records([new, old, other]) == [new, other]
    assert latest_records([old, new]) == [new]


# ------------------------------------------------------------------ show and dry run
def test_show_lists_options_with_defaults_types_and_help(capsys):
    assert main(["show", "kd"]) == 0
    out = capsys.readouterr().out
    assert "temperature" in out and "4.0" in out and "number" in out and "softmax temperature" in out
    assert main(["show", "dlink-nospec"]) == 0
    out = capsys.readouterr().out
    assert "variant of dlink; sets lambda_spec=0.0" in out
    assert main(["show", "train", "--preset", "paper"]) == 0
    assert "epochs" in (out := capsys.readouterr().out) and " 100 " in out
    assert main(["show", "train.eegnet"]) == 0
    assert "the recipe of student eegnet (defaults of preset quick)" in capsys.readouterr().out
    from eegkd_bench.config import show
    from eegkd_bench.plugins import get_registry

    lines = show(get_registry(), "train", "quick", {"train.eegnet": {"epochs": 21}})
    assert "  train.eegnet: epochs=21 lr=0.01 warmup_epochs=1 (see eegkd-bench show train.eegnet)" in lines
    lines = show(get_registry(), "train.eegnet", "quick", {"train.eegnet": {"epochs": 21}})
    assert any(line.split()[:2] == ["epochs", "21"] for line in lines)
    assert main(["show", "kd-t8", "--config", str(EXAMPLE)]) == 0
    assert "temperature  8.0" in capsys.readouterr().out
    assert main(["show", "kdd"]) == 2 and "did you mean 'kd'" in capsys.readouterr().err


def test_dry_run_prints_resolved_options_and_writes_nothing(capsys, tmp_path, monkeypatch):
    from eegkd_bench import build

    monkeypatch.setattr(build, "load_dataset", lambda *a, **k: _sim_windows())
    cfg = tmp_path / "run.toml"
    cfg.write_text('methods = "none"\n[options.kd]\nalpha = 0.5\n[train]\nlr = 1e-2\n'
                   '[variants]\nkd-t8 = { base = "kd", temperature = 8 }\n')
    code = main(["run", "--dry-run", "--config", str(cfg), "--results", str(tmp_path / "r"),
                 "--cache-dir", str(tmp_path / "c"), "--datasets", "sim-mi", "--methods", "kd,kd-t2,kd-t8,mic-ce",
                 "--variant", "kd-t2=kd", "--set", "kd-t2.temperature=2", "--set", "train.lr=3e-4",
                 "--set", "eegnet.F1=4", "--set", "train.eegnet.batch_size=4"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "recipe train:" in out and "lr=0.0003" in out  # --set over the file
    assert "recipe train.eegnet: batch_size=4 warmup_epochs=1\n" in out  # the run's train.lr beats the preset's eegnet lr
    assert "distiller kd-t2 (variant of kd): alpha=0.5 temperature=2.0" in out
    assert "distiller kd-t8 (variant of kd): alpha=0.5 temperature=8.0" in out
    assert "distiller kd: alpha=0.5 temperature=4.0" in out and "student eegnet: D=2 F1=4" in out
    assert out.count("would run") == 4 and "· none →" not in out  # --methods over the file
    assert not (tmp_path / "r").exists() and not (tmp_path / "c" / "teachers").exists()


def _sim_windows() -> EEGWindows:
    """A tiny stand-in for sim-mi (22 channels, 4 classes) so the dry run needs no generated data."""
    rng = np.random.default_rng(0)
    n = 12
    return EEGWindows("sim-mi", rng.standard_normal((n, 22, 800)).astype(np.float32), np.arange(n) % 4,
                      np.array([f"s{i % 3}" for i in range(n)]), np.array(["train", "val", "test"] * 4), 200.0,
                      [f"c{i}" for i in range(22)], ["a", "b", "c", "d"], "simulated", "stand-in")


def test_dlink_ablations_are_variants_of_dlink():
    from eegkd_bench.plugins import get_registry

    reg = get_registry()
    for name, option, value in (("dlink-norouter", "use_router", False), ("dlink-nospec", "lambda_spec", 0.0),
                                ("dlink-nomic", "use_mic", False)):
        entry = reg.get("distillers", name)
        assert entry.base == "dlink" and entry.factory is reg.get("distillers", "dlink").factory
        assert dict(resolve(reg, "distillers", name).options)[option] == value


# ------------------------------------------------------------------ dataset options
class ToyData:
    """A dataset factory that declares options (only its declaration and constructor are used)."""

    defaults = {"n_subjects": Option(6, "subjects"), "split": Option(None, "subjects per split", type=list)}

    def __init__(self, n_subjects: int = 6, split: list[int] | None = None) -> None:
        self.n_subjects, self.split = n_subjects, split


def _data_cell(**options):
    reg = _registry()
    reg.add(Entry("datasets", "toyopt", ToyData, "p", distribution="data 1.0"))
    cell, = grid_cells(validate(reg, Settings(options=options)), "toyopt", "tt", ["ss"], ["soft"], (0,),
                       PRESETS["quick"], options=options)
    return cell


def test_dataset_options_enter_the_cell_and_teacher_keys_and_the_record():
    from eegkd_bench.cell import base_record

    w, cfg = _windows(), TrainConfig(epochs=1)
    default, explicit, more = _data_cell(), _data_cell(toyopt={"n_subjects": 6}), _data_cell(toyopt={"n_subjects": 9})
    # the same windows for all three: the options themselves, not only the data checksum, separate the cells
    assert cell_key(default, w, "random") == cell_key(explicit, w, "random") != cell_key(more, w, "random")
    assert cell_key(more, w, "random") != cell_key(_data_cell(toyopt={"split": [3, 3, 3]}), w, "random")
    assert "dataset_options" not in default.identity()  # default options keep the keys they always had

    def tkey(cell):
        return teacher_key("tt", dict(cell.teacher_options), "random", w, 0, cfg, provenance=cell.teacher_provenance(),
                           dataset_options=cell.dataset_key_options())

    assert tkey(default) == tkey(explicit) != tkey(more)
    assert base_record(more).config["dataset_options"] == {"n_subjects": 9, "split": None}
    assert base_record(default).config["dataset_options"] == {"n_subjects": 6, "split": None}
    # tables name the cell by its non-default options, so differently configured data never share a column
    assert base_record(default).dataset_label == base_record(explicit).dataset_label == "toyopt"
    assert base_record(more).dataset_label == "toyopt[n_subjects=9]"


def test_leaderboard_keeps_cells_of_differently_configured_data_apart():
    from eegkd_bench.leaderboard import render

    def rec(label, acc):
        return {"key": label, "status": "ok", "dataset": "sim-mi", "dataset_label": label, "teacher": "t",
                "student": "eegnet", "distiller": "none", "seed": 0, "n_classes": 4, "task": "multiclass",
                "metrics": {"balanced_accuracy": acc}, "data_kind": "simulated"}

    csv = render([rec("sim-mi", 0.61), rec("sim-mi[effect_scale=1.0]", 0.29)], "csv")
    assert "sim-mi[effect_scale=1.0]" in csv and "0.61" in csv and "0.29" in csv


def test_show_lists_a_simulated_datasets_options(capsys):
    from eegkd_plugins.simulated import SimAbnormal, SimMotorImagery

    assert main(["show", "sim-mi"]) == 0
    lines = capsys.readouterr().out.splitlines()
    header = next(i for i, line in enumerate(lines) if line.split()[:2] == ["option", "default"])
    rows = {line.split()[0]: line for line in lines[header + 1:]}
    assert set(rows) == {"n_subjects", "trials_per_class", "seed", "split", "window_s", "effect_scale"}
    assert rows["n_subjects"].split()[1:3] == [str(SimMotorImagery.default_subjects), "integer"]
    assert rows["trials_per_class"].split()[1] == str(SimMotorImagery.default_trials)
    assert rows["window_s"].split()[1:3] == [str(float(SimMotorImagery.window_s)), "number"]
    assert "list or none" in rows["split"] and "summing to n_subjects" in rows["split"]
    assert main(["show", "sim-abnormal"]) == 0  # a subclass's own defaults
    assert f"n_subjects        {SimAbnormal.default_subjects} " in capsys.readouterr().out
    assert main(["show", "tuev"]) == 0 and "declares no options" in capsys.readouterr().out


def test_set_dataset_option_changes_the_loaded_windows(tmp_path):
    """--set sim-mi.* reaches the windows the grid loads, and those a worker process loads for a cell."""
    from eegkd_bench.context import make_context
    from eegkd_bench.executors.pool import _worker_windows
    from eegkd_bench.plan import make_plan
    from eegkd_bench.plugins import get_registry
    from eegkd_bench.progress import PlainReporter

    settings = settings_from(sets=["sim-mi.n_subjects=3", "sim-mi.trials_per_class=1", "sim-mi.split=[1, 1, 1]"])
    reg = validate(get_registry(), settings)
    ctx = make_context(tmp_path / "r", tmp_path / "c", None, latency=False)
    plan = make_plan(reg, ctx, PlainReporter(stream=io.StringIO()), ["sim-mi"], "cbramod-sim", ["eegnet"], ["none"],
                     (0,), PRESETS["quick"], options=settings.options)
    w, = plan.windows.values()
    assert sorted(set(w.subjects)) == ["S01", "S02", "S03"] and len(w.y) == 3 * len(w.class_names)
    assert [len(set(w.subjects[w.split == s])) for s in ("train", "val", "test")] == [1, 1, 1]
    cell, = plan.cells
    assert dict(cell.dataset_options)["n_subjects"] == 3 and not cell.dataset_defaults
    assert _worker_windows(ctx, reg)(cell).checksum == w.checksum


def test_dry_run_prints_the_datasets_options_and_loads_with_them(capsys, tmp_path, monkeypatch):
    from eegkd_bench import build

    loaded = []
    monkeypatch.setattr(build, "load_dataset", lambda reg, name, d, c, options=None: loaded.append(options)
                        or _sim_windows())
    cfg = tmp_path / "run.toml"
    cfg.write_text('[options.sim-mi]\nn_subjects = 9\nseed = 3\n')
    code = main(["run", "--dry-run", "--config", str(cfg), "--results", str(tmp_path / "r"),
                 "--cache-dir", str(tmp_path / "c"), "--datasets", "sim-mi", "--methods", "none",
                 "--set", "sim-mi.n_subjects=6"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "dataset sim-mi: effect_scale=2.0 n_subjects=6 seed=3 split=none" in out  # --set over the file
    assert loaded and loaded[0]["n_subjects"] == 6 and loaded[0]["seed"] == 3
    assert not (tmp_path / "r").exists()


def test_a_preset_sets_component_options_under_the_runs_own() -> None:
    from eegkd_bench.config import settings_from

    assert settings_from("sim").options["sim-mi"] == {"n_subjects": 96}
    assert settings_from("sim", sets=["sim-mi.n_subjects=12"]).options["sim-mi"] == {"n_subjects": 12}
    assert "sim-mi" not in settings_from("quick").options
