"""Pretraining of a teacher on a pool of datasets (``eegkd-bench pretrain``): self-supervised masked-patch
reconstruction, or a supervised stage on a labelled corpus.

The objective is CBraMod's (Wang et al., ICLR 2025): windows are cut into patches (1 s at 200 Hz),
a random half of the patches is hidden (replaced by the model's mask encoding, zeros in CBraMod),
the backbone encodes every patch, a linear head reconstructs each patch's raw samples, and the loss
is the mean squared error over the hidden patches only. AdamW (weight decay 5e-2), cosine decay,
gradient clipping at 1, as in the release. Where we deviate, and why:

* **A pool of datasets** instead of one fixed montage (CBraMod: 19-channel TUEG, 30-s windows).
  Each batch comes from one dataset, so it has one montage and window length; a seeded draw per
  step picks the dataset, each with equal probability.
* **Steps, not epochs**, with a linear warm-up: a streamed corpus has no epochs.
* **Labeled datasets give only their train split**, so a pretrained teacher never saw the subjects
  a benchmark tests it on.
* Sizes (layers, width, number of steps) are the teacher's and the command line's, far below
  CBraMod's 12 layers and 40 epochs of 27,000 hours; see ``docs/pretraining.md``.

Files for ``--out OUT.pt``: ``OUT.pt`` (the backbone's state dict, the format
``--teacher-checkpoint`` loads), ``OUT.json`` (the sidecar: architecture, options, data pool with
checksums, recipe, loss curve, sha256 of OUT.pt) and, while training, ``OUT.pt.resume`` (model,
optimizer, RNG and curve, replaced atomically every ``checkpoint_every`` steps, so a ``kill -9``
loses at most that many steps). The same command again resumes; the resume file goes at the end.
"""
from __future__ import annotations

import dataclasses
import json
import math
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np
import torch

from eegkd_bench import __version__
from eegkd_bench.api import DataUnavailable, InputSpec, TeacherModel
from eegkd_bench.data.cache import default_cache_dir
from eegkd_bench.data.catalog import load_dataset, make_dataset
from eegkd_bench.errors import UserError
from eegkd_bench.registry import Registry
from eegkd_bench.storage import atomic_write, atomic_write_text, file_sha256, stable_hash

FORMAT = 1


@dataclass(frozen=True)
class PretrainConfig:
    """The pretraining recipe (all of it enters the run's identity, except how often we save and log)."""

    steps: int = 1000
    batch_size: int = 32
    lr: float = 5e-4
    weight_decay: float = 5e-2
    warmup_steps: int = 20
    mask_ratio: float = 0.5
    grad_clip: float = 1.0
    seed: int = 0
    dtype: str = "float32"  # of the written checkpoint; "float16" halves its size
    checkpoint_every: int = 50
    log_every: int = 10
    #: "masked" (masked-patch reconstruction) or "supervised" (cross-entropy on a labelled corpus, one
    #: classification head per task; the heads are dropped, the backbone is written)
    objective: str = "masked"
    #: a checkpoint file the backbone starts from ("" = the teacher's random init) and how records name
    #: it (``teachers.checkpoint_init``: its label and sha256), which enters the identity instead of the path
    init: str = ""
    init_label: str = ""

    def recipe(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        for k in ("checkpoint_every", "log_every", "init_label"):
            d.pop(k)
        for k, default in (("objective", "masked"), ("init", "")):
            if d[k] == default:  # recipes of the default objective from scratch keep their identity
                d.pop(k)
        if "init" in d:
            d["init"] = self.init_label or "unlabelled checkpoint"
        return d

    def check(self) -> None:
        for name in ("steps", "batch_size", "checkpoint_every", "log_every"):
            if getattr(self, name) < 1:
                raise UserError(f"invalid --{name.replace('_', '-')} {getattr(self, name)}; expected 1 or more")
        if not 0.0 < self.mask_ratio < 1.0:
            raise UserError(f"invalid --mask-ratio {self.mask_ratio}; expected a fraction between 0 and 1, e.g. 0.5")
        if self.dtype not in ("float32", "float16"):
            raise UserError(f"invalid --dtype {self.dtype!r}; expected float32 or float16")
        if self.objective not in OBJECTIVES:
            raise UserError(f"invalid --objective {self.objective!r}; expected one of {', '.join(OBJECTIVES)}")


OBJECTIVES = ("masked", "supervised")


class Source:
    """One dataset of the pool: ``batch(index, batch_size)`` gives the same windows for the same index.

    A labelled corpus also has ``labelled(index, batch_size) -> (task, windows, labels)`` and
    ``tasks``: each task's (channels, samples, classes), for the supervised objective.
    """

    def __init__(self, name: str, sfreq: float, describe: dict[str, Any],
                 batch: Callable[[int, int], np.ndarray],
                 labelled: Callable[[int, int], tuple[str, np.ndarray, np.ndarray]] | None = None,
                 tasks: dict[str, tuple[int, int, int]] | None = None) -> None:
        self.name, self.sfreq, self.describe, self.batch = name, float(sfreq), describe, batch
        self.labelled, self.tasks = labelled, dict(tasks or {})


def _array_source(name: str, X: np.ndarray, sfreq: float, describe: dict[str, Any], seed: int) -> Source:
    """Batches of ``X`` in a fresh seeded permutation per pass (deterministic in the batch index)."""
    n = len(X)

    @lru_cache(maxsize=2)
    def order(n_pass: int) -> np.ndarray:
        return np.random.default_rng([seed, n_pass]).permutation(n)

    def batch(index: int, batch_size: int) -> np.ndarray:
        pos = np.arange(index * batch_size, (index + 1) * batch_size)
        idx = [order(int(q))[r] for q, r in zip(pos // n, pos % n)]
        return np.ascontiguousarray(X[np.sort(idx)], dtype=np.float32)

    return Source(name, sfreq, describe, batch)


def make_pool(registry: Registry, names: list[str], data_dir: str | None, cache_dir: str | None,
              seed: int, options: Mapping[str, Mapping[str, Any]] | None = None) -> list[Source]:
    """The registered datasets ``names`` as pretraining sources (``options``: by dataset name, checked by
    :func:`eegkd_bench.config.validate`); they must share one sampling rate."""
    pool = []
    for name in names:
        opts = dict((options or {}).get(name, {}))
        ds = make_dataset(registry, name, opts)
        if not getattr(ds, "labeled", True):
            labelled = getattr(ds, "labelled_batch", None)
            pool.append(Source(name, ds.sfreq, {"name": name, "kind": ds.kind, "streamed": True,
                                                "checksum": stable_hash(ds.params()) if hasattr(ds, "params")
                                                else "", "params": getattr(ds, "params", dict)()},
                               ds.stream_batch, labelled, ds.tasks() if labelled is not None else None))
            continue
        try:  # as a run loads it: availability, finite values and non-empty splits checked
            w = load_dataset(registry, name, data_dir, Path(cache_dir) if cache_dir else default_cache_dir(), opts)
        except DataUnavailable as exc:
            raise UserError(f"dataset {name!r} is not on this machine ({exc}); pretrain on available datasets "
                            "(see eegkd-bench datasets)") from None
        X = w.part("train")[0]
        pool.append(_array_source(name, X, w.sfreq, {
            "name": name, "kind": w.kind, "streamed": False, "checksum": w.checksum, "split": "train",
            "windows": int(len(X)), "channels": w.n_channels, "samples": w.n_samples}, seed))
    rates = {s.name: s.sfreq for s in pool}
    if len(set(rates.values())) > 1:
        listed = ", ".join(f"{k} {v:g} Hz" for k, v in rates.items())
        raise UserError(f"the pretraining pool mixes sampling rates ({listed}); "
                        "pretrain on datasets of one rate or resample them first")
    return pool


def check_patches(teacher: str, model: TeacherModel, source: Source, x: np.ndarray) -> None:
    """Raise a one-line UserError when ``x`` cannot be cut into the teacher's patch tokens."""
    if x.ndim != 3 or x.shape[-1] % model.patch_size:
        raise UserError(f"dataset {source.name!r} has windows of {x.shape[-1]} samples, not whole "
                        f"{model.patch_size}-sample patches, so it gives {teacher!r} no patch tokens; "
                        "crop or pad its windows to a multiple of the patch size")


def build_model(teacher: str, factory: Callable[..., Any], options: dict[str, Any], pool: list[Source],
                seed: int) -> TeacherModel:
    """The teacher, built for the pool's first window shape; patch-token teachers only."""
    x = pool[0].batch(0, 1)
    torch.manual_seed(seed)
    model = factory(InputSpec(int(x.shape[1]), int(x.shape[2]), 2, pool[0].sfreq), **options)
    if not isinstance(model, TeacherModel) or int(getattr(model, "patch_size", 0)) <= 0:
        raise UserError(f"teacher {teacher!r} exposes no patch tokens, so it cannot be pretrained by masked-patch "
                        "reconstruction; choose a CBraMod teacher such as cbramod-sim")
    for s in pool:
        check_patches(teacher, model, s, s.batch(0, 1) if s is not pool[0] else x)
    return model


def init_label(pool: list[Source], cfg: PretrainConfig | None = None) -> str:
    """How records name a teacher started from this checkpoint: ``sim-pretrained`` when the pool is all
    simulated (never plain "pretrained": it is not an official checkpoint), else the datasets it saw.

    A supervised stage says so: ``sim-sup-pretrained`` from random init, ``sim-ssl+sup-pretrained`` on
    top of a self-supervised ``sim-pretrained`` checkpoint (``<init label>+sup:<datasets>`` otherwise).
    """
    simulated = all(s.describe.get("kind") == "simulated" for s in pool)
    if cfg is None or cfg.objective == "masked":
        return "sim-pretrained" if simulated else "pretrained-on:" + "+".join(s.name for s in pool)
    start = (cfg.init_label or "checkpoint").split(" ")[0] if cfg.init else "random"
    if simulated and start in ("random", "sim-pretrained"):
        return "sim-sup-pretrained" if start == "random" else "sim-ssl+sup-pretrained"
    return f"{start}+sup:" + "+".join(s.name for s in pool)


def architecture(teacher: str, options: dict[str, Any], model: TeacherModel) -> dict[str, Any]:
    """What a checkpoint fits: teacher, options and the backbone's parameter shapes."""
    shapes = {k: list(v.shape) for k, v in model.backbone.state_dict().items()}
    cfg = getattr(model.backbone, "cfg", None)
    return {"teacher": teacher, "options": options, "config": dataclasses.asdict(cfg) if cfg is not None else None,
            "backbone_params": int(model.backbone_params), "shapes_digest": stable_hash(shapes)[:16]}


def atomic_torch_save(obj: Any, path: Path) -> None:
    """``torch.save`` through :func:`eegkd_bench.storage.atomic_write` (a crash leaves the old file or the new one)."""
    atomic_write(path, lambda fh: torch.save(obj, fh))


def masked_patch_loss(model: TeacherModel, x: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, float]:
    """MSE of the reconstruction over the masked patches, and the masked patches' mean power (the NMSE scale)."""
    b, c, t = x.shape
    patches = x.reshape(b, c, t // model.patch_size, model.patch_size)
    recon = model.reconstruct_patches(model.patch_tokens(x, mask))
    err = ((recon - patches) ** 2).mean(-1)[mask]
    return err.mean(), float(patches.detach().pow(2).mean(-1)[mask].mean())


def task_models(teacher: str, factory: Callable[..., Any], options: dict[str, Any], model: TeacherModel,
                pool: list[Source]) -> dict[tuple[int, str], TeacherModel]:
    """For the supervised objective: one classifier per (source, task), all sharing ``model``'s backbone."""
    out: dict[tuple[int, str], TeacherModel] = {}
    for i, s in enumerate(pool):
        if s.labelled is None:
            raise UserError(f"dataset {s.name!r} has no labelled stream for --objective supervised; use a labelled "
                            "corpus such as sim-pretrain-sup, or --objective masked")
        for task, (c, t, k) in s.tasks.items():
            m = factory(InputSpec(int(c), int(t), int(k), s.sfreq), **options)
            m.backbone = model.backbone
            out[(i, task)] = m
    return out


def _head_state(models: dict[tuple[int, str], TeacherModel]) -> dict[str, Any]:
    return {f"{i}/{task}": {k: v for k, v in m.state_dict().items() if not k.startswith("backbone.")}
            for (i, task), m in models.items()}


def _parameters(model: TeacherModel, models: dict[tuple[int, str], TeacherModel] | None) -> list[torch.nn.Parameter]:
    """What the objective trains: masked, the backbone and its reconstruction head; supervised, the
    backbone but its pretraining parts (mask encoding, reconstruction head), and every task's head."""
    if models is None:
        return model.pretraining_parameters()
    frozen = ("patch_embedding.mask_encoding", "proj_out.")
    params = [p for n, p in model.backbone.named_parameters() if not n.startswith(frozen)]
    for m in models.values():
        params += [p for n, p in m.named_parameters() if not n.startswith("backbone.")]
    return params


def pretrain(teacher: str, factory: Callable[..., Any], options: dict[str, Any], pool: list[Source],
             cfg: PretrainConfig, out: Path, *, device: str = "cpu", command: str = "",
             progress: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
    """Pretrain (or resume, or find already finished) and return the sidecar written beside ``out``."""
    cfg.check()
    out = Path(out)
    sidecar, resume = out.with_suffix(".json"), out.with_name(out.name + ".resume")
    supervised = cfg.objective == "supervised"
    model = build_model(teacher, factory, dict(options), pool, cfg.seed)
    models = task_models(teacher, factory, dict(options), model, pool) if supervised else None
    arch = architecture(teacher, dict(options), model)
    identity = {"format": FORMAT, "architecture": arch, "pool": [s.describe for s in pool], "recipe": cfg.recipe()}
    if out.exists():
        try:
            done = json.loads(sidecar.read_text())
        except (OSError, json.JSONDecodeError):
            done = {}
        if {k: done.get(k) for k in identity} == identity and done.get("sha256") == file_sha256(out):
            return done
        raise UserError(f"{out} already exists and is not this run's finished checkpoint; "
                        "choose another --out or move the file away (nothing was overwritten)")
    out.parent.mkdir(parents=True, exist_ok=True)
    params = _parameters(model, models)
    if cfg.init:
        model.load_pretrained(cfg.init)  # after _parameters: the masked objective zeroes a fresh reconstruction head
    model.to(device)
    for m in (models or {}).values():
        m.to(device)
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)

    def lr_at(step: int) -> float:
        if step < cfg.warmup_steps:
            return (step + 1) / cfg.warmup_steps
        return 0.5 * (1 + math.cos(math.pi * (step - cfg.warmup_steps) / max(1, cfg.steps - cfg.warmup_steps)))

    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_at)
    step, curve, seen, spent = 0, [], 0, 0.0
    if resume.exists():
        step, curve, seen, spent = _resume(resume, identity, model, opt, sched, models)
    model.train()
    for m in (models or {}).values():
        m.train()
    window: list[tuple[float, float]] = []
    def pick(s: int) -> int:  # which source gives batch s: a draw of its own, the same on resume
        return 0 if len(pool) == 1 else int(np.random.default_rng([cfg.seed, 7, s]).integers(len(pool)))

    def fetch(s: int) -> tuple[str, np.ndarray, np.ndarray | None]:
        source = pool[pick(s)]
        if supervised:
            return source.labelled(s, cfg.batch_size)  # type: ignore[misc]
        return "", source.batch(s, cfg.batch_size), None

    t_run = time.perf_counter()
    with ThreadPoolExecutor(1) as ahead:  # the next batch is generated while this one trains
        nxt = ahead.submit(fetch, step) if step < cfg.steps else None
        while step < cfg.steps:
            task, x_np, y_np = nxt.result()
            nxt = ahead.submit(fetch, step + 1) if step + 1 < cfg.steps else None
            x = torch.from_numpy(x_np).to(device)
            if models is not None:
                logits = models[(pick(step), task)](x)
                y = torch.from_numpy(y_np).to(device)
                loss = torch.nn.functional.cross_entropy(logits, y)
                stat = float((logits.argmax(-1) == y).float().mean())  # on subjects not seen before (first pass)
            else:
                check_patches(teacher, model, pool[pick(step)], x_np)
                g = torch.Generator().manual_seed(int(np.random.SeedSequence([cfg.seed, 11, step]).generate_state(1)[0]))
                mask = (torch.rand(x.shape[0], x.shape[1], x.shape[2] // model.patch_size, generator=g)
                        < cfg.mask_ratio).to(device)
                loss, stat = masked_patch_loss(model, x, mask)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip)
            opt.step()
            sched.step()
            step += 1
            seen += len(x_np)
            last = loss.item()
            window.append((last, stat))
            if step % cfg.log_every == 0 or step == cfg.steps:
                mean, st = np.mean(window, axis=0)
                curve.append({"step": step, "loss": float(mean), "accuracy": float(st)} if supervised else
                             {"step": step, "loss": float(mean), "nmse": float(mean / max(st, 1e-12))})
                window = []
            now = spent + time.perf_counter() - t_run
            if progress is not None:
                progress({"step": step, "steps": cfg.steps, "loss": last, "curve": curve,
                          "windows_per_s": seen / max(now, 1e-9), "source": pool[pick(step - 1)].name})
            if step % cfg.checkpoint_every == 0 and step < cfg.steps:
                _save_resume(resume, identity, model, opt, sched, step, curve, seen, now, models)
    spent += time.perf_counter() - t_run
    dtype = torch.float16 if cfg.dtype == "float16" else torch.float32
    state = {k: (v.detach().cpu().to(dtype) if v.is_floating_point() else v.detach().cpu())
             for k, v in model.backbone.state_dict().items()}
    atomic_torch_save(state, out)
    meta = {**identity, "steps_done": step, "windows_seen": seen, "train_time_s": round(spent, 1),
            "windows_per_s": round(seen / max(spent, 1e-9), 2), "loss_curve": curve, "device": device,
            "torch_threads": torch.get_num_threads(), "versions": {"eegkd_bench": __version__,
                                                                   "torch": torch.__version__},
            "command": command, "checkpoint": out.name, "label": init_label(pool, cfg), "sha256": file_sha256(out)}
    atomic_write_text(sidecar, json.dumps(meta, indent=1) + "\n")
    resume.unlink(missing_ok=True)
    return meta


def _save_resume(path: Path, identity: dict[str, Any], model: TeacherModel, opt: torch.optim.Optimizer,
                 sched: Any, step: int, curve: list[dict[str, Any]], seen: int, spent: float,
                 models: dict[tuple[int, str], TeacherModel] | None = None) -> None:
    atomic_torch_save({"identity": json.dumps(identity, sort_keys=True), "step": step, "curve": json.dumps(curve),
                       "seen": seen, "spent": spent, "backbone": model.backbone.state_dict(),
                       "heads": _head_state(models or {}),
                       "optimizer": opt.state_dict(), "scheduler": sched.state_dict(),
                       "torch_rng": torch.get_rng_state()}, path)


def _resume(path: Path, identity: dict[str, Any], model: TeacherModel, opt: torch.optim.Optimizer,
            sched: Any, models: dict[tuple[int, str], TeacherModel] | None = None
            ) -> tuple[int, list[dict[str, Any]], int, float]:
    """Load a resume file written by the same run; one-line errors for another architecture, pool or recipe."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
        theirs = json.loads(state["identity"])
    except Exception as exc:  # a damaged file: the user decides, nothing is deleted for them
        raise UserError(f"cannot read the resume file {path} ({type(exc).__name__}); delete it to start over") from None
    if theirs.get("architecture") != identity["architecture"]:
        a = theirs.get("architecture") or {}
        raise UserError(f"{path} resumes a pretraining of another architecture (teacher {a.get('teacher')!r}, "
                        f"options {a.get('options')}, backbone {a.get('backbone_params')} params), not "
                        f"{identity['architecture']['teacher']!r} with options {identity['architecture']['options']}; "
                        "use that teacher or another --out (nothing was overwritten)")
    for part in ("pool", "recipe"):
        if theirs.get(part) != identity[part]:
            raise UserError(f"{path} resumes a pretraining with another {part} ({theirs.get(part)}); "
                            f"use the same --datasets and options as before, or another --out (nothing was overwritten)")
    model.backbone.load_state_dict(state["backbone"], strict=True)
    heads = state.get("heads") or {}
    for (i, task), m in (models or {}).items():
        m.load_state_dict({**m.state_dict(), **heads[f"{i}/{task}"]}, strict=True)
    opt.load_state_dict(state["optimizer"])
    sched.load_state_dict(state["scheduler"])
    torch.set_rng_state(state["torch_rng"])
    return int(state["step"]), json.loads(state["curve"]), int(state["seen"]), float(state["spent"])
