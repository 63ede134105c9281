"""Named run recipes (``--preset``) and the seed syntax of ``--seeds``."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

from eegkd_bench.errors import UserError
from eegkd_bench.training import TrainConfig


@dataclass(frozen=True)
class Preset:
    """Defaults of a named run recipe; explicit flags override them."""

    name: str
    methods: str
    students: str
    teacher: str
    datasets: str
    seeds: tuple[int, ...]
    teacher_cfg: TrainConfig
    student_cfg: TrainConfig
    simulated_only: bool = False
    jobs: int = 1  # default worker processes (the quick preset uses both cores)
    description: str = ""
    #: The preset teacher's init: a checkpoint name it registers (e.g. "sim-pretrained") or None (random).
    teacher_checkpoint: str | None = None
    #: Per-student changes to ``student_cfg``, by student name (``{"eegnet": {"epochs": 14}}``); a
    #: variant of a student takes its base's, then its own.
    student_overrides: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    def student_recipe(self, names: Sequence[str]) -> TrainConfig:
        """The training recipe of a student known by ``names`` (the student, then the components it builds on)."""
        cfg = self.student_cfg
        for name in reversed(tuple(names)):
            cfg = dataclasses.replace(cfg, **self.student_overrides.get(name, {}))
        return cfg


_QUICK = Preset(
    name="quick",
    methods="none,kd,dlink",
    students="eegnet",
    teacher="cbramod-sim",
    teacher_checkpoint="sim-pretrained",
    datasets="all",
    seeds=(0,),
    # sized so the whole quick grid (4 teacher fine-tunings + 12 cells) stays under 5 minutes on 2 cores;
    # the teacher is fine-tuned on jittered inputs: without them it fits the training subjects and
    # generalises worse than the compact students trained alone (docs/simulated_datasets.md)
    teacher_cfg=TrainConfig(epochs=4, batch_size=16, lr=5e-4, weight_decay=5e-2, augment="jitter"),
    student_cfg=TrainConfig(epochs=7, batch_size=8, lr=3e-3, weight_decay=1e-2),
    # EEGNet learns slowly at 3e-3 in 7 epochs: on sim-mi its test score then swings by 0.12 (SD) between
    # seeds; at 1e-2 it is higher and steadier, while ShallowConvNet does worse at 1e-2 (benchmarks/README.md).
    # One warm-up epoch: Adam's first full-size steps at 1e-2 decide, seed by seed, whether a new head
    # around EEGNet (DLink's MiC, a pooled linear head) trains at all (docs/distillers.md)
    student_overrides={"eegnet": {"lr": 1e-2, "warmup_epochs": 1}},
    simulated_only=True,
    jobs=2,
    description="the embedded simulated benchmarks end to end in minutes on 2 CPU cores "
                "(cbramod-sim teacher from the sim-pretrained checkpoint)",
)

PRESETS: dict[str, Preset] = {
    "quick": _QUICK,
    # the quick recipes, with enough seeds, methods and students for paired tests
    "sim": dataclasses.replace(
        _QUICK,
        name="sim",
        # mic-ce (DLink's MiC student on labels only) separates the wrapper's effect from distillation's
        methods="none,kd,fitnets,rkd,dlink,dlink-norouter,dlink-nospec,dlink-nomic,mic-ce",
        students="eegnet,shallowconvnet",
        # the two benchmarks where the teacher and both students learn within the quick recipes; all four
        # would take about twice the 45-minute budget on 2 cores
        datasets="sim-mi,sim-events",
        seeds=(0, 1, 2, 3, 4),
        # ten teacher fine-tunings against 160 student cells: a longer, gentler one costs little
        teacher_cfg=TrainConfig(epochs=6, batch_size=16, lr=3e-4, weight_decay=5e-2, augment="jitter"),
        # 10 epochs at 1e-2 bring EEGNet's seed-to-seed SD on sim-mi from 0.12 to 0.01: paired tests then
        # resolve differences of a few points rather than ten
        student_overrides={"eegnet": {"lr": 1e-2, "epochs": 10, "warmup_epochs": 1}},
        description="method comparison on sim-mi and sim-events: 5 seeds, DLink, its ablations and its "
                    "size-matched control against KD/FitNets/RKD, two students (tests over subjects per dataset, "
                    "meta-analysis and ranks across them)",
    ),
    "paper": Preset(
        name="paper",
        methods="all",
        students="all",
        teacher="cbramod",
        datasets="all",
        seeds=(0, 1, 2),
        # CBraMod downstream recipe: AdamW, cosine schedule, label smoothing 0.1, 50 epochs.
        teacher_cfg=TrainConfig(epochs=50, batch_size=64, lr=1e-4, weight_decay=5e-2, warmup_epochs=2),
        student_cfg=TrainConfig(epochs=100, batch_size=64, lr=1e-3, weight_decay=1e-2, patience=20),
        description="the full recipe: full CBraMod teacher, every method and student, 3 seeds",
    ),
}


def parse_seeds(text: str) -> tuple[int, ...]:
    """``"0,1,2"`` or ``"0-4"`` -> seeds."""
    seeds: list[int] = []
    try:
        for part in text.split(","):
            part = part.strip()
            if not part:
                continue
            if "-" in part[1:]:
                lo, hi = part.split("-", 1)
                seeds.extend(range(int(lo), int(hi) + 1))
            else:
                seeds.append(int(part))
    except ValueError:
        raise UserError(f"invalid --seeds {text!r}; expected integers like 0,1,2 or a range like 0-4") from None
    if not seeds or any(s < 0 for s in seeds):
        raise UserError(f"invalid --seeds {text!r}; expected non-negative integers like 0,1,2")
    return tuple(dict.fromkeys(seeds))
