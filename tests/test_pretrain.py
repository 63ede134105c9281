"""`eegkd-bench pretrain`: masked-patch pretraining, resume, one-line errors, the corpus and the shipped checkpoint."""
from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from eegkd_bench.api import Availability, Dataset, EEGWindows, InputSpec, UserError
from eegkd_bench.cli import main
from eegkd_bench.data.cache import file_sha256
from eegkd_bench.pretrain import PretrainConfig, make_pool, pretrain
from eegkd_bench.registry import Entry, Registry
from eegkd_bench.plugins import get_registry
from eegkd_bench.identity import checkpoint_init
from eegkd_bench.teachers import build_teacher, resolve_checkpoint
from eegkd_plugins.cbramod import cbramod_mini, cbramod_sim
from eegkd_plugins.simulated import SimLabelledCorpus, SimMotorImagery, SimPretrainCorpus
from eegkd_plugins.students.eegnet import build as eegnet

ROOT = Path(__file__).resolve().parents[1]


class Noise(Dataset):
    """A tiny labeled dataset of white noise (4 channels, 2 s at ``sfreq``)."""

    name = "noise"
    kind = "simulated"
    class_names = ("a", "b")
    n_channels = 4
    samples = 400
    sfreq = 200.0

    def availability(self, data_dir: str | None = None) -> Availability:
        return Availability(True, "memory")

    def load(self, data_dir: str | None = None, cache_dir: str | None = None) -> EEGWindows:
        rng = np.random.default_rng(0)
        n = 12
        return EEGWindows(name=self.name, X=rng.standard_normal((n, self.n_channels, self.samples)).astype(np.float32),
                          y=np.arange(n) % 2, subjects=np.array([f"S{i // 4}" for i in range(n)]),
                          split=np.array(["train"] * 8 + ["val"] * 2 + ["test"] * 2), sfreq=self.sfreq,
                          ch_names=[f"C{i}" for i in range(self.n_channels)], class_names=list(self.class_names),
                          kind="simulated", checksum=f"noise-{self.sfreq}-{self.samples}")


class Noise250(Noise):
    name = "noise-250"
    sfreq = 250.0


class Noise300(Noise):
    name = "noise-300"
    samples = 300


class Rhythm(Noise):
    """A 10 Hz rhythm shared by all channels, random phase and gain: a hidden patch is predictable from its neighbours."""

    name = "rhythm"

    def load(self, data_dir: str | None = None, cache_dir: str | None = None) -> EEGWindows:
        w = super().load()
        rng = np.random.default_rng(1)
        t = np.arange(self.samples) / self.sfreq
        phase = rng.uniform(0, 2 * np.pi, (len(w.X), 1, 1))
        gain = rng.uniform(0.5, 1.5, (len(w.X), self.n_channels, 1))
        w.X = (gain * np.sin(2 * np.pi * 10 * t + phase)).astype(np.float32)
        return w


def registry() -> Registry:
    reg = Registry()
    for cls in (Noise, Noise250, Noise300, Rhythm):
        reg.add(Entry("datasets", cls.name, cls, "test"))
    reg.add(Entry("datasets", "sim-pretrain", lambda: SimPretrainCorpus(n_subjects=8), "test"))
    reg.add(Entry("datasets", "sim-pretrain-sup", lambda: SimLabelledCorpus(n_subjects=8, paradigms="mi,events"),
                  "test"))
    reg.add(Entry("teachers", "cbramod-mini", cbramod_mini, "test"))
    reg.add(Entry("teachers", "cbramod-sim", cbramod_sim, "test"))
    reg.add(Entry("teachers", "eegnet", eegnet, "test"))  # a model without patch tokens
    return reg


@pytest.fixture(autouse=True)
def _one_thread() -> Any:
    """One torch thread: on a busy 2-core machine two threads spin-wait each other (3x slower, measured)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


TINY = PretrainConfig(steps=4, batch_size=2, warmup_steps=1, checkpoint_every=2, log_every=1)


def run(out: Path, teacher: str = "cbramod-mini", datasets: tuple[str, ...] = ("noise",),
        cfg: PretrainConfig = TINY, **kw: Any) -> dict[str, Any]:
    reg = registry()
    pool = make_pool(reg, list(datasets), None, None, cfg.seed)
    return pretrain(teacher, reg.get("teachers", teacher).factory, {}, pool, cfg, out, **kw)


def test_tiny_run_writes_a_loadable_checkpoint_and_sidecar(tmp_path: Path) -> None:
    out = tmp_path / "mini.pt"
    meta = run(out)
    side = json.loads(out.with_suffix(".json").read_text())
    assert side == meta and side["sha256"] == file_sha256(out)
    assert side["steps_done"] == 4 and side["windows_seen"] == 8 and len(side["loss_curve"]) == 4
    assert side["architecture"]["teacher"] == "cbramod-mini"
    assert side["pool"][0]["checksum"] == "noise-200.0-400" and side["pool"][0]["split"] == "train"
    assert not out.with_name("mini.pt.resume").exists()
    # the format --teacher-checkpoint loads: strictly into the backbone, for another dataset's input shape
    model = build_teacher(cbramod_mini, "cbramod-mini", InputSpec(22, 800, 4), {}, str(out))
    assert model.init_source == f"sim-pretrained sha256:{side['sha256']}"  # noise is labelled simulated
    saved = torch.load(out, weights_only=True)
    assert all(torch.equal(saved[k], v) for k, v in model.backbone.state_dict().items())


def test_training_lowers_the_reconstruction_loss(tmp_path: Path) -> None:
    cfg = PretrainConfig(steps=30, batch_size=4, lr=2e-3, warmup_steps=2, log_every=1, checkpoint_every=100)
    curve = run(tmp_path / "m.pt", datasets=("rhythm",), cfg=cfg)["loss_curve"]
    assert 0.9 < curve[0]["nmse"] < 1.1, curve  # the zero-initialised head starts at the predict-zero baseline
    assert curve[-1]["nmse"] < 0.5, curve


def test_resume_after_interruption_gives_the_uninterrupted_result(tmp_path: Path) -> None:
    ref = run(tmp_path / "ref.pt")

    def stop_after_3(event: dict[str, Any]) -> None:
        if event["step"] == 3:
            raise KeyboardInterrupt

    out = tmp_path / "cut.pt"
    with pytest.raises(KeyboardInterrupt):
        run(out, progress=stop_after_3)
    assert not out.exists() and out.with_name("cut.pt.resume").exists()  # saved at step 2
    steps = []
    meta = run(out, progress=lambda e: steps.append(e["step"]))
    assert steps == [3, 4]  # resumed from the step-2 state
    a, b = torch.load(tmp_path / "ref.pt", weights_only=True), torch.load(out, weights_only=True)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert meta["loss_curve"] == ref["loss_curve"]


SUP = dataclasses.replace(TINY, objective="supervised", batch_size=4)


def test_supervised_stage_on_a_self_supervised_checkpoint_is_labelled_and_resumes(tmp_path: Path) -> None:
    """--objective supervised: one head per task on the labelled corpus; the label says both stages;
    an interrupted run resumes (heads included) to the uninterrupted result."""
    ssl = tmp_path / "ssl.pt"
    run(ssl, datasets=("sim-pretrain",), cfg=dataclasses.replace(TINY, steps=1))
    cfg = dataclasses.replace(SUP, init=str(ssl), init_label=checkpoint_init(str(ssl)))
    ref = run(tmp_path / "ref.pt", datasets=("sim-pretrain-sup",), cfg=cfg)
    assert ref["label"] == "sim-ssl+sup-pretrained" and ref["recipe"]["objective"] == "supervised"
    assert ref["recipe"]["init"] == checkpoint_init(str(ssl)) and ref["recipe"]["init"].startswith("sim-pretrained ")
    assert {"step", "loss", "accuracy"} <= set(ref["loss_curve"][0])
    # the reconstruction head is the self-supervised stage's; the rest of the backbone moved
    a, b = torch.load(ssl, weights_only=True), torch.load(tmp_path / "ref.pt", weights_only=True)
    assert all(torch.equal(a[k], b[k]) for k in a if k.startswith("proj_out."))
    assert any(not torch.equal(a[k], b[k]) for k in a if k.startswith("encoder."))
    assert checkpoint_init(str(tmp_path / "ref.pt")).startswith("sim-ssl+sup-pretrained sha256:")

    def stop_after_3(event: dict[str, Any]) -> None:
        if event["step"] == 3:
            raise KeyboardInterrupt

    out = tmp_path / "cut.pt"
    with pytest.raises(KeyboardInterrupt):
        run(out, datasets=("sim-pretrain-sup",), cfg=cfg, progress=stop_after_3)
    meta = run(out, datasets=("sim-pretrain-sup",), cfg=cfg)
    a, b = torch.load(tmp_path / "ref.pt", weights_only=True), torch.load(out, weights_only=True)
    assert all(torch.equal(a[k], b[k]) for k in a) and meta["loss_curve"] == ref["loss_curve"]
    # from random init the label says so
    assert run(tmp_path / "sup.pt", datasets=("sim-pretrain-sup",), cfg=SUP)["label"] == "sim-sup-pretrained"


def test_supervised_objective_needs_a_labelled_corpus(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="no labelled stream for --objective supervised"):
        run(tmp_path / "x.pt", datasets=("sim-pretrain",), cfg=SUP)


@pytest.mark.slow
def test_kill_9_then_the_same_command_resumes(tmp_path: Path) -> None:
    out = tmp_path / "k.pt"
    base = [sys.executable, "-m", "eegkd_bench.cli", "pretrain", "--teacher", "cbramod-mini", "--datasets", "sim-mi",
            "--out", str(out), "--batch-size", "2", "--checkpoint-every", "1", "--threads", "1", "-q"]
    cmd = [*base, "--steps", "60"]
    env = {**os.environ, "EEGKD_CACHE": str(tmp_path / "cache")}
    proc = subprocess.Popen(cmd, env=env, stderr=subprocess.DEVNULL)
    resume = out.with_name("k.pt.resume")
    deadline = time.time() + 120
    while not resume.exists() and time.time() < deadline:
        time.sleep(0.1)
    time.sleep(0.3)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert resume.exists() and not out.exists()
    step = torch.load(resume, weights_only=True)["step"]
    assert 1 <= step < 60
    other = subprocess.run([*base, "--steps", "61"], env=env, capture_output=True, text=True)
    assert other.returncode == 2 and "another recipe" in other.stderr  # refused, nothing touched
    assert torch.load(resume, weights_only=True)["step"] == step
    finish = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert finish.returncode == 0, finish.stderr
    assert out.exists() and not resume.exists()
    assert json.loads(out.with_suffix(".json").read_text())["steps_done"] == 60


def test_finished_run_is_not_redone_and_another_run_does_not_overwrite(tmp_path: Path) -> None:
    out = tmp_path / "m.pt"
    first = run(out)
    digest = file_sha256(out)
    assert run(out) == first  # same command: already finished
    with pytest.raises(UserError, match="already exists") as info:
        run(out, cfg=PretrainConfig(steps=5, batch_size=2, warmup_steps=1))
    assert "\n" not in str(info.value) and file_sha256(out) == digest


def test_resuming_with_another_architecture_is_refused(tmp_path: Path) -> None:
    out = tmp_path / "m.pt"
    with pytest.raises(KeyboardInterrupt):
        run(out, progress=lambda e: (_ for _ in ()).throw(KeyboardInterrupt) if e["step"] == 3 else None)
    resume = out.with_name("m.pt.resume")
    before = file_sha256(resume)
    with pytest.raises(UserError, match="another architecture") as info:
        run(out, teacher="cbramod-sim")
    assert "\n" not in str(info.value) and "cbramod-mini" in str(info.value)
    assert file_sha256(resume) == before and not out.exists()


@pytest.mark.parametrize("teacher, datasets, match", [
    ("eegnet", ("noise",), "exposes no patch tokens"),
    ("cbramod-mini", ("noise", "noise-300"), "noise-300.* not whole 200-sample patches"),
    ("cbramod-mini", ("noise", "noise-250"), r"mixes sampling rates \(noise 200 Hz, noise-250 250 Hz\)"),
])
def test_bad_input_is_a_one_line_error(tmp_path: Path, teacher: str, datasets: tuple[str, ...], match: str) -> None:
    with pytest.raises(UserError, match=match) as info:
        run(tmp_path / "x.pt", teacher=teacher, datasets=datasets)
    assert "\n" not in str(info.value)
    assert list(tmp_path.iterdir()) == []


def test_cli_bad_input_exits_2_with_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "x.pt"
    assert main(["pretrain", "--teacher", "labram", "--datasets", "sim-pretrain", "--out", str(out), "-q"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    errors = [line for line in err if line.startswith("eegkd-bench: error:")]
    assert errors == err[-1:] and "exposes no patch tokens" in err[-1] and not out.exists()
    assert main(["pretrain", "--teacher", "cbramod-sim", "--datasets", "sim-pretrain", "--out", str(out),
                 "--mask-ratio", "1.5"]) == 2
    assert "--mask-ratio 1.5" in capsys.readouterr().err
    # teacher options with --set, as in run: another component's name or an unknown option is one line
    base = ["pretrain", "--teacher", "cbramod-sim", "--datasets", "sim-pretrain", "--out", str(out), "--steps", "1"]
    assert main([*base, "--set", "kd.temperature=2"]) == 2
    assert "pretrain sets options of its teacher and its datasets only" in capsys.readouterr().err
    assert main([*base, "--set", "cbramod-sim.dropuot=0.2"]) == 2
    assert "dropuot" in capsys.readouterr().err and not out.exists()


def test_streamed_corpus_pretrains_and_is_deterministic(tmp_path: Path) -> None:
    corpus = SimPretrainCorpus(n_subjects=8)
    a, b = corpus.stream_batch(5, 3), corpus.stream_batch(5, 3)
    np.testing.assert_array_equal(a, b)
    assert a.dtype == np.float32 and a.shape[0] == 3 and np.isfinite(a).all()
    # four paradigms in turn: their montages and window lengths
    shapes = {corpus.subject_of(i)[2]: corpus.stream_batch(i, 1).shape[1:] for i in range(4)}
    assert shapes == {"mi": (22, 800), "abnormal": (16, 2000), "events": (16, 1000), "affective": (32, 1000)}
    # a subject is a person: a second pass draws new windows of the same subject
    assert corpus.subject_of(13)[:2] == (5, 1) and not np.allclose(corpus.stream_batch(13, 3), a)
    with pytest.raises(UserError, match="streamed batch by batch"):
        corpus.load()
    meta = run(tmp_path / "c.pt", datasets=("sim-pretrain",), cfg=PretrainConfig(steps=2, batch_size=2, warmup_steps=1))
    assert meta["pool"][0]["streamed"] and meta["pool"][0]["checksum"] == SimPretrainCorpus(n_subjects=8).checksum


def test_corpus_subjects_are_not_the_labeled_subjects() -> None:
    corpus = SimPretrainCorpus()
    assert corpus.n_subjects >= 50 * SimMotorImagery.default_subjects
    labeled = SimMotorImagery(n_subjects=3, trials_per_class=1, use_cache=False)
    own = {tuple(s.entropy) if isinstance(s.entropy, (list, tuple)) else (s.entropy,) for s in labeled.subject_streams()}
    assert not any(tuple([corpus.seed, *corpus.name.encode(), s]) in own for s in range(4))


def test_grid_selection_all_leaves_the_corpus_out() -> None:
    from eegkd_bench.plugins import get_registry
    from eegkd_bench.data.catalog import select_datasets

    names = select_datasets(get_registry(), "all", simulated_only=True)
    assert "sim-pretrain" not in names and {"sim-mi", "sim-abnormal", "sim-events", "sim-affective"} <= set(names)


# ------------------------------------------------------------------ init labels and the shipped checkpoint
def test_records_name_a_simulated_pretraining_sim_pretrained(tmp_path: Path) -> None:
    from eegkd_bench.identity import checkpoint_init

    out = tmp_path / "r.pt"
    meta = run(out, datasets=("rhythm",))
    assert meta["label"] == "sim-pretrained"
    assert checkpoint_init(str(out)) == f"sim-pretrained sha256:{meta['sha256']}"
    model = build_teacher(cbramod_mini, "cbramod-mini", InputSpec(4, 400, 2), {}, str(out))
    assert model.init_source == f"sim-pretrained sha256:{meta['sha256']}"
    out.write_bytes(out.read_bytes() + b"\0")  # no longer the file its sidecar describes: no label
    assert checkpoint_init(str(out)) == f"sha256:{file_sha256(out)}"
    assert checkpoint_init(None) == "random"


def test_teacher_checkpoint_accepts_a_file_a_registered_name_or_none(tmp_path: Path) -> None:
    from eegkd_bench.plugins import get_registry
    from eegkd_bench.teachers import resolve_checkpoint
    from eegkd_plugins.cbramod import SIM_CHECKPOINT

    entry = get_registry().get("teachers", "cbramod-sim")
    assert resolve_checkpoint(entry, "sim-pretrained") == str(SIM_CHECKPOINT)
    assert resolve_checkpoint(entry, "none") is None and resolve_checkpoint(entry, None) is None
    assert resolve_checkpoint(entry, str(SIM_CHECKPOINT)) == str(SIM_CHECKPOINT)
    with pytest.raises(UserError, match="registers sim-pretrained") as info:
        resolve_checkpoint(entry, "sim-pretrianed")
    assert "\n" not in str(info.value)


def test_shipped_checkpoint_matches_its_sidecar_and_loads_strictly() -> None:
    from eegkd_bench.identity import checkpoint_init
    from eegkd_plugins.cbramod import SIM_CHECKPOINT

    side = json.loads(SIM_CHECKPOINT.with_suffix(".json").read_text())
    assert side["sha256"] == file_sha256(SIM_CHECKPOINT) and side["label"] == "sim-pretrained"
    assert side["architecture"]["teacher"] == "cbramod-sim" and side["pool"][0]["name"] == "sim-pretrain"
    assert side["steps_done"] == side["recipe"]["steps"] and side["command"].startswith("eegkd-bench pretrain")
    assert SIM_CHECKPOINT.stat().st_size < 5e6
    for c, t in ((22, 800), (16, 2000), (16, 1000), (32, 1000)):  # the four simulated benchmarks' inputs
        model = build_teacher(cbramod_sim, "cbramod-sim", InputSpec(c, t, 2), {}, str(SIM_CHECKPOINT))
        assert model.init_source == checkpoint_init(str(SIM_CHECKPOINT)) == f"sim-pretrained sha256:{side['sha256']}"
    curve = side["loss_curve"]
    assert curve[-1]["nmse"] < curve[0]["nmse"]  # pretraining learned something


def test_shipped_supervised_checkpoint_says_both_stages_and_loads_strictly() -> None:
    """The presets' teacher: sim-pretrained, then a supervised stage on the labelled corpus; 10 MB at most."""
    from eegkd_plugins.cbramod import SIM_CHECKPOINT, SIM_SUP_CHECKPOINT

    side = json.loads(SIM_SUP_CHECKPOINT.with_suffix(".json").read_text())
    assert side["sha256"] == file_sha256(SIM_SUP_CHECKPOINT) and side["label"] == "sim-ssl+sup-pretrained"
    assert side["pool"][0]["name"] == "sim-pretrain-sup" and side["recipe"]["objective"] == "supervised"
    assert side["recipe"]["init"] == checkpoint_init(str(SIM_CHECKPOINT))  # on top of the shipped SSL checkpoint
    assert side["steps_done"] == side["recipe"]["steps"] and SIM_SUP_CHECKPOINT.stat().st_size < 10e6
    entry = get_registry().get("teachers", "cbramod-sim")
    assert resolve_checkpoint(entry, "sim-ssl+sup-pretrained") == str(SIM_SUP_CHECKPOINT)
    for c, t in ((22, 800), (16, 2000), (16, 1000), (32, 1000)):
        model = build_teacher(cbramod_sim, "cbramod-sim", InputSpec(c, t, 2), {}, str(SIM_SUP_CHECKPOINT))
        assert model.init_source == f"sim-ssl+sup-pretrained sha256:{side['sha256']}"
    curve = side["loss_curve"]
    assert curve[-1]["accuracy"] > curve[0]["accuracy"] + 0.2  # it learned the tasks on unseen subjects


def test_quick_preset_teacher_is_the_big_model() -> None:
    from eegkd_bench.cost import count_flops
    from eegkd_bench.presets import PRESETS

    quick = PRESETS["quick"]
    assert (quick.teacher, quick.teacher_checkpoint, quick.students) == ("cbramod-sim", "sim-ssl+sup-pretrained",
                                                                         "eegnet")
    for c, t, k in ((22, 800, 4), (16, 2000, 2), (16, 1000, 6), (32, 1000, 9)):
        spec, x = InputSpec(c, t, k), torch.zeros(1, c, t)
        assert count_flops(cbramod_sim(spec).eval(), x) >= 10 * count_flops(eegnet(spec).eval(), x)
