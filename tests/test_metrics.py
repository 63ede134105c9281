"""Task metrics against hand-computed values, and the undefined (nan) cases."""
from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch

from eegkd_bench.api import UserError
from eegkd_bench.metrics import HEADLINE, KEY_METRIC, METRICS, better, compute_metrics, task_of


def logits_for(pred: list[int], n_classes: int) -> np.ndarray:
    """Logits whose argmax is ``pred``."""
    z = np.zeros((len(pred), n_classes))
    z[np.arange(len(pred)), pred] = 3.0
    return z


def test_multiclass_hand_computed() -> None:
    y = [0, 0, 0, 1, 1, 2]
    pred = [0, 0, 1, 1, 2, 2]
    m = compute_metrics(y, logits_for(pred, 3), 3)
    assert set(m) == set(METRICS["multiclass"])
    # 4 of 6 right (indices 0, 1, 3, 5)
    assert m["accuracy"] == pytest.approx(4 / 6)
    # recalls: class 0 2/3, class 1 1/2, class 2 1/1 -> mean 13/18
    assert m["balanced_accuracy"] == pytest.approx((2 / 3 + 1 / 2 + 1) / 3) == 13 / 18
    # p_o = 2/3; true marginals (3, 2, 1)/6, predicted (2, 2, 2)/6 -> p_e = (6 + 4 + 2)/36 = 1/3
    # kappa = (2/3 - 1/3) / (1 - 1/3) = 1/2
    assert m["cohen_kappa"] == pytest.approx(0.5)
    # F1 = 2tp / (2tp + fp + fn): class 0: 4/5, class 1: 2/4, class 2: 2/3; support weights 3, 2, 1
    assert m["f1_weighted"] == pytest.approx((3 * 4 / 5 + 2 * 1 / 2 + 1 * 2 / 3) / 6) == pytest.approx(61 / 90)


def test_binary_hand_computed() -> None:
    y = [0, 0, 1, 1]
    s = np.array([-2.0, 1.0, -1.0, 2.0])  # p(class 1) = sigmoid(s): 0.12, 0.73, 0.27, 0.88
    logits = np.stack([np.zeros(4), s], axis=1)
    m = compute_metrics(y, logits, 2)
    assert set(m) == set(METRICS["binary"])
    # predictions (p > 0.5) are 0, 1, 0, 1: one right per class
    assert m["accuracy"] == pytest.approx(0.5)
    assert m["balanced_accuracy"] == pytest.approx(0.5)
    # positive/negative pairs ranked right: 0.27 > 0.12, 0.88 > 0.12, 0.88 > 0.73 -> 3 of 4
    assert m["auroc"] == pytest.approx(0.75)
    # PR points by threshold: 0.88 (R .5, P 1), 0.73 (R .5, P .5), 0.27 (R 1, P 2/3), plus (R 0, P 1)
    # trapezoids: 0.5 * (1 + 1)/2 + 0 + 0.5 * (1/2 + 2/3)/2 = 1/2 + 7/24 = 19/24
    # (average precision would give 0.5 * 1 + 0.5 * 2/3 = 5/6; CBraMod reports the trapezoid)
    assert m["auc_pr"] == pytest.approx(19 / 24)


def test_binary_uses_softmax_probability_of_class_one() -> None:
    # only the logit difference matters: shifting both logits changes nothing
    y = [0, 1, 1, 0, 1]
    z = np.random.default_rng(0).normal(size=(5, 2))
    assert compute_metrics(y, z, 2) == compute_metrics(y, z + 100.0, 2)
    assert compute_metrics(y, torch.tensor(z), 2) == compute_metrics(np.array(y), z, 2)


def _no_warnings(fn):  # type: ignore[no-untyped-def]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = fn()
    assert not caught, [str(w.message) for w in caught]
    return out


def test_undefined_values_are_nan_without_warnings() -> None:
    # one class present: AUROC undefined, AUC-PR defined (precision is 1 everywhere)
    m = _no_warnings(lambda: compute_metrics([1, 1, 1], logits_for([1, 0, 1], 2), 2))
    assert math.isnan(m["auroc"]) and m["auc_pr"] == pytest.approx(1.0)
    assert m["balanced_accuracy"] == pytest.approx(2 / 3)
    # no positives: AUC-PR undefined too (sklearn would say 0)
    m = _no_warnings(lambda: compute_metrics([0, 0], logits_for([1, 0], 2), 2))
    assert math.isnan(m["auroc"]) and math.isnan(m["auc_pr"])
    # kappa: labels and predictions one and the same constant -> p_e = 1, 0/0
    m = _no_warnings(lambda: compute_metrics([2, 2, 2], logits_for([2, 2, 2], 3), 3))
    assert math.isnan(m["cohen_kappa"]) and m["balanced_accuracy"] == 1.0 and m["f1_weighted"] == 1.0
    # one true class but varied predictions: kappa is defined and equals 0 (p_o = p_e = 1/3)
    m = _no_warnings(lambda: compute_metrics([0, 0, 0], logits_for([0, 1, 2], 3), 3))
    assert m["cohen_kappa"] == pytest.approx(0.0)
    # a predicted class that never occurs does not break balanced accuracy: recalls 1/2 and 1 -> 3/4
    m = _no_warnings(lambda: compute_metrics([0, 0, 1], logits_for([0, 2, 1], 3), 3))
    assert m["balanced_accuracy"] == pytest.approx(0.75)
    # no windows at all
    m = _no_warnings(lambda: compute_metrics(np.zeros(0, int), np.zeros((0, 4)), 4))
    assert all(math.isnan(v) for v in m.values()) and set(m) == set(METRICS["multiclass"])


@pytest.mark.parametrize("y, logits, n, message", [
    ([0, 1], np.zeros((2, 3)), 4, r"shape \(2, 3\).*4-class"),
    ([0, 1, 1], np.zeros((2, 2)), 2, r"3 labels but 2 rows"),
    ([0, 5], np.zeros((2, 3)), 3, r"\[0, 5\].*0\.\.2"),
    ([0, 1], np.array([[0.0, np.nan], [1.0, 0.0]]), 2, r"1 logits are nan"),
    ([0, 1], np.zeros((2, 1)), 1, r"n_classes=1"),
])
def test_bad_inputs_raise_one_line_user_error(y, logits, n, message) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(UserError, match=message) as info:
        compute_metrics(y, logits, n)
    assert "\n" not in str(info.value)


def test_key_metric_and_task() -> None:
    assert task_of(2) == "binary" and task_of(4) == "multiclass"
    assert KEY_METRIC[task_of(2)] in METRICS["binary"]
    assert KEY_METRIC[task_of(5)] in METRICS["multiclass"]
    assert all(HEADLINE in names for names in METRICS.values())


def test_better_treats_nan_as_worst() -> None:
    nan = float("nan")
    assert better(0.6, 0.5, "cohen_kappa") and not better(0.5, 0.6, "cohen_kappa")
    assert not better(0.5, 0.5, "auroc")  # ties keep the earlier epoch
    assert better(0.0, nan, "auroc") and better(-0.3, nan, "cohen_kappa")
    assert not better(nan, 0.1, "auroc") and not better(nan, nan, "auroc")
    assert better(0.1, 0.2, "loss")
    with pytest.raises(UserError, match=r"unknown metric 'kappa'; did you mean 'cohen_kappa'"):
        better(1.0, 0.0, "kappa")


def test_per_subject_metrics_by_hand() -> None:
    from eegkd_bench.metrics import per_subject_metrics

    # subject "a": labels 0, 1, 1 with class-1 logits -1, 2, -2; subject "b": labels 0, 0 (one class)
    y = [0, 1, 0, 1, 0]
    s = np.array([-1.0, 2.0, -1.0, -2.0, 1.0])
    z = np.stack([np.zeros_like(s), s], axis=1)
    out = per_subject_metrics(y, z, 2, ["a", "a", "b", "a", "b"])
    assert out["subjects"] == ["a", "b"] and out["n_windows"] == [3, 2]
    # a: predictions 0, 1, 0 -> accuracy 2/3; recalls 1/1 and 1/2 -> balanced 3/4; AUROC: of the
    # (positive, negative) pairs (2, -1) and (-2, -1) one is ordered right -> 1/2
    assert out["accuracy"][0] == pytest.approx(2 / 3) and out["balanced_accuracy"][0] == pytest.approx(0.75)
    assert out["auroc"][0] == pytest.approx(0.5)
    # b: one class present: AUROC and AUC-PR undefined (null), accuracy 1/2
    assert out["auroc"][1] is None and out["auc_pr"][1] is None and out["accuracy"][1] == pytest.approx(0.5)
    with pytest.raises(UserError, match="one subject id per window"):
        per_subject_metrics(y, z, 2, ["a", "b"])
