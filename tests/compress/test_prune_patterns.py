"""Block, N:M and GRIM BCR patterns on the GEMM view, and the model-level layouts."""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from compress.models import create_model
from compress.prune import bcr_keep_counts, bcr_mask, block_mask, nm_mask, prune_weights
from compress.prune.gemm import to_blocks
from compress.selection import ParamSelector
from compress.types import BlockShape, SparsityLayout

torch.set_num_threads(1)
BLOCKS = [BlockShape(1, 1), BlockShape(4, 1), BlockShape(8, 1), BlockShape(16, 1), BlockShape(1, 4), BlockShape(4, 4)]


def _blocks_of(mask, block):
    return to_blocks(mask.reshape(mask.shape[0], -1).float(), block=block)


@pytest.mark.parametrize("block", BLOCKS, ids=lambda b: f"{b.rows}x{b.cols}")
def test_prune_block_keeps_whole_blocks_and_reaches_ratio(block):
    torch.manual_seed(0)
    weight = torch.randn(32, 8, 3, 3)
    mask = block_mask(weight, block=block, sparsity_ratio=0.75)
    blocks = _blocks_of(mask, block)
    per_block = blocks.sum(dim=(2, 3))
    assert bool(((per_block == 0) | (per_block == block.rows * block.cols)).all())
    assert (1 - mask.float().mean().item()) == pytest.approx(0.75, abs=block.rows * block.cols / weight.numel())


def test_prune_block_drops_lowest_norm_block():
    weight = torch.ones(4, 8)
    weight[:, 4:] = 0.1
    mask = block_mask(weight, block=BlockShape(4, 4), sparsity_ratio=0.5)
    assert bool(mask[:, :4].all()) and not bool(mask[:, 4:].any())


@given(rows=st.integers(1, 19), cols=st.integers(1, 23), r=st.sampled_from([1, 4, 8]), c=st.sampled_from([1, 4]))
@settings(max_examples=40, deadline=None)
def test_prune_block_keeps_whole_blocks_when_dims_not_divisible(rows, cols, r, c):
    weight = torch.randn(rows, cols)
    block = BlockShape(r, c)
    mask = block_mask(weight, block=block, sparsity_ratio=0.5)
    padded_ones = _blocks_of(torch.ones(rows, cols), block).sum(dim=(2, 3))
    per_block = _blocks_of(mask, block).sum(dim=(2, 3))
    assert mask.shape == weight.shape
    assert bool(((per_block == 0) | (per_block == padded_ones)).all())


@pytest.mark.parametrize("n,m", [(2, 4), (1, 4), (4, 8)])
def test_prune_nm_keeps_exactly_n_per_group_along_input(n, m):
    torch.manual_seed(1)
    weight = torch.randn(16, 8, 3, 3)  # 72 input positions, divisible by 4 and 8
    mask = nm_mask(weight, n=n, m=m)
    groups = mask.reshape(16, -1, m).sum(dim=2)
    assert bool((groups == n).all())


def test_prune_nm_keeps_largest_magnitudes():
    weight = torch.tensor([[0.1, -3.0, 2.0, 0.5]])
    assert nm_mask(weight, n=2, m=4).tolist() == [[False, True, True, False]]


def test_prune_nm_raises_when_n_exceeds_m():
    with pytest.raises(ValueError, match="1 <= n <= m"):
        nm_mask(torch.randn(4, 4), n=5, m=4)


@pytest.mark.parametrize("block", [BlockShape(4, 4), BlockShape(8, 1), BlockShape(1, 4), BlockShape(4, 2)], ids=str)
def test_prune_bcr_keeps_whole_rows_and_columns_within_blocks(block):
    torch.manual_seed(2)
    weight = torch.randn(16, 4, 3, 3)
    mask = bcr_mask(weight, block=block, sparsity_ratio=0.5)
    blocks = _blocks_of(mask, block).bool()
    rows_any, cols_any = blocks.any(dim=3), blocks.any(dim=2)
    assert torch.equal(blocks, rows_any[..., :, None] & cols_any[..., None, :])
    kr, kc = bcr_keep_counts(block=block, sparsity_ratio=0.5)
    assert bool((blocks.sum(dim=(2, 3)) == kr * kc).all())


def test_prune_bcr_reaches_target_ratio_within_rounding():
    weight = torch.randn(32, 64)
    mask = bcr_mask(weight, block=BlockShape(4, 4), sparsity_ratio=0.75)
    assert 1 - mask.float().mean().item() == pytest.approx(0.75)


def test_prune_bcr_prunes_weakest_row_first():
    weight = torch.ones(4, 4)
    weight[2] = 0.01
    mask = bcr_mask(weight, block=BlockShape(4, 4), sparsity_ratio=0.25)
    assert not bool(mask[2].any()) and bool(mask[[0, 1, 3]].all())


def test_prune_weights_returns_layout_per_weight_with_pattern_and_block():
    model = create_model("lenet5")
    result = prune_weights(model, pattern="bcr", block=BlockShape(4, 4), sparsity_ratio=0.5, layers=ParamSelector(exclude=("9",)))
    assert [layout.fqn for layout in result.layouts] == ["0.weight", "3.weight", "7.weight"]
    layout = result.layouts[2]
    assert (layout.pattern, layout.block) == ("bcr", BlockShape(4, 4))
    assert layout.nnz == int(result.masks["7.weight"].sum())
    assert SparsityLayout.from_dict(layout.to_dict()) == layout


def test_prune_weights_nm_layout_records_group_as_block():
    result = prune_weights(create_model("lenet5"), pattern="n:m", n=2, m=4)
    assert {layout.block for layout in result.layouts} == {BlockShape(1, 4)}


def test_prune_weights_raises_when_pattern_unknown():
    with pytest.raises(ValueError, match="allowed: unstructured, block, n:m, bcr"):
        prune_weights(create_model("lenet5"), pattern="diagonal")


@pytest.mark.parametrize("pattern", ["unstructured", "block"])
def test_prune_weights_gives_each_layer_of_layer_sparsity_its_own_ratio(pattern):
    torch.manual_seed(0)
    model = create_model("lenet5")
    result = prune_weights(model, pattern=pattern, sparsity_ratio=0.5, block=BlockShape(2, 1), layer_sparsity={"7.weight": 0.9})
    sparsity = {fqn: 1 - mask.float().mean().item() for fqn, mask in result.masks.items()}
    assert sparsity["7.weight"] == pytest.approx(0.9, abs=0.01)
    assert all(value == pytest.approx(0.5, abs=0.05) for fqn, value in sparsity.items() if fqn != "7.weight")
