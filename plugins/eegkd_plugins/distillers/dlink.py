"""``dlink``: Distilling Layer-wise and Dominant Knowledge from EEG foundation models (arXiv 2604.15016).

The paper's full text is not public to us; this is *our reading* of its abstract
(see docs/distillers.md). Three parts, each switchable:

1. **router** (:mod:`.router`, training-only): per-input weights ``alpha`` over the
   teacher layers give the target ``H~ = sum_l alpha_l H'_l``. Default schedule
   ``router_mode="two-stage"``: router + probe are fitted on cached per-layer summaries
   ``(N, L, D)`` in :meth:`DLink.on_train_start`, then frozen; stage 2 then needs only the
   routed target ``H~`` per window (:meth:`DLink.teacher_target`), which the runner caches
   instead of the ``L`` layers. ``"joint"`` trains them inside the
   loop instead, from the probe CE only: ``alpha`` is detached in the mimic target,
   otherwise the student's loss would teach the router to pick the layer that is
   easiest to imitate rather than the task-relevant one (our choice).
2. **EEG MiC student** (:mod:`.mic`, deployed): the student backbone's final map is
   projected into the teacher layout (``Pi``, mimic loss vs ``H~``), compressed and
   classified by one small linear layer.
3. **spectral term** (:mod:`.spectral`): log-magnitude L1 + magnitude-weighted phase
   ``1 - cos`` of the FFT along the patch axis of ``Pi(F_s)`` and ``H~``, zero-padded
   to ``spec_nfft`` points.

Loss: ``CE + lambda_feat * L_mimic + lambda_spec * L_spec (+ kd_weight * KD)``
(``+ router_weight * probe CE + router_balance * balance`` in joint mode).
Registered variants of ``dlink`` (options only, no code): the ablations
``dlink-norouter`` (last teacher layer only), ``dlink-nospec`` (``lambda_spec = 0``),
``dlink-nomic`` (plain student; ``Pi`` is then a training-only adapter and the student's
own head classifies), and ``mic-ce``, the size-matched control: the MiC student trained
on the labels only (every distillation weight 0, so it reads no teacher output).
Default weights (``lambda_feat = 1``, ``lambda_spec = 0.1``, ``tau = 1``, all layers)
are ours, not the paper's.
"""
from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from eegkd_bench import hookimpl
from eegkd_bench.api import (
    TRANSFER_OPTION,
    UNLABELLED,
    Distiller,
    EEGModel,
    InputSpec,
    Option,
    TeacherBatch,
    TeacherInfo,
    TeacherNeeds,
    TeacherRows,
    UserError,
    summary_name,
)
from eegkd_bench.adapters import as_float, channels_time, check_student_features, require_teacher, teacher_layer_shape
from eegkd_plugins.distillers.common import cross_entropy
from eegkd_plugins.distillers.kd import kd_loss, teacher_logits
from eegkd_plugins.distillers.mic import MiCStudent, TeacherLayoutProjector
from eegkd_plugins.distillers.router import (
    LayerRouter,
    Probe,
    balance_loss,
    fit_router,
    layer_summaries,
    routed_target,
    router_objective,
    summary_stats,
)
from eegkd_plugins.distillers.spectral import spectral_loss

PATCH_AXIS = 2  # of the teacher layout (B, C, P, D)


def mimic_loss(projected: torch.Tensor, target: torch.Tensor, kind: str = "mse") -> torch.Tensor:
    """``MSE`` or ``1 - cosine`` (over the width axis, averaged over tokens) between ``Pi(F_s)`` and ``H~``."""
    target = target.detach()
    if kind == "mse":
        return F.mse_loss(projected, target)
    return (1.0 - F.cosine_similarity(projected, target, dim=-1, eps=1e-8)).mean()


class DLink(Distiller):
    """Router-weighted layer target + project-then-compress student + spectral alignment."""

    name = "dlink"
    needs_student_features = True
    teacher_warmup = True  # on_train_start fits the router on every training window's layer summaries
    defaults = {
        "transfer": TRANSFER_OPTION,
        "use_router": Option(True, "mix every teacher layer with the router (false: the last layer only)"),
        "use_mic": Option(True, "deploy the MiC student (false: the plain student; Pi is training-only)"),
        "lambda_feat": Option(1.0, "weight of the mimic term", min=0),
        "lambda_spec": Option(0.1, "weight of the spectral term", min=0),
        "phase_weight": Option(1.0, "weight of the phase part of the spectral term", min=0),
        "spec_nfft": Option(8, "FFT points along the patch axis (zero-padded)", min=1),
        "mimic_loss": Option("mse", "distance of the mimic term", choices=("mse", "cosine")),
        "normalize_layers": Option(True, "layer-normalise the teacher layers before mixing"),
        "router_mode": Option("two-stage", "fit the router before training, or jointly with the student",
                              choices=("two-stage", "joint")),
        "router_tau": Option(1.0, "softmax temperature of the router", min=0, exclusive_min=True),
        "router_top_k": Option(0, "keep the k largest layer weights (0: all layers)", min=0),
        "router_hidden": Option(64, "hidden width of the router MLP", min=1),
        "router_epochs": Option(30, "epochs of the router stage (two-stage)", min=0),
        "router_lr": Option(1e-3, "learning rate of the router stage", min=0, exclusive_min=True),
        "router_batch": Option(256, "batch size of the router stage", min=1),
        "router_balance": Option(0.01, "weight of the layer-balance penalty", min=0),
        "router_weight": Option(1.0, "weight of the router's probe cross-entropy (joint)", min=0),
        "mic_rank": Option(16, "rank r of the projector Pi", min=1),
        "mic_basis": Option(4, "basis maps K of the projector Pi", min=1),
        "mic_channels": Option(4, "channels c of the compressor", min=1),
        "mic_dim": Option(8, "width d of the compressor", min=1),
        "mic_stride": Option(2, "temporal stride of the compressor over the patches", min=1),
        "kd_weight": Option(0.0, "weight of an added logit KD term (0: none)", min=0),
        "temperature": Option(4.0, "temperature of the KD term", min=0, exclusive_min=True),
    }

    def __init__(self, student: EEGModel, teacher: TeacherInfo | None, spec: InputSpec, **hparams: Any) -> None:
        super().__init__(student, teacher, spec, **hparams)
        info = require_teacher(self.name, teacher)
        hp = self.hparams
        out = check_student_features(self.name, student, spec)
        self.final = student.feature_names[-1]
        in_channels = channels_time(out.features[self.final]).shape[1]

        self.layers = tuple(info.layer_names) if hp["use_router"] else (info.layer_names[-1],)
        shapes = {name: teacher_layer_shape(self.name, info, name) for name in self.layers}
        if len(set(shapes.values())) > 1:
            raise UserError(f"{self.name}: teacher {info.name!r} layers have different shapes "
                            f"{sorted(set(shapes.values()))}; the router mixes layers of one shape, "
                            "use dlink-norouter for this teacher")
        self.layout = shapes[self.layers[-1]]
        n_ch, n_patches, width = self.layout

        if hp["use_mic"]:
            self.mic: MiCStudent | None = MiCStudent(
                student, spec, self.final, in_channels, self.layout, rank=hp["mic_rank"], basis=hp["mic_basis"],
                channels=hp["mic_channels"], width=hp["mic_dim"], stride=hp["mic_stride"])
            self.projector: nn.Module | None = None
        else:
            self.mic = None
            self.projector = TeacherLayoutProjector(in_channels, self.layout, hp["mic_rank"], hp["mic_basis"])

        if hp["use_router"]:
            self.router: LayerRouter | None = LayerRouter(len(self.layers), width, hp["router_hidden"],
                                                          hp["router_tau"], hp["router_top_k"])
            self.probe: Probe | None = Probe(width, spec.n_classes)
        else:
            self.router = self.probe = None
        self.router_fitted = False
        self.router_stats: dict[str, Any] = {}
        self._alpha_sum = torch.zeros(len(self.layers), dtype=torch.float64)
        self._alpha_class: dict[int, torch.Tensor] = {}
        self._alpha_count: dict[int, int] = {}

    # ------------------------------------------------------------------ contract
    @property
    def mimics(self) -> bool:
        """Whether any term reads the teacher layers (``mic-ce`` sets every such weight to 0)."""
        return self.hparams["lambda_feat"] > 0 or self.hparams["lambda_spec"] > 0

    def teacher_needs(self) -> TeacherNeeds:
        logits = self.hparams["kd_weight"] > 0
        if not self.mimics:
            return TeacherNeeds(logits=logits)
        if self.router is not None and self.hparams["router_mode"] == "two-stage":
            # stage 1 reads (N, L, D) summaries; stage 2 one routed target per window
            return TeacherNeeds(logits=logits, layers=self.layers, summaries=self.layers,
                                summary_stats=summary_stats(self.hparams["normalize_layers"]), target=True)
        return TeacherNeeds(logits=logits, layers=self.layers)

    def student_label(self, student: str) -> str:
        return f"{student}+mic" if self.mic is not None else student

    def deployed(self) -> nn.Module:
        return self.mic if self.mic is not None else self.student

    @property
    def router_trainable(self) -> bool:
        return self.router is not None and not self.router_fitted

    def _prepare(self, teacher: TeacherBatch) -> list[torch.Tensor]:
        return [as_float(teacher.features[name]) for name in self.layers]

    def _targets(self, layers: list[torch.Tensor]) -> list[torch.Tensor]:
        if self.hparams["normalize_layers"]:
            return [F.layer_norm(h, h.shape[-1:]) for h in layers]
        return layers

    def losses(self, x: torch.Tensor, y: torch.Tensor, teacher: TeacherBatch) -> dict[str, torch.Tensor]:
        hp = self.hparams
        if self.mic is not None:
            logits, projected = self.mic.forward_mimic(x)
        else:
            logits = (out := self.student.forward_features(x)).logits
            projected = self.projector(out.features[self.final])
        if not self.mimics:
            return {"ce": cross_entropy(logits, y), **self._kd_term(logits, teacher)}
        terms = {"ce": cross_entropy(logits, y)}
        if teacher.target is not None and not self.router_trainable:
            target = as_float(teacher.target)  # precomputed by teacher_target() with the frozen router
        elif self.router is None or not self.router_trainable:
            target = self.teacher_target(teacher)
        else:
            raw = self._prepare(teacher)
            summaries, pooled = layer_summaries(raw, hp["normalize_layers"])
            known = y != UNLABELLED  # the probe is fitted on labelled windows; every window gets a target
            probe_ce, alpha, _ = router_objective(self.router, self.probe, summaries, pooled, y, 0.0)
            terms["router"] = hp["router_weight"] * probe_ce + hp["router_balance"] * balance_loss(alpha)
            if self.training and bool(known.any()):
                self._accumulate(alpha.detach()[known], y[known])
            target = routed_target(self._targets(raw), alpha.detach(), hp["normalize_layers"])
        terms["mimic"] = hp["lambda_feat"] * mimic_loss(projected, target, hp["mimic_loss"])
        if hp["lambda_spec"] > 0:
            mag, phase = spectral_loss(projected, target.detach(), PATCH_AXIS, hp["spec_nfft"], hp["phase_weight"])
            terms["spec"] = hp["lambda_spec"] * (mag + phase)
        return {**terms, **self._kd_term(logits, teacher)}

    def _kd_term(self, logits: torch.Tensor, teacher: TeacherBatch) -> dict[str, torch.Tensor]:
        hp = self.hparams
        if hp["kd_weight"] <= 0:
            return {}
        return {"kd": hp["kd_weight"] * kd_loss(logits, teacher_logits(self.name, teacher), hp["temperature"])}

    @torch.no_grad()
    def teacher_target(self, teacher: TeacherBatch) -> torch.Tensor:
        """``H~`` for a batch of teacher layers: the frozen router's mix (two-stage) or the last layer."""
        raw = self._prepare(teacher)
        targets = self._targets(raw)
        if self.router is None:
            return targets[0]
        alpha = self.router(layer_summaries(raw, self.hparams["normalize_layers"])[0])
        return routed_target(targets, alpha, self.hparams["normalize_layers"])

    # ------------------------------------------------------------------ router stage
    def on_train_start(self, teacher_train: TeacherRows | None, y_train: torch.Tensor | None) -> None:
        """Stage 1 (two-stage mode): fit router + probe on per-window layer summaries, then freeze them.

        Reads ``teacher_train`` batch by batch: its cached summaries when present, else the layers
        (summarized per batch), so the whole training set's layers are never held at once.
        """
        hp = self.hparams
        if self.router is None or hp["router_mode"] != "two-stage":
            return
        reader = None if teacher_train is None or y_train is None else self._summary_reader(teacher_train, y_train)
        if reader is None:
            warnings.warn(f"{self.name}: no cached teacher layers or summaries before training; the router is "
                          "trained jointly instead of in a separate stage", stacklevel=2)
            return
        n, batch = len(y_train), hp["router_batch"]
        seed = int(torch.initial_seed() % (2 ** 31))
        stats = fit_router(self.router, self.probe, reader, n, epochs=hp["router_epochs"], lr=hp["router_lr"],
                           batch_size=batch, balance_weight=hp["router_balance"], seed=seed)
        self.router.requires_grad_(False)
        self.probe.requires_grad_(False)
        self.router.eval()
        self.probe.eval()
        self.router_fitted = True
        with torch.no_grad():
            for start in range(0, n, batch):
                s, _, y = reader(np.arange(start, min(n, start + batch)))
                self._accumulate(self.router(s), y)
        self.router_stats = stats

    def _summary_reader(self, rows: TeacherRows, y_train: torch.Tensor) -> Any:
        """A reader of ``(summaries, pooled, y)`` by index, or None when ``rows`` has neither summaries nor layers."""
        normalize = self.hparams["normalize_layers"]
        first = rows.batch(np.arange(min(1, len(y_train))))
        names = {stat: [summary_name(n, stat) for n in self.layers] for stat in summary_stats(normalize)}
        cached = all(k in first.summaries for keys in names.values() for k in keys)
        if not cached and any(n not in first.features for n in self.layers):
            return None
        y_all = torch.as_tensor(y_train).long()
        device = next(self.router.parameters()).device

        @torch.no_grad()  # the teacher side is a constant of stage 1
        def read(idx: np.ndarray) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
            b = rows.batch(idx)
            if cached:
                s = torch.stack([as_float(b.summaries[k]) for k in names["ln_mean"]], dim=1)
                p = s if normalize else torch.stack([as_float(b.summaries[k]) for k in names["mean"]], dim=1)
            else:
                s, p = layer_summaries([as_float(b.features[n]) for n in self.layers], normalize)
            i = torch.from_numpy(np.asarray(idx, dtype=np.int64)).to(y_all.device)
            return s.to(device), p.to(device), y_all[i].to(device)

        return read

    def _accumulate(self, alpha: torch.Tensor, y: torch.Tensor) -> None:
        alpha, y = alpha.detach().double().cpu(), y.cpu()  # diagnostics live on the CPU, wherever training runs
        self._alpha_sum += alpha.sum(0)
        for c in torch.unique(y).tolist():
            sel = alpha[y == c]
            self._alpha_class[c] = self._alpha_class.get(c, torch.zeros_like(self._alpha_sum)) + sel.sum(0)
            self._alpha_count[c] = self._alpha_count.get(c, 0) + len(sel)

    def on_epoch_end(self, epoch: int) -> None:
        if self.router_trainable and self._alpha_count:
            # joint mode: keep only the last epoch's weights, the router is still moving before that
            self._last_alpha = (self._alpha_sum.clone(), dict(self._alpha_class), dict(self._alpha_count))
            self._alpha_sum.zero_()
            self._alpha_class, self._alpha_count = {}, {}

    def train(self, mode: bool = True) -> "DLink":
        super().train(mode)
        if self.router_fitted:  # frozen stage-1 modules stay in eval mode
            self.router.eval()
            self.probe.eval()
        return self

    # ------------------------------------------------------------------ diagnostics
    def alpha_report(self) -> dict[str, Any]:
        """Mean router weight per layer, overall and per class (JSON-able)."""
        total, per_class, count = self._alpha_sum, self._alpha_class, self._alpha_count
        if not count and hasattr(self, "_last_alpha"):
            total, per_class, count = self._last_alpha
        n = sum(count.values())
        if not n:
            return {}
        return {
            "layers": list(self.layers),
            "alpha_mean": [round(float(v), 6) for v in total / n],
            "alpha_per_class": {str(c): [round(float(v), 6) for v in per_class[c] / count[c]]
                                for c in sorted(per_class)},
        }

    def report(self) -> dict[str, Any]:
        count = lambda m: sum(p.numel() for p in m.parameters()) if m is not None else 0  # noqa: E731
        deployed = self.deployed()
        rep: dict[str, Any] = {
            "teacher_layers": list(self.layers),
            "teacher_layout": list(self.layout),
            "spectral_axis": f"patches (P={self.layout[1]}, zero-padded to n_fft={max(self.layout[1], self.hparams['spec_nfft'])})",
            "deployed_parts": (["backbone", "projector (Pi)", "compressor", "classifier"] if self.mic is not None
                               else ["student"]),
            "training_only_parts": [p for p, m in (("router", self.router), ("probe", self.probe),
                                                   ("projector (Pi)", self.projector)) if m is not None],
            "deployed_params": count(deployed),
            "training_only_params": self.training_only_params(),
        }
        if self.mic is not None:
            rep["mic"] = self.mic.parts()
        if self.router is not None:
            alpha = self.alpha_report()
            rep["router"] = {"mode": self.hparams["router_mode"], "fitted_before_training": self.router_fitted,
                             **self.router_stats, **alpha}
            if sections := router_sections(rep):
                rep["sections"] = sections
        return rep


def router_sections(report: dict[str, Any]) -> dict[str, Any]:
    """The leaderboard's router section (CONTRIBUTING.md, "Report sections") from a report's ``router`` block.

    Registered as ``sections=`` too, so records stored before reports carried sections get it as well.
    """
    router = (report or {}).get("router") or {}
    if not router.get("alpha_mean") or not router.get("layers"):
        return {}
    rows = {"all classes": router["alpha_mean"]}
    rows.update((f"class {c}", v) for c, v in (router.get("alpha_per_class") or {}).items())
    return {"router": {"title": "Router: mean weight per teacher layer", "columns": list(router["layers"]),
                       "rows": rows, "plot": "heatmap", "highlight": "max",
                       "note": "two-stage mode: the frozen router's weights on the training windows; joint mode: "
                               "the last epoch's"}}


@hookimpl
def eegkd_register_distillers(register) -> None:
    register("dlink", DLink, role="proposed", sections=router_sections,
             description="DLink (our reading): layer router + project-then-compress MiC + spectral")
    register("dlink-norouter", base="dlink", options={"use_router": False}, role="ablation",
             description="DLink ablation: last teacher layer only, no router")
    register("dlink-nospec", base="dlink", options={"lambda_spec": 0.0}, role="ablation", sections=router_sections,
             description="DLink ablation: no spectral term")
    register("dlink-nomic", base="dlink", options={"use_mic": False}, role="ablation", sections=router_sections,
             description="DLink ablation: plain student + training-only adapter")
    register("mic-ce", base="dlink", options={"use_router": False, "lambda_feat": 0.0, "lambda_spec": 0.0,
                                              "kd_weight": 0.0, "transfer": False},
             description="size-matched control: the MiC student on labels only (no teacher output read)")
