"""CLI behaviour: help, listing, exit codes, one-line errors."""
from __future__ import annotations

import json

import pytest

from eegkd_bench.cli import main


def run_cli(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_version(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0
    assert capsys.readouterr().out.startswith("eegkd-bench ")


def test_list_and_wildcards(capsys):
    code, out, _ = run_cli(capsys, "list", "distillers", "--json")
    assert code == 0
    rows = json.loads(out)
    assert {"kd", "dlink"} <= {r["name"] for r in rows}
    assert all(r["kind"] == "distiller" and r["plugin"] and r["description"] for r in rows)
    code, out, _ = run_cli(capsys, "list", "students", "eeg*", "--json")
    assert code == 0 and {r["name"] for r in json.loads(out)} >= {"eegnet", "eegconformer"}
    assert all(r["name"].startswith("eeg") for r in json.loads(out))


def test_plugins_json(capsys):
    code, out, _ = run_cli(capsys, "plugins", "--json")
    assert code == 0
    rows = {r["name"]: r for r in json.loads(out)}
    assert rows["kd"]["status"] == "loaded" and rows["kd"]["distribution"] == "eegkd-bench"


@pytest.mark.parametrize(
    "argv, expected",
    [
        (["run", "--methods", "dlnk"], "did you mean 'dlink'"),
        (["run", "--students", "egnet"], "did you mean 'eegnet'"),
        (["run", "--datasets", "sim-nope*"], "no dataset matches"),
        (["run", "--seeds", "a,b"], "invalid --seeds 'a,b'"),
        (["run", "--jobs", "0"], "invalid --jobs 0"),
        (["run", "--slurm-gpus", "-1"], "invalid --slurm-gpus -1"),
        (["run", "--device", "tpu"], "invalid --device 'tpu'"),
        (["run", "--executor", "slurm"], "--slurm-partition"),
        (["run", "--jobs", "2", "--executor", "submitit-local"], "conflicts with --executor"),
        (["run", "--methods", ","], "empty distiller selection"),
        (["run", "--bogus"], "unrecognized arguments: --bogus"),
        (["list", "students", "zzz*"], "matches 'zzz*'"),
    ],
)
def test_user_errors_exit_2_with_one_line(capsys, tmp_path, argv, expected):
    code, out, err = run_cli(capsys, *argv, *(["--results", str(tmp_path / "r")] if argv[0] == "run" else []))
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("eegkd-bench: error: ") and expected in lines[0]
    assert "Traceback" not in err


def test_missing_and_incompatible_results_dirs(capsys, tmp_path):
    code, _, err = run_cli(capsys, "leaderboard", "--results", str(tmp_path / "nope"))
    assert code == 2 and "does not exist" in err
    old = tmp_path / "old"
    (old / "cells").mkdir(parents=True)
    (old / "store.json").write_text(json.dumps({"schema_version": 999}))
    (old / "cells" / "abc.json").write_text("{}")
    before = sorted(p.name for p in old.rglob("*"))
    code, _, err = run_cli(capsys, "leaderboard", "--results", str(old))
    assert code == 2 and "schema version 999" in err and len(err.strip().splitlines()) == 1
    code, _, err = run_cli(capsys, "run", "--results", str(old), "--datasets", "sim-mi")
    assert code == 2 and "schema version 999" in err
    assert sorted(p.name for p in old.rglob("*")) == before  # nothing stored was touched


def test_unwritable_results_dir(capsys, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    code, _, err = run_cli(capsys, "run", "--results", str(blocker / "sub"), "--datasets", "sim-mi")
    assert code == 2 and "cannot write results directory" in err
