"""Plugin discovery, isolation, selection, duplicates and registry lookups."""
from __future__ import annotations

import warnings

import pytest

from eegkd_bench import hookimpl
from eegkd_bench.api import Distiller, UserError
from eegkd_bench.plugins import PluginHost, PluginWarning
from eegkd_bench.registry import Entry, Registry, unknown_message
from plugin_fakes import BROKEN_IMPORT, BROKEN_REGISTER, DUPLICATE_KD, GOOD_DISTILLER, make_distribution

BUILTIN_DISTILLERS = {"none", "kd", "fitnets", "rkd", "dlink"}


def _host(monkeypatch, tmp_path, env=None, **dists):
    for name, (modules, eps) in dists.items():
        make_distribution(tmp_path / name, name, "1.2.3", modules, eps)
        monkeypatch.syspath_prepend(str(tmp_path / name))
    if env is None:
        monkeypatch.delenv("EEGKD_LOAD_PLUGINS", raising=False)
    else:
        monkeypatch.setenv("EEGKD_LOAD_PLUGINS", env)
    host = PluginHost()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        host.load_entry_points()
    return host, [str(w.message) for w in caught if issubclass(w.category, PluginWarning)]


def test_builtins_are_found_through_entry_points(monkeypatch, tmp_path):
    host, _ = _host(monkeypatch, tmp_path)
    builtin = {n: p for n, p in host.plugins.items() if p.builtin}
    assert {"kd", "dlink", "simulated", "students", "cbramod"} <= set(builtin)
    assert all(p.distribution == "eegkd-bench" for p in builtin.values())
    assert BUILTIN_DISTILLERS <= set(host.registry.names("distillers"))
    assert host.registry.get("distillers", "kd").plugin == "kd"


def test_third_party_plugin_is_loaded_like_a_builtin(monkeypatch, tmp_path):
    host, _ = _host(monkeypatch, tmp_path, **{"eegkd-echo": ({"echo_plugin": GOOD_DISTILLER}, {"echo": "echo_plugin"})})
    info = host.plugins["echo"]
    assert (info.status, info.distribution, info.version, info.builtin) == ("loaded", "eegkd-echo", "1.2.3", False)
    assert host.registry.get("distillers", "echo-kd").description == "a third-party distiller"
    assert host.registry.get("distillers", "echo-kd").distribution == "eegkd-echo 1.2.3"  # part of its cell keys


def test_broken_plugins_are_isolated(monkeypatch, tmp_path):
    host, warned = _host(
        monkeypatch, tmp_path,
        **{"eegkd-bad-import": ({"bad_import": BROKEN_IMPORT}, {"bad_import": "bad_import"}),
           "eegkd-bad-register": ({"bad_register": BROKEN_REGISTER}, {"bad_register": "bad_register"})},
    )
    assert host.plugins["bad_import"].status == "failed"
    assert "this plugin is broken on purpose" in host.plugins["bad_import"].error
    assert host.plugins["bad_register"].status == "failed"
    assert "registration exploded" in host.plugins["bad_register"].error
    assert any("bad_import" in w for w in warned) and any("bad_register" in w for w in warned)
    assert all("\n" not in w for w in warned)
    # everything else still loads
    assert BUILTIN_DISTILLERS <= set(host.registry.names("distillers"))
    assert not host.registry.conflicts


def test_env_selects_external_plugins(monkeypatch, tmp_path):
    dists = {"eegkd-echo": ({"echo_plugin": GOOD_DISTILLER}, {"echo": "echo_plugin"}),
             "eegkd-bad-import": ({"bad_import": BROKEN_IMPORT}, {"bad_import": "bad_import"})}
    host, warned = _host(monkeypatch, tmp_path, env="echo", **dists)
    assert host.plugins["echo"].status == "loaded"
    assert host.plugins["bad_import"].status == "not loaded"
    assert not any("bad_import" in w for w in warned)
    host, _ = _host(monkeypatch, tmp_path, env="", **dists)
    assert host.plugins["echo"].status == "not loaded"
    assert "echo-kd" not in host.registry.names("distillers")
    assert BUILTIN_DISTILLERS <= set(host.registry.names("distillers"))  # built-ins always load


def test_duplicate_names_are_an_error_naming_both(monkeypatch, tmp_path):
    host, _ = _host(monkeypatch, tmp_path, **{"eegkd-dup": ({"dup_kd": DUPLICATE_KD}, {"dup_kd": "dup_kd"})})
    with pytest.raises(UserError) as err:
        host.registry.check_conflicts()
    assert "'kd'" in str(err.value) and "'dup_kd'" in str(err.value)


def test_in_process_plugin_object():
    class Plugin:
        @hookimpl
        def eegkd_register_distillers(self, register):
            register("tiny", Distiller, description="tiny")

    host = PluginHost()
    host.register_plugin(Plugin(), "tiny-plugin")
    assert host.registry.names("distillers") == ["tiny"]


def test_a_plugin_registers_variants_and_a_bad_registration_is_isolated():
    class Plugin:
        @hookimpl
        def eegkd_register_distillers(self, register):
            register("tiny", Distiller, description="tiny")
            register("tiny-x", base="tiny", options={}, description="a variant")

    class Bad:
        @hookimpl
        def eegkd_register_distillers(self, register):
            register("nothing")  # neither a factory nor a base

    host = PluginHost()
    host.register_plugin(Plugin(), "tiny-plugin")
    assert host.registry.get("distillers", "tiny-x").factory is Distiller
    assert host.registry.get("distillers", "tiny-x").base == "tiny"
    with pytest.warns(PluginWarning, match="either a factory or base"):
        info = host.register_plugin(Bad(), "bad-plugin")
    assert info.status == "failed" and "nothing" not in host.registry.names("distillers")


def _registry(*names):
    reg = Registry()
    for n in names:
        reg.add(Entry("students", n, object, "p"))
    return reg


def test_wildcards_and_selection():
    reg = _registry("eegnet", "eegconformer", "shallowconvnet", "deepconvnet")
    assert [e.name for e in reg.entries("students", "eeg*")] == ["eegconformer", "eegnet"]
    assert reg.select("students", "eegnet,*convnet") == ["eegnet", "deepconvnet", "shallowconvnet"]
    assert reg.select("students", "all") == sorted(["eegnet", "eegconformer", "shallowconvnet", "deepconvnet"])
    with pytest.raises(UserError, match="no student matches 'xyz\\*'"):
        reg.select("students", "xyz*")
    with pytest.raises(UserError, match="empty student selection"):
        reg.select("students", " , ")


def test_unknown_names_suggest():
    reg = _registry("eegnet", "eegconformer")
    with pytest.raises(UserError) as err:
        reg.get("students", "egnet")
    assert str(err.value) == "unknown student 'egnet'; did you mean 'eegnet'? see eegkd-bench list students"
    assert unknown_message("distillers", "zzz", ["kd"]) == "unknown distiller 'zzz'; see eegkd-bench list distillers"


OPTIONAL_PLUGIN = '''
from eegkd_bench.api import PluginUnavailable
raise PluginUnavailable("somelib is not installed; pip install 'eegkd-bench[somelib]'")
'''

WRAPPING_PLUGIN = '''
from eegkd_bench import hookimpl

@hookimpl
def eegkd_register_students(register):
    register("zoo-net", object, description="a wrapped model", wraps="zoolib 9.1", opt_in=True)
    register("zoo-broken", object, description="cannot serve", unavailable="needs electrode positions", opt_in=True)
'''


def test_a_plugin_whose_optional_package_is_missing_is_listed_unavailable_without_a_warning(monkeypatch, tmp_path):
    host, warned = _host(monkeypatch, tmp_path, **{"eegkd-opt": ({"opt_plugin": OPTIONAL_PLUGIN}, {"opt": "opt_plugin"})})
    assert host.plugins["opt"].status == "unavailable"
    assert "pip install 'eegkd-bench[somelib]'" in host.plugins["opt"].error
    assert not any("opt" in w for w in warned)


def test_wrapped_models_name_their_library_and_unavailable_ones_say_why(monkeypatch, tmp_path):
    host, _ = _host(monkeypatch, tmp_path, **{"eegkd-zoo": ({"zoo_plugin": WRAPPING_PLUGIN}, {"zoo": "zoo_plugin"})})
    reg = host.registry
    assert reg.get("students", "zoo-net").distribution == "eegkd-zoo 1.2.3 + zoolib 9.1"
    with pytest.raises(UserError, match="student 'zoo-broken' is unavailable: needs electrode positions"):
        reg.get("students", "zoo-broken")
    assert [e.name for e in reg.entries("students", "zoo-*")] == ["zoo-broken", "zoo-net"]  # listed
    assert reg.select("students", "zoo-*") == ["zoo-net"]  # a pattern takes the usable ones
    assert "zoo-net" not in reg.select("students", "all")  # opt-in: only by name or pattern
    with pytest.raises(UserError, match="unavailable"):
        reg.select("students", "zoo-broken")


def test_register_refuses_an_unknown_keyword_in_one_line():
    class Typo:
        @hookimpl
        def eegkd_register_distillers(self, register):
            register("typo", Distiller, description="typo", rol="baseline")

    host = PluginHost()
    with pytest.warns(PluginWarning, match=r"unknown keyword\(s\) \['rol'\]"):
        info = host.register_plugin(Typo(), "typo-plugin")
    assert info.status == "failed" and "typo" not in host.registry.names("distillers")


def test_the_plugins_table_shows_an_unavailable_plugins_install_hint_verbatim(monkeypatch, tmp_path, capsys):
    import eegkd_bench.plugins as plugins_module
    from eegkd_bench.cli import main

    host, _ = _host(monkeypatch, tmp_path, **{"eegkd-opt": ({"opt_plugin": OPTIONAL_PLUGIN}, {"opt": "opt_plugin"})})
    monkeypatch.setattr(plugins_module, "get_host", lambda **kw: host)
    monkeypatch.setenv("COLUMNS", "400")
    main(["plugins"])
    out = capsys.readouterr().out
    assert "pip install 'eegkd-bench[somelib]'" in out  # the brackets are text, not console markup
