"""Break-even table: JSON round trip, nearest-shape lookup, the shipped host table, measuring."""

import pytest

from deploy.tvm.breakeven import BreakevenEntry, BreakevenTable, load_breakeven_table, save_breakeven_table
from deploy.tvm.breakeven_measure import measure_breakeven


def _entry(out_features, in_features, batch, breakeven):
    return BreakevenEntry("bsr", 16, out_features, in_features, batch, breakeven, 1.0, 0.1, 0.9)


def test_breakeven_table_round_trips_through_json(tmp_path):
    table = BreakevenTable(machine="m", command="c", entries=(_entry(64, 64, 1, 0.5),))
    save_breakeven_table(table, tmp_path / "t.json")
    assert load_breakeven_table(tmp_path / "t.json") == table


def test_breakeven_lookup_takes_nearest_measured_shape():
    table = BreakevenTable(machine="m", command="c", entries=(_entry(64, 64, 1, 0.3), _entry(1024, 1024, 1, 0.7)))
    assert table.lookup(kernel="bsr", block_rows=16, out_features=900, in_features=1000, batch=1).breakeven_ratio == 0.7
    assert table.lookup(kernel="bsr", block_rows=8, out_features=64, in_features=64, batch=1) is None


def test_breakeven_entry_time_ratio_is_one_at_breakeven():
    entry = BreakevenEntry("bsr", 16, 64, 64, 1, 0.5, 2.0, 0.0, 4.0)
    assert entry.time_ratio(0.5) == pytest.approx(1.0)


def test_breakeven_default_host_table_covers_every_kernel():
    table = load_breakeven_table()
    assert {(e.kernel, e.block_rows) for e in table.entries} == {("bsr", 16), ("bsr", 8), ("bsr", 4), ("csr", 1)}
    assert all(0.0 <= e.breakeven_ratio <= 1.0 and e.dense_ms > 0 for e in table.entries)


def test_breakeven_measure_returns_ratio_in_unit_interval_for_small_shape():
    table = measure_breakeven(shapes=((16, 32, 1),), kernels=(("bsr", 8),), sparsities=(0.5, 0.9), repeat=2)
    (entry,) = table.entries
    assert 0.0 <= entry.breakeven_ratio <= 1.0 and entry.dense_ms > 0
