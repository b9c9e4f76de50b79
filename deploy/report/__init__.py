"""Reports: the ``compress-report/2`` schema (older reports upgraded on load), JSON / Markdown / HTML writers and comparisons."""

from deploy.report.compare import compare_reports
from deploy.report.fields import ReportSchemaError
from deploy.report.files import load_report
from deploy.report.rows import latency_rows
from deploy.report.schema import RUNTIMES, SCHEMA_ID, validate_report
from deploy.report.upgrade import upgrade_report
from deploy.report.write import write_report

__all__ = [
    "RUNTIMES",
    "SCHEMA_ID",
    "ReportSchemaError",
    "compare_reports",
    "latency_rows",
    "load_report",
    "upgrade_report",
    "validate_report",
    "write_report",
]
