"""``compress verify RUN_DIR``: recheck every artifact's sha256 and the numerical parity of the run."""

from __future__ import annotations

from pathlib import Path

import click

from pipeline.errors import StageError, UserError
from pipeline.verify import verify_run

MAX_ATOL = 100.0  # allowed max abs difference between runtimes, at most


def make_command(name: str) -> click.Command:
    @click.command(name=name)
    @click.argument("run_dir", type=click.Path(path_type=Path))
    @click.option("--atol", default=1e-4, show_default=True, help="allowed max abs difference between runtimes")
    @click.option("--json", "as_json", is_flag=True, help="print the checks as JSON")
    @click.option("--arch", default=None, help="trust this package.module:factory architecture named by the run's bundles")
    def command(run_dir: Path, atol: float, as_json: bool, arch: str | None) -> None:
        """Check artifact digests, then torch vs onnxruntime vs TVM host (and the device bundle under its emulator)."""
        import json

        if not 0 <= atol <= MAX_ATOL:  # NaN fails this too
            raise UserError(f"--atol must be a finite number in [0, {MAX_ATOL:g}], got {atol}")
        checks = verify_run(run_dir, atol=atol, trusted_archs=(arch,) if arch else ())
        if as_json:
            click.echo(json.dumps(checks, indent=2))
        else:
            for check in checks:
                click.echo(f"{'ok  ' if check['ok'] else 'FAIL'} {check['check']}: {check['detail']}")
        failed = [c for c in checks if not c["ok"]]
        if failed:
            raise StageError(f"verify: {len(failed)} check(s) failed, first: {failed[0]['check']}: {failed[0]['detail']}")

    return command
