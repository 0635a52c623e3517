"""The repo stands alone: no tracked file reads or cites a path outside it.

A user's fresh clone has nothing beside it, so a test that opened a reference file next to
the repo, or a doc that pointed there, would fail or mislead them. The rules the
orchestrator keeps live in docs/contract.md, the response shapes the swagger test checks in
tests/emulator/sesam_response_shapes.json."""
from __future__ import annotations

import subprocess
from pathlib import Path

from repo_root import ROOT

# Spelled in pieces so this file does not match itself.
OUTSIDE = ("../" + "shared", "/" + "work/", "/" + "home/", "/" + "tmp/h/")


def _tracked_text_files() -> list[Path]:
    names = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True,
                           check=True).stdout.split()
    return [ROOT / n for n in names if (ROOT / n).is_file() and not (ROOT / n).is_symlink()]


def test_no_tracked_file_names_a_path_outside_the_repo() -> None:
    files = _tracked_text_files()
    assert len(files) > 50, "git ls-files found too few files to prove anything"
    cited = []
    for path in files:
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue                      # binary files cite nothing
        cited += [f"{path.relative_to(ROOT)}: {word}" for word in OUTSIDE if word in text]
    assert cited == []


def test_the_contract_the_docs_cite_is_in_the_repo() -> None:
    contract = (ROOT / "docs" / "contract.md").read_text(encoding="utf-8")
    for section in range(1, 9):
        assert f"\n## {section}. " in contract
    assert "docs/contract.md" in (ROOT / "docs" / "design.md").read_text(encoding="utf-8")
