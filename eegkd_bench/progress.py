"""Progress display for long runs: a live rich display, or plain log lines (quiet / not a terminal)."""
from __future__ import annotations

import sys
import time
from typing import Any

from rich.console import Console
from rich.live import Live
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table


def _fmt_terms(terms: dict[str, float]) -> str:
    return " ".join(f"{k}={v:.3g}" for k, v in terms.items())


def _fmt_metrics(rec: dict[str, Any]) -> str:
    m = rec.get("metrics") or {}
    return " ".join(f"{k}={v:.3f}" for k, v in m.items() if k in ("balanced_accuracy", "cohen_kappa", "auroc"))


class PlainReporter:
    """One line per event on stderr: for logs, CI and ``--quiet``."""

    def __init__(self, total: int = 0, stream: Any = None, verbose: bool = False) -> None:
        self.stream = stream or sys.stderr
        self.total = total
        self.done = 0
        self.verbose = verbose
        self.t0 = time.perf_counter()

    def __enter__(self) -> "PlainReporter":
        return self

    def __exit__(self, *exc: Any) -> None:
        pass

    def _say(self, text: str) -> None:
        print(text, file=self.stream, flush=True)

    def set_total(self, total: int) -> None:
        self.total = total

    def message(self, text: str) -> None:
        if self.verbose:
            self._say(text)

    def teacher_start(self, cell: Any) -> None:
        self._say(f"[teacher] {cell.teacher} on {cell.dataset} (seed {cell.seed}) …")

    def teacher_done(self, cell: Any) -> None:
        pass

    def cell_start(self, cell: Any) -> None:
        pass

    def already_done(self, cell: Any, rec: dict[str, Any]) -> None:
        pass

    def cell_done(self, cell: Any, rec: dict[str, Any]) -> None:
        self.done += 1
        elapsed = time.perf_counter() - self.t0
        status = rec.get("status")
        detail = _fmt_metrics(rec) if status == "ok" else rec.get("error", "")
        self._say(f"[{self.done}/{self.total}] {status:7s} {cell.label()}  {detail}  ({elapsed:.0f}s)")

    def progress(self, event: dict[str, Any]) -> None:
        if self.verbose and event.get("event") == "epoch":
            self._say(f"    epoch {event['epoch']}/{event['epochs']} {_fmt_terms(event['terms'])} "
                      f"val {event['key_metric']}={event['val_key']:.3f}")


class RichReporter(PlainReporter):
    """Live display: cells done/total with ETA, the current cell, its epoch and loss terms."""

    def __init__(self, total: int = 0, console: Console | None = None) -> None:
        super().__init__(total)
        self.console = console or Console(stderr=True)
        self.bar = Progress(TextColumn("[bold]cells"), BarColumn(), MofNCompleteColumn(), TextColumn("•"),
                            TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(), console=self.console)
        self.task = self.bar.add_task("cells", total=total or None)
        self.current = "starting …"
        self.epoch_line = ""
        self.live = Live(self._render(), console=self.console, refresh_per_second=4, transient=False)

    def _render(self) -> Table:
        grid = Table.grid(padding=(0, 1))
        grid.add_row(self.bar)
        grid.add_row(f"[cyan]{self.current}")
        if self.epoch_line:
            grid.add_row(f"  {self.epoch_line}")
        return grid

    def __enter__(self) -> "RichReporter":
        self.live.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.live.update(self._render())
        self.live.__exit__(*exc)

    def _refresh(self) -> None:
        self.live.update(self._render())

    def set_total(self, total: int) -> None:
        self.total = total
        self.bar.update(self.task, total=total)
        self._refresh()

    def message(self, text: str) -> None:
        self.current = text
        self._refresh()

    def teacher_start(self, cell: Any) -> None:
        self.current = f"fine-tuning teacher {cell.teacher} on {cell.dataset} (seed {cell.seed})"
        self.epoch_line = ""
        self._refresh()

    def cell_start(self, cell: Any) -> None:
        self.current = cell.label()
        self.epoch_line = ""
        self._refresh()

    def cell_done(self, cell: Any, rec: dict[str, Any]) -> None:
        self.done += 1
        status = rec.get("status")
        colour = {"ok": "green", "failed": "red", "skipped": "yellow"}.get(status, "white")
        detail = _fmt_metrics(rec) if status == "ok" else rec.get("error", "")
        self.console.print(f"[{colour}]{status:7s}[/] {cell.label()}  {detail}")
        self.bar.advance(self.task)
        self._refresh()

    def progress(self, event: dict[str, Any]) -> None:
        if event.get("event") == "epoch":
            where = f"{event['cell']}: " if "cell" in event else ""
            self.epoch_line = (f"{where}epoch {event['epoch']}/{event['epochs']}  {_fmt_terms(event['terms'])}  "
                               f"val {event['key_metric']}={event['val_key']:.3f}")
            self._refresh()


def make_reporter(quiet: bool, verbose: bool = False) -> PlainReporter:
    if quiet or not sys.stderr.isatty():
        return PlainReporter(verbose=verbose)
    return RichReporter()


class PretrainReporter:
    """Progress of ``eegkd-bench pretrain``: a live bar (step, loss, windows/s, ETA) or a line per loss point."""

    def __init__(self, quiet: bool) -> None:
        self.live = not quiet and sys.stderr.isatty()
        self.logged = 0
        self.bar = Progress(TextColumn("[bold]pretraining"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[info]}"),
                            TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(),
                            console=Console(stderr=True)) if self.live else None
        self.task: Any = None

    def __enter__(self) -> "PretrainReporter":
        if self.bar is not None:
            self.bar.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.bar is not None:
            self.bar.__exit__(*exc)

    def __call__(self, event: dict[str, Any]) -> None:
        curve = event["curve"]
        last = curve[-1] if curve else {}
        # the masked objective reports the normalised MSE, the supervised one the accuracy on new subjects
        stat = "acc" if "accuracy" in last else "nmse"
        value = last.get("accuracy", last.get("nmse", float("nan")))
        info = (f"loss {event['loss']:.4f}  {stat} {value:.3f}  "
                f"{event['windows_per_s']:.1f} windows/s  [{event['source']}]")
        if self.bar is not None:
            if self.task is None:
                self.task = self.bar.add_task("pretrain", total=event["steps"], completed=event["step"] - 1, info="")
            self.bar.update(self.task, completed=event["step"], info=info)
        elif len(curve) > self.logged:
            self.logged = len(curve)
            print(f"[pretrain] step {event['step']}/{event['steps']}  loss {last['loss']:.4f}  {stat} {value:.3f}  "
                  f"{event['windows_per_s']:.1f} windows/s", file=sys.stderr, flush=True)


def pretrain_reporter(quiet: bool) -> PretrainReporter:
    """The live display on a terminal unless ``quiet``, else plain lines."""
    return PretrainReporter(quiet)
