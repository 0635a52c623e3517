"""The Docker image, the CI file and the service's imports agree with each other."""
from __future__ import annotations

import ast
import fnmatch
import re
import sys
from importlib.metadata import PackageNotFoundError, packages_distributions, requires

import yaml
from packaging.requirements import Requirement

from dockerfile import dockerfile, healthcheck_command
from repo_root import ROOT


def test_image_is_slim_non_root_and_runs_the_service() -> None:
    steps = dockerfile()
    instructions = [i for i, _ in steps]
    assert steps[0] == ("FROM", "python:3.11-slim")
    assert ("EXPOSE", "5000") in steps
    assert steps[-1] == ("CMD", '["python", "-m", "service"]')
    user = [a for i, a in steps if i == "USER"]
    assert user and user[-1] not in ("root", "0")
    # The user switch comes after every install step and before the command.
    assert instructions.index("USER") > max(k for k, i in enumerate(instructions) if i == "RUN")
    assert ("RUN", "pip install -r requirements.txt") in steps
    assert healthcheck_command()[:2] == ["python", "-c"]


def test_everything_the_image_copies_is_in_the_build_context() -> None:
    ignored = [p.strip() for p in (ROOT / ".dockerignore").read_text().splitlines()
               if p.strip() and not p.startswith("#")]
    for instruction, args in dockerfile():
        if instruction != "COPY":
            continue
        for source in args.split()[:-1]:
            source = source.rstrip("/")
            assert (ROOT / source).exists(), source
            assert not any(fnmatch.fnmatch(source, pattern) for pattern in ignored), source
    # What the tests and the emulator need never ships.
    for excluded in (".git", ".venv", "tests", "emulator", "requirements-test.txt"):
        assert excluded in ignored


def _name(requirement: str) -> str:
    return re.split(r"[=<>~!;\[ (]", requirement.strip())[0].lower().replace("_", "-")


def installed_with(names: set[str]) -> set[str]:
    """The distributions `pip install` of `names` brings, dependencies included."""
    seen: set[str] = set()
    todo = list(names)
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        try:
            deps = requires(name) or []
        except PackageNotFoundError:
            continue
        for dep in map(Requirement, deps):
            # Only what installs here: not extras, not other platforms' or Pythons' needs.
            if dep.marker is None or dep.marker.evaluate({"extra": ""}):
                todo.append(_name(dep.name))
    return seen


def test_service_imports_only_the_standard_library_and_requirements() -> None:
    pinned = installed_with({_name(line) for line in (ROOT / "requirements.txt").read_text()
                             .splitlines() if line.strip() and not line.startswith("#")})
    dists = packages_distributions()
    for path in sorted((ROOT / "service").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                if top in sys.stdlib_module_names or top == "service":
                    continue
                owners = {d.lower().replace("_", "-") for d in dists.get(top, [])}
                assert owners & pinned, f"{path.name} imports {top}, not in requirements.txt"


def test_ci_runs_the_same_command_as_developers() -> None:
    travis = yaml.safe_load((ROOT / ".travis.yml").read_text())
    assert travis["language"] == "python" and travis["python"] == ["3.11"]
    assert travis["script"] == ".ci/run"
    assert "make test" in (ROOT / ".ci" / "run").read_text()
