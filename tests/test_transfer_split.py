"""The low-label world: the unlabelled transfer split, who reads it, and subjects that never meet.

No test or validation subject of a simulated benchmark may appear in a pretraining corpus or in the
transfer split, and a student trained alone never sees the transfer split.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from eegkd_bench.api import UNLABELLED
from eegkd_bench.cli import main
from eegkd_bench.plugins import get_registry
from eegkd_plugins.distillers.common import cross_entropy
from eegkd_plugins.simulated import DATASETS, SimLabelledCorpus, SimPretrainCorpus


def _state(seq: np.random.SeedSequence) -> tuple[int, ...]:
    """A subject's identity: everything about a simulated subject is drawn from its seed sequence."""
    return tuple(int(v) for v in seq.generate_state(4))


def _benchmark_subjects(cls) -> dict[str, set[tuple[int, ...]]]:
    """Each split's subjects, as the generator assigns them (one window per class keeps this fast; the
    assignment does not depend on the window count)."""
    streams = cls(use_cache=False).subject_streams()
    w = cls(use_cache=False, trials_per_class=1).generate()
    return {split: {_state(streams[int(s[1:]) - 1]) for s in set(w.subjects[w.split == split])}
            for split in ("train", "val", "test", "transfer")}


@pytest.mark.parametrize("cls", DATASETS, ids=[c.name for c in DATASETS])
def test_no_val_or_test_subject_is_pretrained_on_or_in_the_transfer_split(cls) -> None:
    subjects = _benchmark_subjects(cls)
    held_out, transfer, train = subjects["val"] | subjects["test"], subjects["transfer"], subjects["train"]
    assert len(held_out) == sum(cls().split_counts[1:3]) and transfer and train
    assert not held_out & transfer and not train & transfer
    for corpus in (SimPretrainCorpus(), SimLabelledCorpus()):
        pretrained = {_state(np.random.SeedSequence(corpus.subject_root(j))) for j in range(corpus.n_subjects)}
        assert len(pretrained) == corpus.n_subjects
        assert not held_out & pretrained, corpus.name
        assert not transfer & pretrained, corpus.name


def test_labelled_corpus_batches_cycle_paradigms_and_subjects() -> None:
    corpus = SimLabelledCorpus(n_subjects=16)
    seen = set()
    for i in range(8):
        paradigm, subjects = corpus.batch_subjects(i)
        assert paradigm == corpus.paradigms[i % 4]
        assert all(j % 4 == i % 4 for j, _ in subjects)
        seen |= {j for j, _ in subjects}
    assert seen == set(range(16))  # every subject of the corpus, in two passes
    paradigm, X, y = corpus.labelled_batch(0, 8)
    c, t, k = corpus.tasks()[paradigm]
    assert X.shape == (8, c, t) and X.dtype == np.float32 and y.min() >= 0 and y.max() < k
    np.testing.assert_array_equal(corpus.labelled_batch(0, 8)[1], X)  # the same batch for the same index


def test_cross_entropy_skips_unlabelled_windows() -> None:
    logits = torch.tensor([[2.0, 0.0], [0.0, 2.0], [5.0, -5.0]], requires_grad=True)
    y = torch.tensor([0, 1, UNLABELLED])
    ref = torch.nn.functional.cross_entropy(logits[:2], y[:2])
    assert torch.allclose(cross_entropy(logits, y), ref)
    none = cross_entropy(logits, torch.full((3,), UNLABELLED))
    none.backward()
    assert float(none.detach()) == 0.0 and float(logits.grad.abs().sum()) == 0.0


def test_which_distillers_read_the_transfer_split() -> None:
    reg = get_registry()
    reads = {name: reg.get("distillers", name).factory.defaults.get("transfer") is not None
             for name in ("kd", "fitnets", "rkd", "at", "pkt", "dlink", "dkd", "none")}
    assert reads == {"kd": True, "fitnets": True, "rkd": True, "at": True, "pkt": True, "dlink": True,
                     "dkd": False, "none": False}
    assert reg.get("distillers", "mic-ce").metadata["options"]["transfer"] is False


def test_only_distillers_train_on_the_transfer_split(tmp_path: Path) -> None:
    """A tiny grid: KD reads the 2 transfer subjects' windows, the student alone and KD with transfer=false do not."""
    sets = ["sim-mi.n_subjects=6", "sim-mi.split=[2,1,1,2]", "sim-mi.trials_per_class=1", "train.epochs=1",
            "teacher_train.epochs=1", "kd-lab.transfer=false"]
    argv = ["run", "--methods", "none,kd,kd-lab", "--variant", "kd-lab=kd", "--students", "eegnet",
            "--datasets", "sim-mi", "--teacher", "cbramod-mini", "--teacher-checkpoint", "none", "--seeds", "0",
            "--results", str(tmp_path / "r"), "--cache-dir", str(tmp_path / "c"), "-q"]
    for s in sets:
        argv += ["--set", s]
    assert main(argv) == 0
    records = {r["distiller"]: r for r in map(json.loads, map(Path.read_text, (tmp_path / "r" / "cells").glob("*.json")))}
    assert {d: (r["train_windows"], r["transfer_windows"]) for d, r in records.items()} == {
        "none": (8, 0), "kd": (8, 8), "kd-lab": (8, 0)}
    assert records["none"]["split_sizes"]["transfer"] == {"subjects": 2, "windows": 8}
