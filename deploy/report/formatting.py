"""Number formatting shared by the Markdown and HTML renderers."""

from __future__ import annotations


def fmt_ratio_pct(value: float | None) -> str:
    """``0.9123`` -> ``"91.23%"``; ``None`` -> ``"-"``."""
    return "-" if value is None else f"{100.0 * value:.2f}%"


def fmt_ms(value: float | None) -> str:
    """Milliseconds with three decimals; ``None`` -> ``"-"``."""
    return "-" if value is None else f"{value:.3f} ms"


def fmt_speedup(value: float | None) -> str:
    """Speed-up ratio as ``"2.31x"``; ``None`` -> ``"-"``."""
    return "-" if value is None else f"{value:.2f}x"


def fmt_bytes(value: int | None) -> str:
    """Byte count in binary units: ``12345`` -> ``"12.1 KiB"``; ``None`` -> ``"-"``."""
    if value is None:
        return "-"
    size = float(value)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{int(size)} B" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GiB"


def fmt_int(value: int | None) -> str:
    """Integer with thousands separators; ``None`` -> ``"-"``."""
    return "-" if value is None else f"{value:,}"


def fmt_shape(shape: list[int] | None) -> str:
    """``[16, 6, 5, 5]`` -> ``"16x6x5x5"``."""
    return "-" if not shape else "x".join(str(dim) for dim in shape)


def fmt_delta(a: float | None, b: float | None, *, pct: bool = False) -> str:
    """Signed difference ``b - a`` (in percentage points when ``pct``)."""
    if a is None or b is None:
        return "-"
    delta = (b - a) * (100.0 if pct else 1.0)
    return f"{delta:+.2f}{' pp' if pct else ''}"
