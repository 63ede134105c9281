"""``pkt``: Passalis & Tefas (2018), "Learning Deep Representations with Probabilistic Knowledge Transfer".

Each batch's embeddings define conditional probabilities ``p(j | i)`` through the
cosine-similarity kernel ``K(a, b) = (cos(a, b) + 1) / 2`` normalized per row; the
student minimizes ``KL(P_teacher || P_student)``. As in the authors' reference code the
KL terms are averaged over all ``B^2`` entries (diagonal included), which is why the
weight is large: ``weight = 30000`` is the value of the CRD/RepDistiller benchmark
(Tian et al. 2020) for this exact formulation. Dimensions need not match.

Our reading: teacher embedding = last layer averaged over channels and patches;
student embedding = ``ModelOutput.embedding``.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from eegkd_bench import hookimpl
from eegkd_bench.api import TRANSFER_OPTION, Option
from eegkd_plugins.distillers.common import EmbeddingRelationDistiller


def cosine_conditional_probabilities(e: torch.Tensor) -> torch.Tensor:
    """Row-normalized cosine kernel ``(cos + 1) / 2`` of the rows of ``e`` ``(B, E)``."""
    u = F.normalize(e, p=2, dim=1)
    k = (u @ u.t() + 1.0) / 2.0
    return k / k.sum(dim=1, keepdim=True)


def pkt_loss(student: torch.Tensor, teacher: torch.Tensor, eps: float = 1e-7) -> torch.Tensor:
    """``mean_ij p_t log((p_t + eps) / (p_s + eps))`` over the conditional probability matrices."""
    with torch.no_grad():
        p_t = cosine_conditional_probabilities(teacher.detach().float())
    p_s = cosine_conditional_probabilities(student)
    return (p_t * torch.log((p_t + eps) / (p_s + eps))).mean()


class PKT(EmbeddingRelationDistiller):
    """Probabilistic knowledge transfer on embeddings, plus CE."""

    name = "pkt"
    defaults = {"weight": Option(30000.0, "weight of the probability-kernel term", min=0), "transfer": TRANSFER_OPTION}
    weights = ("weight",)

    def relation_terms(self, s: torch.Tensor, t: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"pkt": self.hparams["weight"] * pkt_loss(s, t)}


@hookimpl
def eegkd_register_distillers(register) -> None:
    register("pkt", PKT, description="Passalis & Tefas 2018: match cosine-kernel probability distributions")
