"""Table of bad inputs: each gives a non-zero exit, one clear stderr line, no traceback, and leaves
earlier artifacts in the output directory untouched."""

from __future__ import annotations

import hashlib
import os
import pickle

import numpy as np
import pytest
import torch
from PIL import Image

from compress.models import create_model
from pipeline.cli import main
from pipeline.manifest import read_manifest
from tests.pipeline.conftest import TINY_ARCH

FAST = ["--data", "digits", "--train-limit", "64", "--test-limit", "32"]


class _Exploit:
    def __reduce__(self):
        return (os.system, ("touch /tmp/compress-bad-input-pickle-ran",))


def _files(tmp_path):
    """Bad inputs, created lazily inside the test's tmp directory."""
    root = tmp_path / "inputs"
    root.mkdir()
    lenet = create_model("lenet5").state_dict()
    torch.save(lenet, root / "lenet.pt")
    (root / "empty.pt").write_bytes(b"")
    (root / "random.pt").write_bytes(np.random.default_rng(0).bytes(4096))
    (root / "truncated.pt").write_bytes((root / "lenet.pt").read_bytes()[:5000])
    with open(root / "evil.pt", "wb") as handle:
        pickle.dump({"state_dict": _Exploit()}, handle)
    nan = {k: v.clone() for k, v in lenet.items()}
    nan["0.weight"][0, 0, 0, 0] = float("nan")
    torch.save(nan, root / "nan.pt")
    inf = {k: v.clone() for k, v in lenet.items()}
    inf["9.bias"][0] = float("inf")
    torch.save(inf, root / "inf.pt")
    tiny = {"state_dict": __import__("tests.pipeline.tiny", fromlist=["tiny_cnn"]).tiny_cnn().state_dict(), "arch": TINY_ARCH, "input_shape": [1, 8, 8]}
    torch.save(tiny, root / "tiny.pt")
    (root / "unknown-key.yaml").write_text("stages:\n  - use: prune\n    with: {sparsity: 0.5}\n")
    (root / "wrong-type.yaml").write_text("stages:\n  - use: prune\n    with: {epochs: many}\n")
    (root / "bad-yaml.yaml").write_text("stages: [{use: prune\n")
    (root / "unknown-stage.yaml").write_text("stages:\n  - use: distill\n")
    (root / "top-key.yaml").write_text("steps: []\n")
    np.savez(root / "empty.npz", x=np.zeros((0, 1, 8, 8)), y=np.zeros(0, dtype=np.int64))
    np.savez(root / "mislabelled.npz", x_train=np.zeros((5, 1, 8, 8)), y_train=np.zeros(4, dtype=np.int64), x_test=np.zeros((2, 1, 8, 8)), y_test=np.zeros(2, dtype=np.int64))
    np.savez(root / "negative.npz", x=np.zeros((10, 1, 8, 8)), y=-np.ones(10, dtype=np.int64))
    images = root / "images"
    for label in ("a", "b"):
        (images / label).mkdir(parents=True)
        for index in range(3):
            Image.fromarray(np.full((8, 8), 30 * index, dtype=np.uint8)).save(images / label / f"{index}.png")
    (images / "b" / "broken.png").write_bytes(b"\x89PNG broken")
    (root / "no-classes").mkdir()
    (root / "empty.onnx").write_bytes(b"")
    _det_onnx(root / "det.onnx")
    (root / "a-file").write_text("not a directory")
    _rce_bundle(root / "rce.pt", arch="subprocess:call", arch_kwargs={"args": ["touch", PWNED]})
    _rce_bundle(root / "rce-torchscript.pt", arch="torchscript:/etc/hostname", arch_kwargs={})
    torch.save({"state_dict": lenet, "arch": "subprocess:call"}, root / "rce-state-dict.pt")
    (root / "alias-bomb.yaml").write_text(_alias_bomb())
    (root / "duplicate-key.yaml").write_text("stages:\n  - use: prune\nstages:\n  - use: export\n")
    os.mkfifo(root / "data.fifo")
    nan_pixels = np.random.default_rng(0).random((20, 1, 8, 8)).astype(np.float32)
    nan_pixels[3, 0, 2, 2] = np.nan
    np.savez(root / "nan-pixel.npz", x=nan_pixels, y=np.arange(20) % 10)
    np.savez(root / "labels-too-large.npz", x=np.zeros((20, 1, 8, 8), np.float32), y=np.arange(20) % 10 + 40)
    np.savez(root / "strings.npz", x=np.full((20, 1, 8, 8), "a"), y=np.arange(20) % 10)
    np.savez(root / "complex.npz", x=np.ones((20, 1, 8, 8), np.complex64), y=np.arange(20) % 10)
    _bundle(root / "bad-quant.pt", quant=[1, 2])
    _bundle(root / "bad-plan.pt", channel_plans=[{"layers": 5}])
    _bundle(root / "huge-shape.pt", input_shape=(100000, 100000, 3))
    _external_data_onnx(root / "external.onnx", location="../../etc/passwd")
    _sparse_onnx(root / "sparse-huge.onnx", dims=[100000, 100000], indices=[0])
    _sparse_onnx(root / "sparse-negative.onnx", dims=[4, 3], indices=[-5])
    (root / "list-recipe.yaml").write_text("- use: prune\n")
    np.savez(root / "flat.npz", x=np.zeros((20, 64), np.float32), y=np.arange(20) % 10)
    return root


def _sparse_onnx(path, *, dims, indices):
    """An ONNX MatMul whose weight is a sparse initializer declaring ``dims`` with one value at ``indices``."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    graph = helper.make_graph([helper.make_node("MatMul", ["x", "w"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, dims[0]])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, dims[1]])])
    graph.sparse_initializer.append(helper.make_sparse_tensor(
        numpy_helper.from_array(np.ones(len(indices), np.float32), "w"),
        numpy_helper.from_array(np.array(indices, np.int64), "w_idx"), dims))
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))


def _bundle(path, **fields):
    from pipeline.model.bundle import ModelBundle, save_bundle

    values = {"arch": "lenet5", "input_shape": (1, 28, 28), "state_dict": {}, **fields}
    save_bundle(path, ModelBundle(**values))


def _external_data_onnx(path, *, location):
    """An ONNX model whose weight is external data at ``location`` (relative to its folder)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    weight = numpy_helper.from_array(np.ones((4, 3), np.float32), "w")
    weight.data_location = TensorProto.EXTERNAL
    weight.ClearField("raw_data")
    entry = weight.external_data.add()
    entry.key, entry.value = "location", location
    graph = helper.make_graph([helper.make_node("MatMul", ["x", "w"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3])], [weight])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))


PWNED = "/tmp/compress-bad-input-bundle-ran"


def _rce_bundle(path, *, arch, arch_kwargs):
    """A weights-only-loadable bundle whose architecture names code."""
    from pipeline.model.bundle import ModelBundle, save_bundle

    save_bundle(path, ModelBundle(arch=arch, arch_kwargs=arch_kwargs, input_shape=(1, 8, 8), state_dict={}))


def _alias_bomb() -> str:
    """About 600 bytes of YAML that expand to 10^9 list items through nested aliases."""
    lines = ['a0: &a0 ["x", "x", "x", "x", "x", "x", "x", "x", "x", "x"]']
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 9)]
    return "\n".join(lines) + "\nstages:\n  - use: export\n    with: {extra: *a8}\n"


def _det_onnx(path):
    """A valid ONNX model whose operator (Det) TVM's importer does not implement."""
    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("Det", ["x"], ["y"])], "det",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, 4, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 1])],
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))


CASES = [
    ("missing checkpoint", ["run", "{root}/nope.pt", "--arch", "lenet5"], "does not exist"),
    ("empty checkpoint", ["run", "{root}/empty.pt", "--arch", "lenet5"], "is empty"),
    ("random-bytes checkpoint", ["run", "{root}/random.pt", "--arch", "lenet5"], "not a readable PyTorch checkpoint"),
    ("truncated checkpoint", ["run", "{root}/truncated.pt", "--arch", "lenet5"], "not a readable PyTorch checkpoint"),
    ("code-executing pickle", ["run", "{root}/evil.pt", "--arch", "lenet5"], "--trust-pickle"),
    ("keys do not match arch", ["run", "{root}/lenet.pt", "--arch", "lenet300"], "does not match architecture 'lenet300'"),
    ("unknown arch", ["run", "{root}/lenet.pt", "--arch", "lenet9"], "unknown architecture 'lenet9'; allowed:"),
    ("state_dict without arch", ["run", "{root}/lenet.pt"], "pass --arch"),
    ("bad factory path", ["run", "{root}/lenet.pt", "--arch", "nosuch.module:make"], "cannot import architecture factory"),
    ("wrong input shape", ["run", "{root}/lenet.pt", "--arch", "lenet5", "--input-shape", "3,32,32"], "rejects input shape"),
    ("malformed input shape", ["run", "{root}/lenet.pt", "--arch", "lenet5", "--input-shape", "1,a,28"], "--input-shape must be integers"),
    ("NaN weights", ["run", "{root}/nan.pt", "--arch", "lenet5"], "0.weight holds NaN"),
    ("Inf weights", ["run", "{root}/inf.pt", "--arch", "lenet5"], "9.bias holds NaN or Inf"),
    ("unknown target", ["run", "{root}/tiny.pt", "--target", "tpu"], "unknown target 'tpu'; allowed: host, arm64"),
    ("unknown train method", ["train-sparse", "{root}/tiny.pt", "--method", "magic", *FAST], "allowed: admm"),
    ("unknown quantize method", ["quantize", "{root}/tiny.pt", "--method", "fp4", *FAST], "allowed: binary"),
    ("unknown prune pattern", ["prune", "{root}/tiny.pt", "--pattern", "diagonal", *FAST], "allowed: unstructured"),
    ("sparsity out of range", ["prune", "{root}/tiny.pt", "--sparsity-ratio", "1.5", *FAST], "sparsity-ratio must be in [0, 1)"),
    ("unsupported layer selected", ["quantize", "{root}/tiny.pt", "--include", "2", "--epochs", "0", *FAST], "matches no conv / linear layer"),
    ("unknown recipe key", ["run", "{root}/tiny.pt", "--recipe", "{root}/unknown-key.yaml", *FAST], "unknown key 'sparsity'"),
    ("recipe with wrong type", ["run", "{root}/tiny.pt", "--recipe", "{root}/wrong-type.yaml", *FAST], "expected an integer"),
    ("recipe invalid yaml", ["run", "{root}/tiny.pt", "--recipe", "{root}/bad-yaml.yaml"], "invalid YAML"),
    ("recipe unknown stage", ["run", "{root}/tiny.pt", "--recipe", "{root}/unknown-stage.yaml"], "unknown stage 'distill'"),
    ("recipe unknown top key", ["run", "{root}/tiny.pt", "--recipe", "{root}/top-key.yaml"], "unknown key 'steps'"),
    ("recipe missing", ["run", "{root}/tiny.pt", "--recipe", "{root}/none.yaml"], "cannot read recipe"),
    ("empty data", ["train-sparse", "{root}/tiny.pt", "--data", "{root}/empty.npz"], "split is empty"),
    ("mislabelled data", ["train-sparse", "{root}/tiny.pt", "--data", "{root}/mislabelled.npz"], "5 inputs but 4 labels"),
    ("negative labels", ["train-sparse", "{root}/tiny.pt", "--data", "{root}/negative.npz"], "labels must be non-negative"),
    ("unreadable image", ["train-sparse", "{root}/tiny.pt", "--data", "{root}/images"], "unreadable image"),
    ("image folder without classes", ["train-sparse", "{root}/tiny.pt", "--data", "{root}/no-classes"], "no class sub-folders"),
    ("unknown data spec", ["train-sparse", "{root}/tiny.pt", "--data", "imagenet"], "unknown data 'imagenet'"),
    ("output directory not writable", ["train-sparse", "{root}/tiny.pt", "--out", "{root}/a-file/run", *FAST], "is not writable"),
    ("unknown --until stage", ["run", "{root}/tiny.pt", "--until", "distill", *FAST], "--until 'distill' is not a stage"),
    ("negative threads", ["run", "{root}/tiny.pt", "--threads", "-1", *FAST], "--threads must be >= 0"),
    ("empty ONNX to compile", ["compile", "{root}/empty.onnx", "--target", "host"], "is empty"),
    ("ONNX operator TVM cannot import", ["compile", "{root}/det.onnx", "--target", "host"], "(Det, opset 17): TVM's ONNX importer has no converter"),
    ("verify a non-run directory", ["verify", "{root}"], "not a run directory"),
    ("report a non-run directory", ["report", "{root}"], "not a run directory"),
    ("bundle naming subprocess:call", ["train-sparse", "{root}/rce.pt", *FAST], "'subprocess:call', which is not registered"),
    ("bundle naming a torchscript file", ["run", "{root}/rce-torchscript.pt", *FAST], "'torchscript:/etc/hostname', which is not registered"),
    ("state_dict naming subprocess:call", ["run", "{root}/rce-state-dict.pt", *FAST], "'subprocess:call', which is not registered"),
    ("recipe with YAML aliases", ["run", "{root}/tiny.pt", "--recipe", "{root}/alias-bomb.yaml"], "aliases (*name) are not allowed"),
    ("recipe with a duplicate key", ["run", "{root}/tiny.pt", "--recipe", "{root}/duplicate-key.yaml"], "duplicate key 'stages'"),
    ("FIFO as data", ["train-sparse", "{root}/tiny.pt", "--data", "{root}/data.fifo"], "not a regular file or directory"),
    ("NaN pixel in the data", ["train-sparse", "{root}/tiny.pt", "--data", "{root}/nan-pixel.npz"], "hold NaN or Inf after preprocessing"),
    ("zero --std", ["train-sparse", "{root}/tiny.pt", "--std", "0", *FAST], "--std must be finite positive numbers"),
    ("NaN --scale", ["train-sparse", "{root}/tiny.pt", "--scale", "nan", *FAST], "--scale must be a finite non-zero number"),
    ("labels beyond the model's outputs", ["train-sparse", "{root}/tiny.pt", "--data", "{root}/labels-too-large.npz"], "the model has 10 outputs"),
    ("string-typed npz", ["train-sparse", "{root}/tiny.pt", "--data", "{root}/strings.npz"], "must be real numbers"),
    ("complex-valued npz", ["train-sparse", "{root}/tiny.pt", "--data", "{root}/complex.npz"], "must be real numbers"),
    ("batch size 0", ["train-sparse", "{root}/tiny.pt", "--batch-size", "0", *FAST], "batch-size must be >= 1"),
    ("negative learning rate", ["train-sparse", "{root}/tiny.pt", "--lr", "-1", *FAST], "lr must be a positive finite number"),
    ("--mean with more channels than the data", ["train-sparse", "{root}/tiny.pt", "--mean", "0.1,0.2", *FAST], "--mean has 2 values"),
    ("bundle with a malformed quant record", ["train-sparse", "{root}/bad-quant.pt", *FAST], "quant must hold records"),
    ("bundle with a malformed channel plan", ["train-sparse", "{root}/bad-plan.pt", *FAST], "malformed channel plan"),
    ("bundle declaring a huge input shape", ["train-sparse", "{root}/huge-shape.pt", *FAST], "values per sample (the limit)"),
    ("huge --input-shape", ["run", "{root}/lenet.pt", "--arch", "lenet5", "--input-shape", "100000,100000,3"], "values per sample (the limit)"),
    ("ONNX external data outside its folder", ["compile", "{root}/external.onnx", "--target", "host"], "is not a file inside"),
    ("NaN accuracy budget", ["run", "{root}/tiny.pt", "--max-accuracy-drop", "nan", *FAST], "--max-accuracy-drop must be a finite"),
    ("sparse ONNX declaring 10^10 elements", ["compile", "{root}/sparse-huge.onnx", "--target", "host"], "exceeds"),
    ("sparse ONNX with negative indices", ["compile", "{root}/sparse-negative.onnx", "--target", "host"], "indices outside"),
    ("--std with more channels than the data", ["train-sparse", "{root}/tiny.pt", "--std", "0.3,0.4", *FAST], "--std has 2 values"),
    ("negative --input-shape", ["run", "{root}/lenet.pt", "--arch", "lenet5", "--input-shape", "1,-28,28"], "--input-shape"),
    ("recipe that is a list", ["run", "{root}/tiny.pt", "--recipe", "{root}/list-recipe.yaml"], "recipe"),
    ("data without channel axes", ["train-sparse", "{root}/tiny.pt", "--data", "{root}/flat.npz"], "flat.npz"),
    ("infinite accuracy budget", ["run", "{root}/tiny.pt", "--max-accuracy-drop", "inf", *FAST], "--max-accuracy-drop must be a finite"),
    ("non-empty directory that is not a run", ["train-sparse", "{root}/tiny.pt", "--out", "{root}", *FAST], "is a non-empty directory that is not a compress run"),
]


def _digests(directory) -> dict[str, str]:
    """Digests of the artifacts under ``directory`` (the manifest is the run's log, rewritten on purpose)."""
    return {str(p): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(directory.rglob("*")) if p.is_file() and p.name != "manifest.json"}


def _assert_one_line_failure(args, capsys, *, message: str, untouched) -> None:
    before = _digests(untouched)
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    err = capsys.readouterr().err.strip()
    assert exit_info.value.code not in (0, None)
    assert "Traceback" not in err
    assert len(err.splitlines()) == 1, err
    assert message in err, err
    after = _digests(untouched)
    assert {path: after.get(path) for path in before} == before
    assert not os.path.exists("/tmp/compress-bad-input-pickle-ran")
    assert not os.path.exists(PWNED)


@pytest.mark.parametrize("name,argv,message", CASES, ids=[c[0] for c in CASES])
def test_bad_input_exits_nonzero_with_one_clear_line(tmp_path, capsys, name, argv, message):
    root = _files(tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    (out / "earlier-artifact.bin").write_bytes(b"finished work")
    args = ["--quiet", *[a.format(root=root) for a in argv]]
    if "--out" not in args and args[1] not in ("verify", "report"):
        args += ["--out", str(out / "run")]
    _assert_one_line_failure(args, capsys, message=message, untouched=out)


def test_bad_input_resume_with_a_different_recipe_keeps_the_finished_stage(tmp_path, capsys, tiny_model_path):
    run = tmp_path / "run"
    main_args = ["--quiet", "run", str(tiny_model_path), "--target", "host", "--out", str(run), *FAST]
    with pytest.raises(SystemExit):
        main([*main_args, "--until", "train-sparse"])
    capsys.readouterr()
    other = tmp_path / "other.yaml"
    other.write_text("stages:\n  - use: train-sparse\n    with: {epochs: 2}\n")
    _assert_one_line_failure([*main_args, "--resume", "--recipe", str(other)], capsys, message="different recipe", untouched=run)


def test_bad_input_disk_full_during_a_stage_write_is_one_line_and_leaves_no_partial_file(tmp_path, capsys, tiny_model_path, monkeypatch):
    import errno

    import pipeline.atomic

    run = tmp_path / "run"
    with pytest.raises(SystemExit):
        main(["--quiet", "run", str(tiny_model_path), "--target", "host", "--out", str(run), "--until", "train-sparse", *FAST])
    capsys.readouterr()
    real_replace = pipeline.atomic.os.replace

    def disk_full_for_prune(source, destination):
        if "02-prune" in str(destination):
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_replace(source, destination)

    monkeypatch.setattr(pipeline.atomic.os, "replace", disk_full_for_prune)
    args = ["--quiet", "run", str(tiny_model_path), "--target", "host", "--out", str(run), "--resume", "--until", "prune", *FAST]
    _assert_one_line_failure(args, capsys, message="prune: I/O error: No space left on device", untouched=run)
    assert not list(run.rglob("*.tmp")) and not (run / "02-prune" / "model.pt").exists()
    assert read_manifest(run)["stages"][1]["status"] == "failed"


def test_bad_input_png_decompression_bomb_is_refused_without_decoding(tmp_path, capsys):
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    side = 14000  # 196 M pixels: above Pillow's bomb limit, 200 KB compressed
    rows = zlib.compress(b"".join(b"\x00" * (side + 1) for _ in range(side)), 9)
    png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)) + chunk(b"IDAT", rows) + chunk(b"IEND", b"")
    for label in ("a", "b"):
        (tmp_path / "images" / label).mkdir(parents=True)
    (tmp_path / "images" / "a" / "bomb.png").write_bytes(png)
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(tmp_path / "images" / "b" / "ok.png")
    out = tmp_path / "out"
    out.mkdir()
    tiny = _files(tmp_path) / "tiny.pt"
    args = ["--quiet", "train-sparse", str(tiny), "--data", str(tmp_path / "images"), "--out", str(out / "run")]
    _assert_one_line_failure(args, capsys, message="decompression bomb", untouched=out)


def test_bad_input_idx_header_whose_dimensions_overflow_is_one_line():
    from pipeline.data.idx import parse_idx
    from pipeline.errors import UserError

    header = bytes([0, 0, 0x08, 4]) + (2**31 - 1).to_bytes(4, "big") * 4
    with pytest.raises(UserError, match="header says"):
        parse_idx(header + b"\x00" * 16)


def test_bad_input_warning_while_importing_a_library_is_one_line():
    """A library warning (e.g. TVM's "Failed to autoload tvm backend") must not break the one-line rule."""
    import subprocess
    import sys

    code = ("import warnings, pipeline.cli as cli\n"
            "real = cli.LazyGroup.get_command\n"
            "def noisy(self, ctx, name):\n"
            "    warnings.warn(\"Failed to autoload tvm backend 'x': boom\\nsecond line\")\n"
            "    return real(self, ctx, name)\n"
            "cli.LazyGroup.get_command = noisy\n"
            "cli.main(['verify', '/nonexistent-run'])\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2, result.stderr
    assert lines[0] == "warning: Failed to autoload tvm backend 'x': boom", lines
    assert len(lines) == 2 and lines[1].startswith("error:"), lines


def test_bad_input_files_hold_at_least_one_hundred_cases():
    from tests.pipeline import test_bad_inputs_code as code
    from tests.pipeline import test_bad_inputs_security as security

    tests_outside_the_tables = 6 + 4 + 7  # this file, test_bad_inputs_code.py, test_bad_inputs_security.py
    assert len(CASES) + len(code.HOSTILE) + len(security.RUN_CASES) + len(security.INPUT_CASES) + tests_outside_the_tables >= 100
