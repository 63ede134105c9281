"""The one training loop every distiller (and teacher fine-tuning) goes through.

Model selection uses the validation split only: after every epoch the
validation key metric is computed and the best state is kept; the test split
is never seen here.

Inputs are read batch by batch by index (:func:`eegkd_bench.api.read_rows`), so ``X`` may be
a memory-mapped store or a :class:`eegkd_bench.api.WindowRows` split of one: memory does not
grow with the dataset.
"""
from __future__ import annotations

import copy
import math
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Protocol

import numpy as np
import torch
from torch import nn

from eegkd_bench.api import EEGWindows, TeacherBatch, WindowRows, read_rows
from eegkd_bench.device import module_device
from eegkd_bench.metrics import KEY_METRIC, better, compute_metrics, per_subject_metrics, task_of


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation recipe (part of every cell key)."""

    epochs: int = 30
    batch_size: int = 64
    lr: float = 1e-3
    weight_decay: float = 1e-2
    schedule: str = "cosine"  # "cosine" | "constant"
    warmup_epochs: int = 0
    grad_clip: float = 5.0
    patience: int = 0  # stop after this many epochs without validation improvement (0: never)
    eval_batch_size: int = 256
    augment: str = "none"  # "none" | "jitter" (amplitude scaling, noise, circular time shift)
    max_steps: int = 0  # optimizer steps per epoch at most (0: every batch); for smoke tests and benchmarks
    #: Before each validation pass, recompute batch-norm running statistics from training windows
    #: (:func:`recalibrate_batch_norm`), so epoch selection sees the population statistics and not a
    #: lagging moving average (EEGNet's momentum of 0.01 lags for hundreds of steps).
    bn_recalibrate: bool = True

    def as_dict(self) -> dict[str, Any]:
        """The recipe as a dict; ``max_steps`` only when set, so recipes without it keep their keys."""
        d = asdict(self)
        if not self.max_steps:
            d.pop("max_steps")
        return d


class Trainable(Protocol):
    """What :func:`fit` trains: a Distiller, or the teacher fine-tuning wrapper."""

    def losses(self, x: torch.Tensor, y: torch.Tensor, teacher: TeacherBatch) -> dict[str, torch.Tensor]: ...

    def predict(self, x: torch.Tensor) -> torch.Tensor: ...


class TeacherSource(Protocol):
    """Teacher outputs for rows ``idx`` of the training split whose (possibly augmented) inputs are ``x``.

    Cached sources read rows by index; an online source runs the frozen teacher on ``x``,
    which is what augmentation needs (cached outputs of the clean inputs would be wrong).
    """

    def batch(self, idx: np.ndarray, x: torch.Tensor | None = None) -> TeacherBatch: ...


class NoTeacher:
    def batch(self, idx: np.ndarray, x: torch.Tensor | None = None) -> TeacherBatch:
        return TeacherBatch()


AUGMENTATIONS = ("none", "jitter")


def augment_batch(x: torch.Tensor, kind: str, gen: torch.Generator) -> torch.Tensor:
    """Label-preserving input augmentation (changes inputs, so teacher outputs must be recomputed)."""
    if kind == "none":
        return x
    if kind != "jitter":
        raise ValueError(f"unknown augmentation {kind!r}; expected one of {AUGMENTATIONS}")
    b = x.shape[0]
    scale = 1.0 + 0.1 * torch.randn(b, 1, 1, generator=gen)
    noise = 0.05 * x.std() * torch.randn(x.shape, generator=gen)
    shift = int(torch.randint(0, max(1, x.shape[-1] // 20), (1,), generator=gen))
    return torch.roll(x * scale + noise, shifts=shift, dims=-1)


@dataclass
class FitResult:
    best_epoch: int
    best_val: dict[str, float]
    history: list[dict[str, Any]] = field(default_factory=list)
    train_time_s: float = 0.0
    stopped_early: bool = False


class NonFiniteLoss(FloatingPointError):
    """A loss term became NaN or infinite: the cell is recorded as failed."""


ProgressFn = Callable[[dict[str, Any]], None]


def fit(
    model: nn.Module,
    X_train: np.ndarray | WindowRows,
    y_train: np.ndarray,
    X_val: np.ndarray | WindowRows,
    y_val: np.ndarray,
    n_classes: int,
    cfg: TrainConfig,
    *,
    seed: int,
    teacher: TeacherSource | None = None,
    progress: ProgressFn | None = None,
    params: list[nn.Parameter] | None = None,
    epoch_windows: int | None = None,
) -> FitResult:
    """Train ``model`` (a :class:`Trainable` module) and restore its best-validation state.

    ``epoch_windows``: windows per epoch, drawn afresh each epoch from all of ``X_train`` (default:
    every window once). A distiller that adds the unlabelled transfer split to the labelled train split
    keeps the train split's epoch size, so it takes as many optimizer steps as the student alone.
    """
    teacher = teacher or NoTeacher()
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    params = [p for p in (params if params is not None else model.parameters()) if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay) if params else None
    n_rows = len(X_train)
    n = n_rows if epoch_windows is None else max(1, min(int(epoch_windows), n_rows))
    steps_per_epoch = max(1, math.ceil(n / cfg.batch_size))
    if cfg.max_steps:
        steps_per_epoch = min(steps_per_epoch, cfg.max_steps)
    total_steps = steps_per_epoch * cfg.epochs
    warmup = steps_per_epoch * cfg.warmup_epochs
    sched = None
    if opt is not None:
        def lr_at(step: int) -> float:
            if step < warmup:
                return (step + 1) / warmup
            if cfg.schedule == "cosine":
                t = (step - warmup) / max(1, total_steps - warmup)
                return 0.5 * (1 + math.cos(math.pi * min(1.0, t)))
            return 1.0

        sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_at)

    device = module_device(model)
    yt = torch.from_numpy(np.asarray(y_train, dtype=np.int64))
    key = KEY_METRIC[task_of(n_classes)]
    best: dict[str, float] | None = None
    best_state: dict[str, torch.Tensor] | None = None
    best_epoch = -1
    history: list[dict[str, Any]] = []
    since_best = 0
    stopped_early = False
    t0 = time.perf_counter()
    for epoch in range(cfg.epochs):
        model.train()
        order = torch.randperm(n_rows, generator=gen).numpy()[:n]
        sums: dict[str, float] = {}
        seen = 0
        for step, start in enumerate(range(0, n, cfg.batch_size)):
            if cfg.max_steps and step >= cfg.max_steps:
                break
            idx = np.sort(order[start:start + cfg.batch_size])  # sorted: sequential reads from memmaps
            if len(idx) < 2 and n >= 2:
                continue  # a batch of one breaks batch norm and pairwise losses
            x = augment_batch(torch.from_numpy(read_rows(X_train, idx)), cfg.augment, gen).to(device, non_blocking=True)
            y = yt[idx].to(device, non_blocking=True)
            terms = model.losses(x, y, teacher.batch(idx, x).to(device))
            loss = sum(terms.values())
            if not torch.isfinite(loss):
                bad = [k for k, v in terms.items() if not torch.isfinite(v)]
                raise NonFiniteLoss(f"non-finite loss term(s) {bad} at epoch {epoch + 1}")
            if opt is not None:
                opt.zero_grad(set_to_none=True)
                loss.backward()
                if cfg.grad_clip:
                    torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip)
                opt.step()
                sched.step()
            for k, v in terms.items():
                sums[k] = sums.get(k, 0.0) + float(v.detach()) * len(idx)
            seen += len(idx)
        train_terms = {k: v / max(1, seen) for k, v in sums.items()}
        if cfg.bn_recalibrate:
            recalibrate_batch_norm(model, X_train, cfg.eval_batch_size, gen)
        val = evaluate(model, X_val, y_val, n_classes, cfg.eval_batch_size)
        selectable = getattr(model, "selectable_epoch", None)
        # a warm-up stage's epochs are never restored; the last epoch is, if nothing else qualified
        selectable = not callable(selectable) or selectable() or (best is None and epoch == cfg.epochs - 1)
        hook = getattr(model, "on_epoch_end", None)
        if callable(hook):
            hook(epoch)
        improved = selectable and (best is None or better(val[key], best[key], key))
        if improved:
            best, best_epoch, since_best = val, epoch, 0
            best_state = copy.deepcopy(model.state_dict())
        elif selectable:
            since_best += 1
        row = {"epoch": epoch + 1, "loss": train_terms, "val": val, "best": improved}
        history.append(row)
        if progress is not None:
            progress({"event": "epoch", "epoch": epoch + 1, "epochs": cfg.epochs, "terms": train_terms,
                      "val_key": val[key], "key_metric": key})
        if cfg.patience and since_best >= cfg.patience:
            stopped_early = True
            break
    if best_state is not None:
        model.load_state_dict(best_state)
    return FitResult(best_epoch + 1, best or {}, history, time.perf_counter() - t0, stopped_early)


#: Training windows :func:`recalibrate_batch_norm` reads at most (a seeded random subset beyond that).
BN_RECALIBRATION_WINDOWS = 2048


@torch.no_grad()
def recalibrate_batch_norm(model: nn.Module, X: np.ndarray | WindowRows, batch_size: int,
                           gen: torch.Generator) -> bool:
    """Replace every batch-norm layer's running statistics by their average over training windows.

    Only the batch-norm layers run in training mode (dropout stays off), on clean inputs through
    ``model.predict`` (the deployed network); the statistics are the cumulative average over the
    batches (``momentum=None``), i.e. the training population's, which is what evaluation mode
    assumes. Returns whether the model had any batch norm (nothing runs otherwise).
    """
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats]
    if not norms:
        return False
    n = len(X)
    idx = np.arange(n)
    if n > BN_RECALIBRATION_WINDOWS:
        idx = np.sort(torch.randperm(n, generator=gen)[:BN_RECALIBRATION_WINDOWS].numpy())
    was_training = model.training
    momenta = [m.momentum for m in norms]
    model.eval()
    for m in norms:
        m.reset_running_stats()
        m.momentum = None
        m.train()
    fn = getattr(model, "predict", model)
    device = module_device(model)
    try:
        for start in range(0, len(idx), batch_size):
            rows = idx[start:start + batch_size]
            if len(rows) < 2:
                continue  # batch norm needs two windows; the cumulative average skips this remainder
            fn(torch.from_numpy(read_rows(X, rows)).to(device, non_blocking=True))
    finally:
        for m, momentum in zip(norms, momenta):
            m.momentum = momentum
        model.train(was_training)
    return True


@torch.inference_mode()
def predict_logits(model: nn.Module, X: np.ndarray | WindowRows, batch_size: int = 256) -> np.ndarray:
    """Logits of ``model.predict`` (or ``model(x)``) over an array, in eval mode."""
    was_training = model.training
    model.eval()
    fn = getattr(model, "predict", model)
    device = module_device(model)
    out = []
    for start in range(0, len(X), batch_size):
        x = torch.from_numpy(read_rows(X, slice(start, start + batch_size))).to(device, non_blocking=True)
        out.append(fn(x).float().cpu())
    model.train(was_training)
    if not out:
        return np.zeros((0, 0), dtype=np.float32)
    return torch.cat(out).numpy()


def evaluate(model: nn.Module, X: np.ndarray | WindowRows, y: np.ndarray, n_classes: int, batch_size: int = 256) -> dict[str, float]:
    """Task metrics of ``model`` on ``(X, y)``."""
    logits = predict_logits(model, X, batch_size)
    return compute_metrics(np.asarray(y), logits, n_classes)


def test_scores(model: nn.Module, windows: EEGWindows, batch_size: int = 256) -> tuple[dict[str, float], dict[str, Any]]:
    """One pass over the test split: its metrics over all test windows, and per test subject
    (:func:`eegkd_bench.metrics.per_subject_metrics`)."""
    X, y = windows.part("test")
    logits = predict_logits(model, X, batch_size)
    subjects = np.asarray(windows.subjects)[windows.indices("test")]
    return (compute_metrics(y, logits, windows.n_classes),
            per_subject_metrics(y, logits, windows.n_classes, subjects))
