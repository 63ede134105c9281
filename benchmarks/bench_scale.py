"""Memory flat in the dataset size: peak anonymous memory of a grid at N = 2,000 vs N = 16,000 windows.

A simulated dataset at the TUAB shape (16 channels x 2000 samples at 200 Hz, 2 classes, 90/5/5 %
subject-disjoint split) is streamed into the window store, then a grid (teacher fine-tuning, the
teacher-output pass, DLink's router stage and routed-target pass, student training, evaluation)
runs on it with a few optimizer steps per epoch. Each run is a child process; its peak anonymous
memory is RssAnon summed over the whole process tree (runner, fork server, workers), sampled
every 0.1 s: pages of memory-mapped files are reclaimable page cache, copies are not.

Prints, per ``--jobs`` setting, peak(N=16,000) / peak(N=2,000) (target <= 1.3), and DLink's
teacher-output cache (layer summaries + one routed layer) against all layers (target <= 1/8).

    python benchmarks/bench_scale.py [--teacher cbramod] [--methods kd,dlink] [--jobs 1,2] [--sizes 2000,16000]

Everything here is simulated; the dataset registers through a throwaway plugin distribution so
the pool's worker processes find it too. Where full CBraMod's forward passes are too slow for
the machine, ``--teacher scale-standin`` (registered by the same plugin) has CBraMod's output
layout -- 12 layers of (16 channels, 10 patches, 200) -- at almost no compute: every cache and
array keeps the sizes of the full model, only the FLOPs are gone.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PLUGIN = '''
"""Simulated TUAB-shaped windows for benchmarks/bench_scale.py, streamed into the window store."""
import numpy as np
import torch

from eegkd_bench import hookimpl
from eegkd_bench.api import Availability, Dataset, ModelOutput, TeacherModel
from eegkd_bench.data.cache import cached_stream

N_SUBJECTS = 40  # 36 / 2 / 2 in train / val / test


def make(n_windows):
    class ScaleTUAB(Dataset):
        name = f"scale-tuab-{n_windows}"
        kind = "simulated"
        description = f"simulated, TUAB shape: {n_windows} windows of 16 x 2000 at 200 Hz"
        class_names = ("normal", "abnormal")
        n_channels = 16
        window_s = 10.0
        sfreq = 200.0

        def availability(self, data_dir=None):
            return Availability(True, "generated (simulated)", "", f"{n_windows} windows")

        def load(self, data_dir=None, cache_dir=None):
            return cached_stream({"bench_scale": n_windows, "version": 1}, self._write, cache_dir)

        def _write(self, writer):
            rng = np.random.default_rng(n_windows)
            t = np.arange(2000) / 200.0
            writer.expect(N_SUBJECTS)
            for s, rows in enumerate(np.array_split(np.arange(n_windows), N_SUBJECTS)):
                k = len(rows)
                split = "train" if s < 36 else "val" if s < 38 else "test"
                y = rng.integers(0, 2, k)
                tone = np.sin(2 * np.pi * (8.0 + 4.0 * y)[:, None, None] * t)  # class-dependent rhythm
                X = tone.astype(np.float32) + rng.standard_normal((k, 16, 2000), dtype=np.float32)
                writer.append(X, y, f"s{s:04d}", split)
            return writer.finish(name=self.name, sfreq=200.0, ch_names=[f"ch{i}" for i in range(16)],
                                 class_names=list(self.class_names), kind="simulated",
                                 checksum=f"simulated:bench_scale:{n_windows}", notes="simulated (bench_scale)")
    return ScaleTUAB


class StandIn(TeacherModel):
    """CBraMod's output layout (12 layers of (16, 10, 200)) at almost no compute: memory runs without the FLOPs."""

    feature_names = tuple(f"layer_{i}" for i in range(1, 13))

    def __init__(self, spec, **options):
        super().__init__()
        self.scale = torch.nn.Parameter(torch.ones(12, 200))
        self.head = torch.nn.Linear(200, spec.n_classes)

    def forward_features(self, x):
        b, c, t = x.shape
        h = x.reshape(b, c, t // 200, 200)
        feats = {}
        for i, name in enumerate(self.feature_names):
            h = torch.tanh(h * self.scale[i])
            feats[name] = h
        emb = h.mean(dim=(1, 2))
        return ModelOutput(self.head(emb), feats, emb)


@hookimpl
def eegkd_register_teachers(register):
    register("scale-standin", StandIn, description="simulated-benchmark stand-in with CBraMod's layer layout")


@hookimpl
def eegkd_register_datasets(register):
    import os
    for n in os.environ.get("EEGKD_SCALE_SIZES", "2000,16000").split(","):
        cls = make(int(n))
        register(cls.name, cls, description=cls.description, kind="simulated")
'''


def install_plugin(root: Path) -> Path:
    """A throwaway distribution (module + dist-info with the entry point) that ``PYTHONPATH`` exposes."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "eegkd_scale_bench.py").write_text(PLUGIN)
    info = root / "eegkd_scale_bench-0.0.dist-info"
    info.mkdir(exist_ok=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: eegkd-scale-bench\nVersion: 0.0\n")
    (info / "entry_points.txt").write_text("[eegkd_bench]\nscale_bench = eegkd_scale_bench\n")
    return root


# ------------------------------------------------------------------------ child
def child(args: argparse.Namespace) -> None:
    """One grid run (in its own process tree, so the parent measures it alone)."""
    import dataclasses
    import io

    from eegkd_bench.context import make_context
    from eegkd_bench.executors.pool import start_pool_server
    from eegkd_bench.plugins import get_registry
    from eegkd_bench.presets import PRESETS
    from eegkd_bench.progress import PlainReporter
    from eegkd_bench.runner import Grid
    from eegkd_bench.training import TrainConfig

    if args.jobs > 1:
        start_pool_server()
    quick = PRESETS["quick"]
    preset = dataclasses.replace(
        quick, name="bench-scale",
        teacher_cfg=TrainConfig(epochs=1, batch_size=32, lr=1e-4, max_steps=args.steps),
        student_cfg=TrainConfig(epochs=1, batch_size=32, lr=1e-3, max_steps=args.steps))
    reg = get_registry()
    ctx = make_context(args.results, args.cache, None, latency=False, device="cpu")
    ctx.teacher_cache = "on"
    grid = Grid(reg, ctx, PlainReporter(total=0, stream=io.StringIO()))
    plan = grid.plan([f"scale-tuab-{args.n}"], args.teacher, ["eegnet"], args.methods.split(","), (0,), preset)
    records = [ctx.results.get(r["key"]) or r for r in grid.run(plan, jobs=args.jobs)]
    print(json.dumps([{k: r.get(k) for k in ("distiller", "status", "error", "teacher_cache")} for r in records]))


# ----------------------------------------------------------------------- parent
def _tree(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as fh:
                    ppid = int(fh.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry))
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(children.get(pid, []))
    return out


def _rss_anon_kib(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("RssAnon:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def measured_run(cmd: list[str], env: dict[str, str]) -> tuple[float, float, str]:
    """Run ``cmd``; return (peak RssAnon of its process tree in GiB, wall seconds, stdout)."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    peak = 0
    while proc.poll() is None:
        peak = max(peak, sum(_rss_anon_kib(p) for p in _tree(proc.pid)))
        time.sleep(0.1)
    out, err = proc.communicate()
    if proc.returncode:
        raise SystemExit(f"run failed ({proc.returncode}): {' '.join(cmd)}\n{err[-3000:]}")
    return peak / 1024 / 1024, time.perf_counter() - t0, out


def dlink_cache_sizes(teacher: str, n_train: int) -> tuple[int, int, int]:
    """Bytes of DLink's (N, L, D) float32 summaries, of one float16 layer and of all L layers, from the shapes."""
    import numpy as np

    from eegkd_bench.api import InputSpec
    from eegkd_bench.plugins import get_registry
    from eegkd_bench.teachers import teacher_info

    spec = InputSpec(16, 2000, 2, 200.0)
    info = teacher_info(teacher, get_registry().get("teachers", teacher).factory(spec), spec)
    shape = info.feature_shapes[info.layer_names[-1]]
    n_layers = len(info.layer_names)
    layer = int(np.prod(shape)) * 2 * n_train
    return n_train * n_layers * shape[-1] * 4, layer, layer * n_layers


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--teacher", default="cbramod")
    ap.add_argument("--methods", default="kd,dlink", help="distillers run together in each grid")
    ap.add_argument("--jobs", default="1,2")
    ap.add_argument("--sizes", default="2000,16000")
    ap.add_argument("--steps", type=int, default=3, help="optimizer steps per epoch (teacher and student)")
    ap.add_argument("--work", help="folder for caches and results (default: a temporary one)")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--n", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--cache", help=argparse.SUPPRESS)
    ap.add_argument("--results", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        args.jobs = int(args.jobs)
        child(args)
        return
    work = Path(args.work or tempfile.mkdtemp(prefix="eegkd-bench-scale-"))
    plugin = str(install_plugin(work / "plugin"))
    os.environ["EEGKD_SCALE_SIZES"] = args.sizes
    os.environ.pop("EEGKD_LOAD_PLUGINS", None)
    sys.path.insert(0, plugin)  # this process reads the stand-in teacher's shapes too
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([plugin, os.environ.get("PYTHONPATH", "")])}
    sizes = [int(n) for n in args.sizes.split(",")]
    jobs = [int(j) for j in args.jobs.split(",")]
    peaks: dict[tuple[int, int], float] = {}
    print(f"teacher {args.teacher}, methods {args.methods}, {args.steps} steps per epoch, work folder {work}")
    for n in sizes:
        for j in jobs:  # the first run of a size builds its window store and fills the teacher caches
            cmd = [sys.executable, __file__, "--child", "--n", str(n), "--jobs", str(j), "--methods", args.methods,
                   "--teacher", args.teacher, "--steps", str(args.steps), "--cache", str(work / f"cache-{n}"),
                   "--results", str(work / f"results-{n}-j{j}")]
            peak, wall, out = measured_run(cmd, env)
            statuses = json.loads(out.strip().splitlines()[-1])
            bad = [s for s in statuses if s["status"] != "ok"]
            if bad:
                raise SystemExit(f"N={n} --jobs {j}: cells failed: {bad}")
            peaks[(n, j)] = peak
            cache_use = sorted({str((s["teacher_cache"] or {}).get("use")) for s in statuses})
            print(f"N={n:>6} --jobs {j}: peak RssAnon {peak:.2f} GiB, {wall:.0f} s "
                  f"(teacher cache used: {','.join(cache_use)})", flush=True)
    lo, hi = min(sizes), max(sizes)
    for j in jobs:
        ratio = peaks[(hi, j)] / peaks[(lo, j)]
        print(f"--jobs {j}: peak(N={hi}) / peak(N={lo}) = {ratio:.2f}  (target <= 1.30)")
    if "dlink" in args.methods.split(","):
        n_train = sum(len(r) for r in __import__("numpy").array_split(range(hi), 40)[:36])
        written = sum(p.stat().st_size for p in (work / f"cache-{hi}").glob("teacher_outputs/*/layer_*.ln_mean.npy"))
        for teacher in dict.fromkeys([args.teacher, "cbramod"]):
            summaries, layer, full = dlink_cache_sizes(teacher, n_train)
            note = ""
            if teacher == args.teacher:
                note = f", summary files written: {written / 1e6:.1f} MB"
                summaries = written
            ratio = (summaries + layer) / full
            print(f"DLink cache with {teacher} at N={hi}: summaries + routed layer "
                  f"{(summaries + layer) / 1e9:.3f} GB vs all layers {full / 1e9:.3f} GB = 1/{1 / ratio:.1f} "
                  f"(target <= 1/8{note})")


if __name__ == "__main__":
    main()
