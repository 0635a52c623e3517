"""service/ is in layers, and the core does no I/O (contracts in .importlinter).

`lint-imports` follows every chain of imports, so the core cannot reach `requests` through a
module of another layer either. What the layers are: docs/design.md, "Layout"."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from repo_root import ROOT

LINT = Path(sys.executable).parent / "lint-imports"


def _lint(config: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(LINT), "--config", str(config), "--no-cache"], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)


def test_every_import_keeps_to_its_layer() -> None:
    done = _lint(ROOT / ".importlinter")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert "2 kept, 0 broken" in done.stdout


def test_the_linter_fails_a_contract_the_tree_breaks(tmp_path: Path) -> None:
    # The linter reads the real tree; a contract that forbids what the core does import
    # (its own names module) proves the check is live, not vacuously green.
    config = tmp_path / "probe.ini"
    config.write_text("[importlinter]\nroot_package = service\ninclude_external_packages = True\n\n"
                      "[importlinter:contract:probe]\nname = probe\ntype = forbidden\n"
                      "source_modules =\n    service.core.planner\n"
                      "forbidden_modules =\n    service.core.names\n")
    done = _lint(config)
    assert done.returncode == 1 and "0 kept, 1 broken" in done.stdout, done.stdout[-2000:]
