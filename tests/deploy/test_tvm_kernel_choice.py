"""Per-layer kernel decision: break-even table, fixed threshold, ternary detection, layout hints."""

import numpy as np

from deploy.tvm.breakeven import BreakevenEntry, BreakevenTable
from deploy.tvm.kernel_choice import choose_kernel
from deploy.tvm.layer_bench import random_block_sparse


def _table(breakeven=0.6, csr_breakeven=0.9):
    entries = [BreakevenEntry("bsr", r, 64, 64, 1, breakeven, 1.0, 0.0, 1.0 / (1 - breakeven))
               for r in (16, 8, 4)]
    entries.append(BreakevenEntry("csr", 1, 64, 64, 1, csr_breakeven, 1.0, 0.0, 1.0 / (1 - csr_breakeven)))
    return BreakevenTable(machine="test", command="test", entries=tuple(entries))


def test_kernel_choice_picks_bsr_when_block_sparsity_above_breakeven():
    weight = random_block_sparse(out_features=64, in_features=64, block_rows=16, sparsity_ratio=0.9)
    choice, arrays = choose_kernel(weight, batch=1, table=_table())
    assert choice.kernel == "sparse-bsr" and choice.block_rows == 16
    assert arrays.data.shape[1] == 16 and choice.estimated_speedup > 1


def test_kernel_choice_keeps_dense_when_below_breakeven():
    weight = random_block_sparse(out_features=64, in_features=64, block_rows=1, sparsity_ratio=0.3)
    choice, arrays = choose_kernel(weight, batch=1, table=_table())
    assert choice.kernel == "dense" and arrays is None and "below break-even" in choice.reason


def test_kernel_choice_picks_csr_when_unstructured_and_very_sparse():
    weight = random_block_sparse(out_features=64, in_features=64, block_rows=1, sparsity_ratio=0.97)
    choice, _ = choose_kernel(weight, batch=1, table=_table(breakeven=0.95, csr_breakeven=0.9))
    assert choice.kernel == "sparse-csr"


def test_kernel_choice_picks_ternary_when_values_ternary_and_not_sparse_enough():
    weight = np.sign(np.random.default_rng(0).standard_normal((64, 64))).astype(np.float32) * 0.25
    choice, arrays = choose_kernel(weight, batch=1, table=_table())
    assert choice.kernel == "ternary" and arrays.codes.dtype == np.int8


def test_kernel_choice_uses_fixed_threshold_when_given():
    weight = random_block_sparse(out_features=64, in_features=64, block_rows=8, sparsity_ratio=0.5)
    choice, _ = choose_kernel(weight, batch=1, table=None, sparse_threshold=0.4)
    assert choice.kernel == "sparse-bsr" and choice.breakeven_ratio == 0.4


def test_kernel_choice_reports_dense_when_no_table_and_no_threshold():
    weight = random_block_sparse(out_features=64, in_features=64, block_rows=8, sparsity_ratio=0.9)
    choice, _ = choose_kernel(weight, batch=1, table=None)
    assert choice.kernel == "dense" and "no break-even" in choice.reason


def test_kernel_choice_prefers_hinted_block_on_ties():
    weight = random_block_sparse(out_features=64, in_features=64, block_rows=16, sparsity_ratio=0.9)
    hint = {"format": "bsr", "block": [4, 1]}
    choice, _ = choose_kernel(weight, batch=1, table=None, sparse_threshold=0.5, hint=hint)
    assert choice.block_rows == 4


def test_kernel_choice_reads_encoded_format_of_densified_hint():
    weight = random_block_sparse(out_features=64, in_features=64, block_rows=16, sparsity_ratio=0.9)
    hint = {"format": "dense", "encoded_format": "bsr", "block": [8, 1]}
    choice, _ = choose_kernel(weight, batch=1, table=None, sparse_threshold=0.5, hint=hint)
    assert choice.block_rows == 8
