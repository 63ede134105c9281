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
    #: Component options the preset sets (``{"sim-mi": {"n_subjects": 96}}``), under the run's own ``--set``.
    options: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

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
    # pretrained on simulated EEG: self-supervised, then supervised on thousands of other simulated subjects
    # (docs/pretraining.md); the teacher has seen more than the few labelled subjects a benchmark offers
    teacher_checkpoint="sim-ssl+sup-pretrained",
    datasets="all",
    seeds=(0,),
    # the teacher is fine-tuned gently (the head starts at zero, the backbone already knows the tasks) on
    # jittered inputs: without them it fits the 4-6 training subjects (docs/simulated_datasets.md)
    # sized so the whole quick grid (4 teacher fine-tunings + 12 cells) stays under 5 minutes on 2 cores;
    # the sim preset trains longer (its recipes below)
    teacher_cfg=TrainConfig(epochs=4, batch_size=16, lr=1e-4, weight_decay=5e-2, augment="jitter"),
    student_cfg=TrainConfig(epochs=16, batch_size=8, lr=3e-3, weight_decay=1e-2),
    # EEGNet learns slowly at 3e-3; at 1e-2 it is higher and steadier (benchmarks/README.md). One warm-up
    # epoch: Adam's first full-size steps at 1e-2 decide, seed by seed, whether a new head around EEGNet
    # (DLink's MiC, a pooled linear head) trains at all (docs/distillers.md)
    student_overrides={"eegnet": {"lr": 1e-2, "warmup_epochs": 1}},
    simulated_only=True,
    jobs=2,
    description="the embedded simulated benchmarks end to end in minutes on 2 CPU cores "
                "(cbramod-sim teacher from the sim-ssl+sup-pretrained checkpoint)",
)

PRESETS: dict[str, Preset] = {
    "quick": _QUICK,
    # the quick recipes, with enough seeds and methods for tests over subjects and seeds
    "sim": dataclasses.replace(
        _QUICK,
        name="sim",
        # mic-ce (DLink's MiC student on labels only) separates the wrapper's effect from distillation's;
        # DLink's ablations and the second student (ShallowConvNet) would double the 45-minute budget on
        # 2 cores (docs/simulated_datasets.md)
        methods="none,kd,fitnets,rkd,dlink,mic-ce",
        datasets="all",
        seeds=(0, 1, 2, 3, 4),
        teacher_cfg=dataclasses.replace(_QUICK.teacher_cfg, epochs=6),
        # EEGNet alone still improves beyond 25 epochs on 4 labelled subjects (benchmarks/README.md); 25
        # keeps the preset within its 45 minutes
        student_cfg=dataclasses.replace(_QUICK.student_cfg, epochs=25),
        # more subjects only add test subjects (the labelled, validation and transfer subjects stay those of
        # the defaults, so training is unchanged): 82-88 per benchmark instead of 24-42, for paired tests over
        # subjects that resolve differences of about 0.03 (leaderboards/README.md)
        options={"sim-mi": {"n_subjects": 96}, "sim-events": {"n_subjects": 96},
                 "sim-abnormal": {"n_subjects": 96}, "sim-affective": {"n_subjects": 100}},
        description="method comparison on the four simulated benchmarks: 5 seeds, 82-88 test subjects each, DLink "
                    "and its size-matched control against KD/FitNets/RKD and the student alone, EEGNet (tests over "
                    "subjects per dataset, meta-analysis and ranks across them)",
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
