"""``rkd``: Park, Kim, Lu & Cho (2019), "Relational Knowledge Distillation".

The student's embeddings reproduce the *relations* among the teacher's embeddings
in a batch: distance-wise (pairwise Euclidean distances, each set normalized by its
mean non-zero distance, compared with the Huber loss) and angle-wise (cosines of
the angles formed by every triplet, Huber loss), added to the label cross-entropy.
Dimensions need not match, so no projector is learned.

Weights: the paper's are distance 25, angle 50 (registered as ``rkd-paper``). With
EEGNet they swamp the cross-entropy: on sim-mi (the ``sim`` preset's recipe, seeds
0-2) EEGNet scores 0.558 +- 0.051 with them against 0.760 +- 0.016 trained alone, while
distance 1, angle 2 (the paper's ratio) gives 0.757 +- 0.007; ShallowConvNet scores
0.715 with either. Our default is therefore 1 and 2 (docs/distillers.md).

Our reading: the teacher embedding is its last layer averaged over channels and
patches ``(B, D)`` (the FM teachers' own heads flatten instead, which is far larger);
the student embedding is ``ModelOutput.embedding`` (the vector its classifier sees).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from eegkd_bench import hookimpl
from eegkd_bench.api import TRANSFER_OPTION, Option
from eegkd_plugins.distillers.common import EmbeddingRelationDistiller

_EPS = 1e-12


def pairwise_distances(e: torch.Tensor) -> torch.Tensor:
    """Euclidean distances between the rows of ``e`` ``(B, E)``; exact zeros on the diagonal, finite gradients."""
    sq = e.pow(2).sum(dim=1)
    d2 = (sq.unsqueeze(0) + sq.unsqueeze(1) - 2.0 * e @ e.t()).clamp_min(_EPS)
    d = d2.sqrt()
    return d * (1.0 - torch.eye(len(e), device=e.device, dtype=e.dtype))


def _mean_normalized(d: torch.Tensor) -> torch.Tensor:
    positive = d[d > 0]
    scale = positive.mean() if positive.numel() else d.new_tensor(1.0)
    return d / scale


def rkd_distance_loss(student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
    """Huber loss between mean-normalized pairwise distance matrices (mean over all B^2 entries)."""
    with torch.no_grad():
        t = _mean_normalized(pairwise_distances(teacher.detach().float()))
    s = _mean_normalized(pairwise_distances(student))
    return F.smooth_l1_loss(s, t)


def _triplet_cosines(e: torch.Tensor) -> torch.Tensor:
    diff = F.normalize(e.unsqueeze(0) - e.unsqueeze(1), p=2, dim=2)  # diff[a, b] = e_b - e_a, unit length
    return torch.bmm(diff, diff.transpose(1, 2)).reshape(-1)  # cos of the angle at vertex a between b and c


def rkd_angle_loss(student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
    """Huber loss between the cosines of all triplet angles (mean over all B^3 entries)."""
    with torch.no_grad():
        t = _triplet_cosines(teacher.detach().float())
    return F.smooth_l1_loss(_triplet_cosines(student), t)


class RKD(EmbeddingRelationDistiller):
    """Distance- and angle-wise relational distillation on embeddings, plus CE."""

    name = "rkd"
    defaults = {"distance_weight": Option(1.0, "weight of the distance-wise relation term (paper: 25)", min=0),
                "angle_weight": Option(2.0, "weight of the angle-wise relation term (paper: 50)", min=0),
                "transfer": TRANSFER_OPTION}
    weights = ("distance_weight", "angle_weight")

    def relation_terms(self, s: torch.Tensor, t: torch.Tensor) -> dict[str, torch.Tensor]:
        return {
            "rkd_distance": self.hparams["distance_weight"] * rkd_distance_loss(s, t),
            "rkd_angle": self.hparams["angle_weight"] * rkd_angle_loss(s, t),
        }


@hookimpl
def eegkd_register_distillers(register) -> None:
    register("rkd", RKD, description="Park et al. 2019: distance- and angle-wise relations of embeddings "
                                     "(weights 1 and 2, the paper's ratio)")
    register("rkd-paper", base="rkd", options={"distance_weight": 25.0, "angle_weight": 50.0},
             description="RKD with the paper's weights (distance 25, angle 50)")
