"""Tests for deploy.bench.machine."""

from __future__ import annotations

import os
import sys

from deploy.bench import cpu_model, machine_info


def test_cpu_model_reads_model_name_when_cpuinfo_has_one(tmp_path):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nmodel name\t: Fancy CPU 9000\nflags\t: sse\n")

    assert cpu_model(cpuinfo_path=cpuinfo) == "Fancy CPU 9000"


def test_cpu_model_reads_hardware_when_arm_cpuinfo(tmp_path):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nBogoMIPS\t: 48.00\n\nHardware\t: Qualcomm SM8250\n")

    assert cpu_model(cpuinfo_path=cpuinfo) == "Qualcomm SM8250"


def test_cpu_model_falls_back_when_cpuinfo_missing(tmp_path):
    assert cpu_model(cpuinfo_path=tmp_path / "absent") != ""


def test_machine_info_reports_threads_as_passed_when_given():
    info = machine_info(torch_threads=2, onnxruntime_threads=1)

    assert info["torch_threads"] == 2
    assert info["onnxruntime_threads"] == 1
    assert info["logical_cores"] == os.cpu_count()
    assert info["python"] == sys.version.split()[0]
    assert set(info) == {
        "cpu_model", "logical_cores", "arch", "os", "python", "torch_threads", "onnxruntime_threads"
    }
