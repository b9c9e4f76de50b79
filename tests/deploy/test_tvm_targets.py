"""Target presets: a data table with clear one-line errors for targets this machine cannot build."""

import json

import pytest

from deploy.tvm.errors import TargetError
from deploy.tvm.targets import build_tvm_target, get_target, list_targets, resolve_cross_compiler

EXPECTED = ["host", "arm64", "android-arm64", "rasp4b", "opencl-adreno", "opencl-mali", "vulkan"]


def test_targets_list_all_presets_in_table_order():
    assert list_targets() == EXPECTED


@pytest.mark.parametrize("name", EXPECTED)
def test_targets_preset_is_json_ready_with_description(name):
    data = get_target(name).to_dict()
    assert json.loads(json.dumps(data))["name"] == name
    assert data["description"] and data["export_format"] == "so"


def test_targets_get_raises_listing_allowed_names_when_unknown():
    with pytest.raises(TargetError, match="allowed: host, arm64"):
        get_target("riscv")


def test_targets_arm64_builds_aarch64_llvm_target_with_neon():
    target = build_tvm_target(get_target("arm64"))
    assert target.kind.name == "llvm"
    assert str(target.attrs["mtriple"]) == "aarch64-linux-gnu"
    assert "+neon" in [str(v) for v in target.attrs["mattr"]]


def test_targets_opencl_adreno_has_arm64_host():
    target = build_tvm_target(get_target("opencl-adreno"))
    assert target.kind.name == "opencl"
    assert str(target.host.attrs["mtriple"]) == "aarch64-linux-gnu"


def test_targets_vulkan_fails_with_one_clear_line_when_codegen_missing():
    with pytest.raises(TargetError) as info:
        build_tvm_target(get_target("vulkan"))
    message = str(info.value)
    assert "target.build.vulkan" in message and "\n" not in message


def test_targets_android_fails_with_one_clear_line_when_ndk_unset(monkeypatch):
    monkeypatch.delenv("ANDROID_NDK_HOME", raising=False)
    with pytest.raises(TargetError, match="ANDROID_NDK_HOME"):
        resolve_cross_compiler(get_target("android-arm64"))


def test_targets_android_uses_ndk_clang_when_ndk_set(monkeypatch, tmp_path):
    clang = tmp_path / get_target("android-arm64").ndk_compiler
    clang.parent.mkdir(parents=True)
    clang.write_text("#!/bin/sh\n")
    monkeypatch.setenv("ANDROID_NDK_HOME", str(tmp_path))
    assert resolve_cross_compiler(get_target("android-arm64")) == str(clang)


def test_targets_arm64_resolves_installed_cross_compiler():
    assert resolve_cross_compiler(get_target("arm64")).endswith("aarch64-linux-gnu-g++")
