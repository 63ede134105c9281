"""Task metrics of a classifier's logits, as the EEG foundation-model papers report them.

Multiclass tasks report balanced accuracy, Cohen's kappa and weighted F1;
binary tasks report balanced accuracy, AUROC and the area under the
precision-recall curve. Plain accuracy is added to both. These are the metric
sets of the CBraMod downstream evaluator (``finetune_evaluator.py``), computed
with scikit-learn.

A value that is undefined on the given labels (AUROC with one class present,
kappa when both label vectors are one and the same constant, anything on zero
windows) is ``nan``, never ``0``: a 0 would rank as a real, terrible score.
"""
from __future__ import annotations

import difflib
import math
import warnings
from typing import Any, Literal

import numpy as np
from sklearn.metrics import (
    accuracy_score,
    auc,
    balanced_accuracy_score,
    cohen_kappa_score,
    f1_score,
    precision_recall_curve,
    roc_auc_score,
)

from eegkd_bench.errors import UserError

Task = Literal["binary", "multiclass"]

#: Validation metric used for model selection (best epoch). CBraMod's
#: ``finetune_trainer.py`` keeps the epoch with the best validation Cohen's kappa
#: on multiclass tasks and the best validation AUROC on binary ones; both are
#: chance-corrected or threshold-free, so class imbalance does not pick the epoch.
KEY_METRIC: dict[str, str] = {"binary": "auroc", "multiclass": "cohen_kappa"}

#: The metric shown first in leaderboards: defined for every task and robust to imbalance.
HEADLINE = "balanced_accuracy"

METRICS: dict[str, tuple[str, ...]] = {
    "binary": ("balanced_accuracy", "auroc", "auc_pr", "accuracy"),
    "multiclass": ("balanced_accuracy", "cohen_kappa", "f1_weighted", "accuracy"),
}

#: Metrics where smaller is better; every task metric above is larger-is-better.
LOWER_IS_BETTER = frozenset({"loss"})
KNOWN_METRICS = frozenset(m for names in METRICS.values() for m in names) | LOWER_IS_BETTER

# sklearn warns (UserWarning, UndefinedMetricWarning) on exactly the degenerate cases we map to nan
_SKLEARN_MODULE = r"sklearn(\..*)?"  # a regex on the warning's module


def task_of(n_classes: int) -> Task:
    """``"binary"`` for two classes, ``"multiclass"`` for more."""
    if isinstance(n_classes, bool) or not isinstance(n_classes, (int, np.integer)) or n_classes < 2:
        raise UserError(f"n_classes={n_classes!r} is not a valid task size; expected an integer >= 2 "
                        "(binary tasks use two logits)")
    return "binary" if int(n_classes) == 2 else "multiclass"


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax in float64, stable for large logits."""
    z = np.asarray(logits, dtype=np.float64)
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def compute_metrics(y_true: Any, logits: Any, n_classes: int) -> dict[str, float]:
    """Task metrics of ``logits`` (n, n_classes) against integer labels ``y_true`` (n,)."""
    task = task_of(n_classes)
    y, z = _check_inputs(y_true, logits, n_classes)
    if len(y) == 0:
        return {name: math.nan for name in METRICS[task]}
    pred = z.argmax(axis=1)
    present = np.unique(y)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", module=_SKLEARN_MODULE)
        out = {
            "balanced_accuracy": float(balanced_accuracy_score(y, pred)),
            "accuracy": float(accuracy_score(y, pred)),
        }
        if task == "multiclass":
            # kappa is undefined (0/0) only when expected agreement is 1: one shared constant label
            same_constant = len(present) == 1 and np.all(pred == present[0])
            out["cohen_kappa"] = math.nan if same_constant else float(cohen_kappa_score(y, pred))
            # F1 of a class that is present but never predicted is 0 (2tp/(2tp+fp+fn)); absent
            # classes carry zero weight, so zero_division never changes the weighted mean here
            out["f1_weighted"] = float(f1_score(y, pred, labels=list(range(n_classes)),
                                                average="weighted", zero_division=0))
        else:
            p1 = softmax(z)[:, 1]
            both = len(present) == 2
            out["auroc"] = float(roc_auc_score(y, p1)) if both else math.nan
            out["auc_pr"] = pr_auc(y, p1) if 1 in present else math.nan
    return {name: _nan_if_not_finite(out[name]) for name in METRICS[task]}


def per_subject_metrics(y_true: Any, logits: Any, n_classes: int, subjects: Any) -> dict[str, list[Any]]:
    """The task metrics of each subject's windows: ``{"subjects": [...], "n_windows": [...], metric: [...]}``.

    Subjects are listed in sorted order of their ids (as text); each metric list holds one
    value per subject, ``None`` where the metric is undefined on that subject's windows
    (AUROC of a subject whose windows are all of one class), so the dict is valid JSON.
    """
    y, z = _check_inputs(y_true, logits, n_classes)
    ids = np.asarray([str(s) for s in np.asarray(subjects).reshape(-1)])
    if len(ids) != len(y):
        raise UserError(f"{len(ids)} subject ids but {len(y)} labels; pass one subject id per window")
    out: dict[str, list[Any]] = {"subjects": [], "n_windows": []}
    out.update({name: [] for name in METRICS[task_of(n_classes)]})
    for sid in sorted(set(ids.tolist())):
        rows = ids == sid
        out["subjects"].append(sid)
        out["n_windows"].append(int(rows.sum()))
        for name, value in compute_metrics(y[rows], z[rows], n_classes).items():
            out[name].append(None if math.isnan(value) else float(value))
    return out


def pr_auc(y_true: np.ndarray, score: np.ndarray) -> float:
    """Area under the precision-recall curve by the trapezoidal rule (CBraMod's ``pr_auc``).

    CBraMod computes ``auc(recall, precision)`` over ``precision_recall_curve``;
    we keep that definition (not ``average_precision_score``, which is a step-wise
    sum) so our binary numbers are comparable with the published ones.
    """
    precision, recall, _ = precision_recall_curve(y_true, score, pos_label=1)
    return float(auc(recall, precision))


def better(a: float, b: float, metric: str) -> bool:
    """Whether value ``a`` of ``metric`` is strictly better than ``b``; ``nan`` ranks worst."""
    if metric not in KNOWN_METRICS:
        known = sorted(KNOWN_METRICS)
        close = difflib.get_close_matches(metric, known, n=1) or [k for k in known if metric.lower() in k]
        hint = f"; did you mean {close[0]!r}?" if close else ";"
        raise UserError(f"unknown metric {metric!r}{hint} expected one of {known}")
    a_nan, b_nan = _is_nan(a), _is_nan(b)
    if a_nan:
        return False
    if b_nan:
        return True
    return a < b if metric in LOWER_IS_BETTER else a > b


def _check_inputs(y_true: Any, logits: Any, n_classes: int) -> tuple[np.ndarray, np.ndarray]:
    if hasattr(logits, "detach"):  # a torch tensor; avoid importing torch for this
        logits = logits.detach().float().cpu().numpy()
    if hasattr(y_true, "detach"):
        y_true = y_true.detach().cpu().numpy()
    z = np.asarray(logits, dtype=np.float64)
    y = np.asarray(y_true).reshape(-1)
    if z.ndim != 2 or z.shape[1] != n_classes:
        raise UserError(f"logits have shape {tuple(z.shape)} but a {n_classes}-class task needs (n, {n_classes}); "
                        "the model's classifier must output one logit per class")
    if len(y) != len(z):
        raise UserError(f"{len(y)} labels but {len(z)} rows of logits; pass one label per window")
    if len(y) and not np.issubdtype(y.dtype, np.integer):
        if not np.all(np.equal(np.mod(y, 1), 0)):
            raise UserError(f"labels must be class indices, got dtype {y.dtype} with non-integer values")
        y = y.astype(np.int64)
    if len(y) and (y.min() < 0 or y.max() >= n_classes):
        raise UserError(f"labels span [{y.min()}, {y.max()}] but a {n_classes}-class task needs 0..{n_classes - 1}")
    if not np.all(np.isfinite(z)):
        raise UserError(f"{int((~np.isfinite(z)).sum())} logits are nan or inf; the model diverged "
                        "(lower the learning rate or check the input scaling)")
    return y.astype(np.int64), z


def _is_nan(v: Any) -> bool:
    return v is None or (isinstance(v, (float, np.floating)) and math.isnan(v))


def _nan_if_not_finite(v: float) -> float:
    return v if math.isfinite(v) else math.nan


__all__ = ["HEADLINE", "KEY_METRIC", "METRICS", "better", "compute_metrics", "per_subject_metrics", "pr_auc",
           "softmax", "task_of"]
