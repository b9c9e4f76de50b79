"""``compress bench-device RUN_DIR --adb SERIAL | --ssh HOST | --qemu``: time the run's device bundle
on a device with its native runner (no Python there) and add the result to the run's report."""

from __future__ import annotations

import json
from pathlib import Path

import click

from deploy.bench.device import DeviceError, DeviceLink, measure_on_device
from deploy.tvm.bundle import checked_bundle
from deploy.tvm.errors import BundleError
from pipeline.errors import UserError
from pipeline.manifest import Artifact, open_run
from pipeline.report.update import update_run_report

MAX_RUNS = 1_000_000  # timed (and warm-up) runs on the device


def make_command(name: str) -> click.Command:
    @click.command(name=name)
    @click.argument("run_dir", type=click.Path(path_type=Path))
    @click.option("--adb", "serial", default=None, metavar="SERIAL", help="an Android device (adb -s SERIAL); needs an NDK-built bundle, see the README")
    @click.option("--ssh", "ssh_address", default=None, metavar="[USER@]HOST", help="a Linux board reachable with ssh / scp")
    @click.option("--qemu", is_flag=True, help="this machine under qemu-aarch64: checks the path; the numbers are emulation, not device latency")
    @click.option("--runs", default=100, show_default=True, type=int, metavar="INTEGER", help="timed runs on the device")
    @click.option("--warmup", default=10, show_default=True, type=int, metavar="INTEGER", help="untimed warm-up runs")
    def command(run_dir: Path, serial: str | None, ssh_address: str | None, qemu: bool, runs: int, warmup: int) -> None:
        """Copy RUN_DIR's device bundle to a device, time it there, add a tvm-device row to the report."""
        try:
            links = [DeviceLink("adb", serial) if serial is not None else None, DeviceLink("ssh", ssh_address) if ssh_address is not None else None,
                     DeviceLink("qemu") if qemu else None]
        except DeviceError as error:
            raise UserError(f"bench-device: {error}") from None
        chosen = [link for link in links if link is not None]
        if len(chosen) != 1:
            raise UserError("give exactly one of --adb SERIAL, --ssh HOST, --qemu")
        if not (1 <= runs <= MAX_RUNS and 0 <= warmup <= MAX_RUNS):
            raise UserError(f"bench-device needs 1 <= runs <= {MAX_RUNS} and 0 <= warmup <= {MAX_RUNS}, got runs={runs}, warmup={warmup}")
        bundle, shape = _bundle(run_dir)
        try:
            stats = measure_on_device(bundle, shape, link=chosen[0], warmup=warmup, runs=runs)
        except DeviceError as error:
            raise UserError(f"bench-device: {error}") from None
        _add_to_report(run_dir, stats, chosen[0])
        click.echo(json.dumps({"device": chosen[0].label, **stats}, sort_keys=True))

    return command


def _bundle(run_dir: Path) -> tuple[Path, tuple[int, ...]]:
    """The run's device bundle folder and input shape, after checking the bundle manifest against the
    run manifest and every bundle file against the bundle manifest (nothing unlisted, no links)."""
    run_dir, manifest = open_run(run_dir)
    records = [r for r in manifest["stages"] if r["status"] == "done" and "bundle-manifest" in r["outputs"]]
    if not records:
        raise UserError(f"{run_dir} has no device bundle; compile with a --target whose preset makes one (`compress targets` lists them) first")
    bundle_manifest = Artifact(**records[-1]["outputs"]["bundle-manifest"]).verified(run_dir)
    try:
        shape = checked_bundle(bundle_manifest.parent)["input_shape"]
    except BundleError as error:
        raise UserError(f"bench-device: {error}; nothing was copied") from None
    return bundle_manifest.parent, tuple(shape)


def _add_to_report(run_dir: Path, stats: dict, link) -> None:
    def change(report, manifest, record) -> None:
        report["latency"] = [r for r in report["latency"] if not (r["runtime"] == "tvm-device" and r.get("device") == link.label)]
        report["latency"].append({
            "variant": "compiled", "runtime": "tvm-device", "device": link.label, "threads": None,
            "median_ms": stats["median_ms"], "p90_ms": stats["p90_ms"], "min_ms": stats["min_ms"], "mean_ms": stats["mean_ms"],
            "runs": int(stats["runs"]), "ratio_vs_baseline": None,
        })
        note = (f"tvm-device ({link.label}): the bundle's native runner, {stats['warmup']} warm-up and {stats['runs']} timed runs of a zero "
                "input on the device's own clock; no speed-up is given (the dense baseline did not run there).")
        if not link.real:
            note += " Under qemu these numbers are emulation time, NOT device latency."
        report["notes"] = [n for n in report.get("notes", []) if not n.startswith(f"tvm-device ({link.label})")] + [note]

    update_run_report(run_dir, change)
