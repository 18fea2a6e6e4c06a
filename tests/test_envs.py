"""Conda environments (envs/*.yaml): every rule names one, every env parses, and the versions in
the envs agree with the venv's pins in requirements.txt / requirements-nodeps.txt.

The rules come from Snakemake itself (its API loads the workflow in a subprocess), so a rule added
in any rules/*.smk is checked without editing this file. What an env must contain is read from the
code its rules run: the rule's script, the `danqing` modules it imports (transitively, lazy imports
included) and the third-party distributions those import. conda cannot reach its channels here, so
this checks structure and pins, not that the envs solve.
"""

from __future__ import annotations

import ast
import functools
import importlib.metadata
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import ROOT, make_workdir

ENVS = ROOT / "envs"
KINDS = ("text", "image", "gpu", "report")
# conda-forge names of packages that PyPI names otherwise.
CONDA_TO_PYPI = {"pytorch": "torch", "matplotlib-base": "matplotlib", "brotli-python": "brotli"}
PIN = re.compile(r"^([A-Za-z0-9_.\-]+)==([^\s;#]+)")
CONDA_PIN = re.compile(r"^([A-Za-z0-9_.\-]+)\s*(?:==?)\s*([^\s=]+)$")

_RULES_SCRIPT = r"""
import json, sys
from pathlib import Path
from snakemake.api import SnakemakeApi
from snakemake.settings.types import ConfigSettings, OutputSettings, ResourceSettings

configfiles = [Path(p) for p in sys.argv[1:]]
with SnakemakeApi(OutputSettings()) as api:
    workflow = api.workflow(ResourceSettings(), ConfigSettings(configfiles=configfiles),
                            snakefile=Path("Snakefile"), workdir=Path("."))._workflow
    rules = {}
    for rule in workflow.rules:
        base = Path(str(rule.basedir))
        rules[rule.name] = {
            "conda": str((base / str(rule.conda_env)).resolve()) if rule.conda_env else None,
            "script": str((base / str(rule.script)).resolve()) if rule.script else None,
            "shell": rule.shellcmd,
            "norun": bool(rule.norun),
            "group": rule.group if isinstance(rule.group, str) else None,
            "step": step if isinstance(step := getattr(rule.params, "step", None), str) else None,
            # Plain values (Snakemake wraps each in a Resource); a callable's is only named.
            "resources": {
                k: raw if isinstance(raw := getattr(v, "raw", v), (int, str)) else "<callable>"
                for k, v in rule.resources.items()
                if not k.startswith("_")
            },
        }
print("RULES-JSON " + json.dumps(rules))
"""


@functools.cache
def workflow_rules(tmp_root: str) -> dict[str, dict]:
    """Rule name -> conda env, script, shell command, ... as Snakemake parsed the workflow."""
    workdir = make_workdir(Path(tmp_root) / "rules-wf")
    proc = subprocess.run(
        [sys.executable, "-c", _RULES_SCRIPT],
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=300,
    )
    line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("RULES-JSON ")), None)
    if proc.returncode != 0 or line is None:
        raise AssertionError(
            f"loading the workflow failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
        )
    return json.loads(line.removeprefix("RULES-JSON "))


@pytest.fixture(scope="module")
def rules(tmp_path_factory):
    return workflow_rules(str(tmp_path_factory.mktemp("rules")))


def normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def requirement_pins() -> dict[str, str]:
    pins = {}
    for path in (ROOT / "requirements.txt", ROOT / "requirements-nodeps.txt"):
        for line in path.read_text().splitlines():
            if match := PIN.match(line.strip()):
                pins[normalise(match.group(1))] = match.group(2)
    return pins


def nodeps_names() -> set[str]:
    return {
        normalise(m.group(1))
        for line in (ROOT / "requirements-nodeps.txt").read_text().splitlines()
        if (m := PIN.match(line.strip()))
    }


def env_pins(path: Path) -> dict[str, str]:
    """PyPI name -> version of every pinned package of an env file and its post-deploy script."""
    env = yaml.safe_load(path.read_text())
    pins: dict[str, str] = {}
    for dep in env["dependencies"]:
        if isinstance(dep, dict):
            for line in dep.get("pip", []):
                if match := PIN.match(line.strip()):
                    pins[normalise(match.group(1))] = match.group(2)
        elif (match := CONDA_PIN.match(dep.strip())) and match.group(1) != "python":
            name = CONDA_TO_PYPI.get(match.group(1), match.group(1))
            pins[normalise(name)] = match.group(2)
    deploy = path.with_name(path.stem + ".post-deploy.sh")
    if deploy.exists():
        for token in deploy.read_text().split():
            if match := PIN.match(token.strip("'\"")):
                pins[normalise(match.group(1))] = match.group(2)
    return pins


# ---- what the code a rule runs imports ----------------------------------------------------------


@functools.cache
def _imports(path: Path) -> tuple[set[str], set[str]]:
    """(modules imported when `path` is imported, modules imported anywhere in it), as absolute
    names; importlib.import_module("x") counts as an import."""
    tree = ast.parse(path.read_text(), str(path))
    # danqing/a/b.py and danqing/a/__init__.py both sit in package danqing.a
    package = ".".join(path.relative_to(ROOT).parts[:-1]) if path.is_relative_to(ROOT) else ""

    def names_of(node) -> set[str]:
        if isinstance(node, ast.Import):
            return {alias.name for alias in node.names}
        if isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                anchor = parts[: len(parts) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            return {base, *(f"{base}.{alias.name}" for alias in node.names)}
        if (
            isinstance(node, ast.Call)
            and getattr(node.func, "attr", None) == "import_module"
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            return {node.args[0].value}
        return set()

    everywhere = {name for node in ast.walk(tree) for name in names_of(node) if name}
    at_import: set[str] = set()
    todo = list(tree.body)
    while todo:  # module level, including inside module-level if/try blocks
        node = todo.pop()
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)):
            continue
        at_import |= names_of(node)
        todo.extend(ast.iter_child_nodes(node))
    return {n for n in at_import if n}, everywhere


def _danqing_file(module: str) -> Path | None:
    path = ROOT.joinpath(*module.split("."))
    if (path / "__init__.py").exists():
        return path / "__init__.py"
    if path.with_suffix(".py").exists():
        return path.with_suffix(".py")
    return None


def third_party_imports(*entries: Path) -> set[str]:
    """Top-level third-party modules that running `entries` needs: every import (lazy ones too) in
    the entries and in the danqing modules they import when imported. danqing modules imported
    only inside functions are not followed: whether they run depends on the call."""
    seen: set[Path] = set()
    todo = list(entries)
    found: set[str] = set()
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        at_import, everywhere = _imports(path)
        follow = everywhere if path in entries else at_import
        for module in everywhere | follow:
            top = module.split(".")[0]
            if top == "danqing":
                if module not in follow:
                    continue
                parts = module.split(".")
                for end in range(1, len(parts) + 1):  # the package __init__s run too
                    if (file := _danqing_file(".".join(parts[:end]))) is not None:
                        todo.append(file)
            elif top not in sys.stdlib_module_names and top not in ("snakemake", "__future__"):
                found.add(top)
    return found


def rule_entry_points(rule: dict) -> list[Path]:
    """The files a rule's job runs: its script, `python -m danqing.x` modules of its shell command,
    and for the generic per-shard script, the module of its step's filter function."""
    entries = []
    if rule["script"]:
        entries.append(Path(rule["script"]))
    for module in re.findall(r"-m\s+(danqing[\w.]*)", rule["shell"] or ""):
        if (file := _danqing_file(module)) is not None:
            entries.append(file)
    if rule.get("step"):
        from danqing.filters import registry

        function = registry().get(rule["step"])
        if function is not None and (file := _danqing_file(function.__module__)) is not None:
            entries.append(file)
    return entries


@functools.cache
def _distributions() -> dict[str, list[str]]:
    return importlib.metadata.packages_distributions()


def needed_distributions(rule: dict) -> set[str]:
    dists = _distributions()
    needed = set()
    for module in third_party_imports(*rule_entry_points(rule)):
        if module not in dists:
            raise AssertionError(
                f"{rule['script']} needs {module}, which no installed package provides"
            )
        needed.update(normalise(d) for d in dists[module])
    return needed


# ---- tests --------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_env_parses_with_conda_forge_and_python_311(kind):
    env = yaml.safe_load((ENVS / f"{kind}.yaml").read_text())
    assert env["name"] == f"danqing-{kind}"
    assert env["channels"] == ["conda-forge"], "conda-forge only (defaults mixes ABIs)"
    deps = env["dependencies"]
    assert "python=3.11" in deps
    assert "pip" in deps or any(isinstance(d, str) and d.startswith("pip=") for d in deps)
    for dep in deps:
        if isinstance(dep, dict):
            assert set(dep) == {"pip"}, dep
            for line in dep["pip"]:
                assert PIN.match(line), f"{kind}: pip entry not pinned with ==: {line}"
        else:
            assert dep == "pip" or CONDA_PIN.match(dep), f"{kind}: unpinned conda package {dep}"


@pytest.mark.parametrize("kind", KINDS)
def test_env_pins_agree_with_requirements(kind):
    pins = requirement_pins()
    for name, version in env_pins(ENVS / f"{kind}.yaml").items():
        assert name in pins, f"envs/{kind}.yaml pins {name}, which requirements*.txt do not"
        assert version == pins[name], (
            f"envs/{kind}.yaml: {name}={version}, requirements: {pins[name]}"
        )


@pytest.mark.parametrize("kind", KINDS)
def test_nodeps_packages_install_without_dependencies(kind):
    """--no-deps packages never sit where conda or pip would resolve their dependencies."""
    env = yaml.safe_load((ENVS / f"{kind}.yaml").read_text())
    listed = {
        normalise(PIN.match(line).group(1))
        for dep in env["dependencies"]
        if isinstance(dep, dict)
        for line in dep["pip"]
    }
    listed |= {
        normalise(CONDA_TO_PYPI.get(d.split("=")[0], d.split("=")[0]))
        for d in env["dependencies"]
        if isinstance(d, str)
    }
    assert not listed & nodeps_names(), f"envs/{kind}.yaml resolves {listed & nodeps_names()}"
    deploy = ENVS / f"{kind}.post-deploy.sh"
    if deploy.exists():
        assert "--no-deps" in deploy.read_text()


def test_every_rule_that_runs_code_names_an_env(rules):
    envs = {str((ENVS / f"{kind}.yaml").resolve()) for kind in KINDS}
    for name, rule in rules.items():
        if rule["norun"]:
            continue  # a target rule such as `all` runs nothing
        assert rule["conda"], f"rule {name} has no conda: directive"
        assert rule["conda"] in envs, f"rule {name}: {rule['conda']} is not one of envs/*.yaml"


def test_each_env_holds_what_its_rules_import(rules):
    pins = requirement_pins()
    missing = []
    for name, rule in sorted(rules.items()):
        if rule["norun"] or not rule["conda"]:
            continue
        env_file = Path(rule["conda"])
        have = env_pins(env_file)
        for dist in sorted(needed_distributions(rule)):
            if dist not in pins:
                missing.append(f"rule {name}: imports {dist}, which requirements*.txt do not pin")
            elif dist not in have:
                missing.append(f"rule {name}: envs/{env_file.name} lacks {dist}=={pins[dist]}")
    assert not missing, "\n".join(missing)


def test_the_import_scan_follows_a_filter_step_to_its_libraries():
    rule = {
        "script": str(ROOT / "scripts" / "filter_shard.py"),
        "shell": None,
        "step": "font_conversion",
    }
    found = third_party_imports(*rule_entry_points(rule))
    # danqing.filters.text imports jieba through danqing.chinese_text, opencc lazily, cn_clip dynamically
    assert {"polars", "jieba", "opencc", "regex", "cn_clip"} <= found, found
    assert "torch" not in found and "cv2" not in found, found
