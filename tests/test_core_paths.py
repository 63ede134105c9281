"""The core's single paths: the typed record, run_cell, the teacher-cache verification, options and construction."""
from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

import pytest

from eegkd_bench.api import Distiller, Option, UserError, check_value, take_options
from eegkd_bench.results import DESCRIBING, MEASURED, RECORD_FIELDS, RECORD_FORMAT, Record, ResultStore
from eegkd_bench.training import TrainConfig
from test_teacher_cache import CFG, _toy_registry, windows


def _cell(distiller: str = "kd"):
    from eegkd_bench.identity import CellSpec

    return CellSpec("toy", "toy-teacher", "tinytransformer", distiller, 0, "test", CFG,
                    TrainConfig(epochs=1, batch_size=16))


# --------------------------------------------------------------------- records
def test_an_ok_record_has_exactly_the_typed_fields(tmp_path: Path) -> None:
    from eegkd_bench.cell import execute_cell
    from eegkd_bench.context import make_context

    ctx = make_context(tmp_path / "r", tmp_path / "c", None, latency=False)
    rec = execute_cell(_cell(), ctx, _toy_registry(), windows(200))
    assert rec["status"] == "ok", rec.get("error")
    stored = json.loads(ResultStore(tmp_path / "r").path(rec["key"]).read_text())
    assert stored["record_format"] == RECORD_FORMAT
    # every field written is declared (RECORD_FIELDS cannot go stale), and every measured one is there
    extras = {"split_sizes", "traceback", "export", "teacher_export", "export_error"}
    assert set(stored) <= set(RECORD_FIELDS) | extras
    assert set(DESCRIBING) | set(MEASURED) <= set(stored)
    assert stored["student_latency_ms"] is None  # not measured: present, null
    assert Record.from_dict(stored).to_dict() == stored


def test_a_format_1_record_loads_and_keeps_what_this_version_does_not_know() -> None:
    old = {"key": "k", "schema_version": 1, "status": "ok", "dataset": "d", "metrics": {"accuracy": 0.5},
           "a_future_field": [1, 2]}
    rec = Record.from_dict(old)
    assert rec.record_format == 1 and rec.metrics == {"accuracy": 0.5} and rec.teacher_init is None
    assert rec.to_dict()["a_future_field"] == [1, 2]


def test_a_failed_record_carries_its_reason_and_no_measurements(tmp_path: Path) -> None:
    from eegkd_bench.cell import execute_cell
    from eegkd_bench.context import make_context

    ctx = make_context(tmp_path / "r", tmp_path / "c", None, latency=False)
    cell = dataclasses.replace(_cell(), student_options=(("colour", "red"),))
    rec = execute_cell(cell, ctx, _toy_registry(), windows(200))
    assert rec["status"] == "failed" and "colour" in rec["error"] and "\n" not in rec["error"]
    assert "metrics" not in rec and rec["traceback"] and rec["key"]


def test_run_cell_returns_the_record_and_writes_nothing_to_the_store(tmp_path: Path) -> None:
    from eegkd_bench.cell import prepare_cell_teacher, run_cell
    from eegkd_bench.context import make_context

    ctx = make_context(tmp_path / "r", tmp_path / "c", None, latency=False)
    reg, w, cell = _toy_registry(), windows(200), _cell()
    teacher = prepare_cell_teacher(cell, ctx, reg, w)
    record, payload = run_cell(cell, w, teacher, ctx, reg)
    assert isinstance(record, Record) and record.status == "ok" and record.key
    assert set(payload["state_dict"]) and payload["student"] == "tinytransformer"
    assert [p.name for p in (tmp_path / "r").rglob("*") if p.is_file()] == ["store.json"]  # no record, no weights


# ------------------------------------------------------------- teacher cache
def test_a_cached_output_is_hashed_once_per_process_not_once_per_cell(tmp_path: Path, monkeypatch) -> None:
    import eegkd_bench.teacher_cache.outputs as outputs
    from eegkd_bench.cell import prepare_cell_teacher
    from eegkd_bench.context import make_context

    ctx = make_context(tmp_path / "r", tmp_path / "c", None, latency=False)
    reg, w, cell = _toy_registry(), windows(200), _cell()
    teacher = prepare_cell_teacher(cell, ctx, reg, w)
    X = w.part("train")[0]
    outputs.teacher_outputs(teacher, X, {"logits"}, ctx.cache_dir)  # written (and hashed while published)
    path = next((ctx.cache_dir / "teacher_outputs").glob("*/logits.npy"))
    written = path.stat().st_mtime_ns - 60 * 10**9
    os.utime(path, ns=(written, written))  # a cache written a minute ago, as the grid's teacher pass leaves it
    hashed: list[Path] = []
    real = outputs.file_sha256
    monkeypatch.setattr(outputs, "file_sha256", lambda p: hashed.append(p) or real(p))
    for _ in range(3):  # three cells read it
        outputs.teacher_outputs(teacher, X, {"logits"}, ctx.cache_dir)
    assert len(hashed) <= 1
    # a file replaced on disk (another process rewrote it) is hashed again, and a corrupt one recomputed
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.with_name("replacement").write_bytes(bytes(data))
    path.with_name("replacement").replace(path)
    with pytest.warns(UserWarning, match="corrupt"):
        outputs.teacher_outputs(teacher, X, {"logits"}, ctx.cache_dir)
    assert len(hashed) >= 2


def test_a_file_checked_right_after_it_was_written_is_checked_again(tmp_path: Path, monkeypatch) -> None:
    """Within the file system's timestamp granularity a same-size rewrite keeps its modification time, so a
    file modified moments before its check is not remembered as verified: a corruption right after is found."""
    import eegkd_bench.teacher_cache.outputs as outputs
    from eegkd_bench.cell import prepare_cell_teacher
    from eegkd_bench.context import make_context

    ctx = make_context(tmp_path / "r", tmp_path / "c", None, latency=False)
    reg, w, cell = _toy_registry(), windows(200), _cell()
    teacher = prepare_cell_teacher(cell, ctx, reg, w)
    X = w.part("train")[0]
    outputs.teacher_outputs(teacher, X, {"logits"}, ctx.cache_dir)
    outputs.teacher_outputs(teacher, X, {"logits"}, ctx.cache_dir)  # verified, not remembered: too recent
    path = next((ctx.cache_dir / "teacher_outputs").glob("*/logits.npy"))
    stat = path.stat()
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))  # in place: same inode and size
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # and the same modification time
    with pytest.warns(UserWarning, match="corrupt"):
        outputs.teacher_outputs(teacher, X, {"logits"}, ctx.cache_dir)


# -------------------------------------------------------------- options path
def test_ranges_and_choices_are_checked_in_one_place() -> None:
    opts = {"t": Option(4.0, min=0, exclusive_min=True), "a": Option(0.9, min=0, max=1),
            "k": Option(None, type=int, min=1), "m": Option("mse", choices=("mse", "cosine"))}
    assert check_value("x", "t", 1, opts) == 1.0 and check_value("x", "k", None, opts) is None
    for option, value, message in (("t", 0, r"x.t = 0.0 is out of range; expected number > 0"),
                                   ("a", 1.5, r"expected number in \[0, 1\]"),
                                   ("k", 0, "expected integer >= 1 or none"),
                                   ("m", "l1", "is not one of 'mse', 'cosine'"),
                                   ("z", 1, "unknown option 'z' of x")):
        with pytest.raises(UserError, match=message) as err:
            check_value("x", option, value, opts)
        assert "\n" not in str(err.value)
    assert take_options("x", {"a": 1}, opts) == {"t": 4.0, "a": 1, "k": None, "m": "mse"}  # kept as given


def test_show_names_each_options_range(capsys) -> None:
    from eegkd_bench.cli import main

    assert main(["show", "kd"]) == 0
    out = capsys.readouterr().out
    assert "number > 0" in out and "number in [0, 1]" in out


def test_a_distiller_gets_total_epochs_at_construction_and_declares_its_warm_up() -> None:
    from eegkd_bench.build import build_distiller, build_teacher
    from eegkd_bench.plugins import get_registry
    from eegkd_bench.teachers import teacher_info

    reg = get_registry()
    cell = dataclasses.replace(_cell("fitnets"), student="eegnet", student_cfg=TrainConfig(epochs=12, batch_size=16))
    spec = windows(200).input_spec()
    info = teacher_info("toy-teacher", build_teacher(_toy_registry(), cell, spec), spec)
    fitnets = build_distiller(reg, cell, spec, info, total_epochs=12)
    assert fitnets.total_epochs == 12 and fitnets.hint_epochs == 3
    assert reg.get("distillers", "dlink").factory.teacher_warmup is True
    assert reg.get("distillers", "kd").factory.teacher_warmup is False

    class Undeclared(Distiller):  # overrides the warm-up hook without saying: taken to read the teacher
        def on_train_start(self, teacher_train, y_train) -> None:
            pass

    class Declared(Undeclared):
        teacher_warmup = False

    assert Undeclared.teacher_warmup is True and Declared.teacher_warmup is False


# ------------------------------------------------------------------ pretrain
def test_pretrain_takes_dataset_options_and_checks_teacher_options_like_run(tmp_path: Path, capsys,
                                                                            monkeypatch) -> None:
    import eegkd_bench.pretrain as pretrain_mod
    from eegkd_bench.cli import main

    seen: dict = {}

    def fake_pool(reg, names, data_dir, cache_dir, seed, options=None):
        seen["options"] = options
        raise UserError("stop here")

    monkeypatch.setattr(pretrain_mod, "make_pool", fake_pool)
    base = ["pretrain", "--teacher", "cbramod-mini", "--datasets", "sim-mi", "--out", str(tmp_path / "x.pt"),
            "--steps", "1", "-q"]
    assert main([*base, "--set", "sim-mi.n_subjects=7", "--teacher-options", '{"dropout": 0.2}']) == 2
    assert seen["options"]["sim-mi"] == {"n_subjects": 7} and seen["options"]["cbramod-mini"] == {"dropout": 0.2}
    capsys.readouterr()
    assert main([*base, "--teacher-options", '{"dropout": "high"}']) == 2
    assert "cbramod-mini.dropout = 'high' has the wrong type" in capsys.readouterr().err
    assert main([*base, "--set", "sim-mi.n_subject=7"]) == 2
    assert "did you mean 'n_subjects'" in capsys.readouterr().err
