"""Issue 14, point 1: one version, written in service/version.py, shown everywhere an
operator looks (/status, /metrics, the page, --version) and named by the README's image."""
from __future__ import annotations

import json
import re
import subprocess
import sys

from repo_root import ROOT
from service.version import __version__
from stand_in_run import make


def test_the_version_is_a_release_number_written_once():
    assert re.fullmatch(r"\d+\.\d+\.\d+", __version__)
    holders = [p.relative_to(ROOT).as_posix() for p in (ROOT / "service").rglob("*.py")
               if __version__ in p.read_text()]
    assert holders == ["service/version.py"]


def test_version_flag_prints_it_and_contacts_nothing():
    done = subprocess.run([sys.executable, "-m", "service", "--version"], cwd=ROOT,
                          env={"PATH": "/usr/bin:/bin"}, capture_output=True, text=True,
                          timeout=60)
    assert (done.returncode, done.stdout.strip()) == (0, f"python -m service {__version__}")


def test_status_metrics_and_page_show_it():
    client, _, _ = make()
    assert client.get("/status").json["version"] == __version__
    metrics = client.get("/metrics").text
    assert f'sesam_orchestrator_build_info{{version="{__version__}"}} 1.0' in metrics
    assert re.search(rf'id="version">{re.escape(__version__)}<', client.get("/").text)


def test_the_changelog_starts_with_this_release():
    lines = (ROOT / "CHANGELOG.rst").read_text().splitlines()
    headings = [line for i, line in enumerate(lines[1:], 1)
                if re.fullmatch(r"=+", lines[i + 1] if i + 1 < len(lines) else "")
                and line and not line.startswith("=")]
    assert headings[1].startswith(f"{__version__} "), headings


def test_the_readme_s_sesam_config_names_the_image_it_explains_how_to_build():
    readme = (ROOT / "README.rst").read_text()
    block = readme[readme.index('"_id": "orchestrator-microservice"') - 10:]
    config = json.loads(block[:block.index("\n\n")].strip().replace("\n    ", "\n"))
    image = config["docker"]["image"]
    assert image.endswith(f"/sesam-orchestrator:{__version__}")
    assert "orchestrator-1.0" not in readme.split("Upgrading from orchestrator 1.0")[0]
    assert f'IMAGE={image.rsplit(":", 1)[0]}' in readme
    for step in ('docker build -t "$IMAGE:$VERSION" .', 'docker push "$IMAGE:$VERSION"'):
        assert step in readme
