"""Helpers that make fake installed distributions (dist-info + entry points) in a temp dir."""
from __future__ import annotations

import textwrap
from pathlib import Path


def make_distribution(root: Path, dist: str, version: str, modules: dict[str, str], entry_points: dict[str, str]) -> Path:
    """Write ``modules`` (name -> source) and a ``<dist>-<version>.dist-info`` declaring the entry points."""
    root.mkdir(parents=True, exist_ok=True)
    for name, source in modules.items():
        (root / f"{name}.py").write_text(textwrap.dedent(source))
    info = root / f"{dist.replace('-', '_')}-{version}.dist-info"
    info.mkdir(exist_ok=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n")
    lines = ["[eegkd_bench]"] + [f"{k} = {v}" for k, v in entry_points.items()]
    (info / "entry_points.txt").write_text("\n".join(lines) + "\n")
    return root


GOOD_DISTILLER = '''
from eegkd_bench import hookimpl
from eegkd_bench.api import Distiller

class Echo(Distiller):
    """CE only."""

@hookimpl
def eegkd_register_distillers(register):
    register("echo-kd", Echo, description="a third-party distiller")
'''

BROKEN_IMPORT = '''
raise RuntimeError("this plugin is broken on purpose")
'''

BROKEN_REGISTER = '''
from eegkd_bench import hookimpl

@hookimpl
def eegkd_register_students(register):
    raise ValueError("registration exploded")
'''

DUPLICATE_KD = '''
from eegkd_bench import hookimpl
from eegkd_bench.api import Distiller

class MyKD(Distiller):
    pass

@hookimpl
def eegkd_register_distillers(register):
    register("kd", MyKD, description="clashes with the built-in kd")
'''
