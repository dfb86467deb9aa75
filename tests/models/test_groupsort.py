"""GroupSort's CPU sort (NumPy) against torch's: same values, same derivatives."""

from __future__ import annotations

import pytest
import torch
from torch.testing import assert_close

from lipgan.models.groupsort import GroupSort, descending_order


def torch_groupsort(x: torch.Tensor, group_size: int) -> torch.Tensor:
    """The definition: torch's sort over groups of consecutive channels, descending."""
    size = group_size or x.shape[1]
    groups = x.unflatten(1, (x.shape[1] // size, size))
    return groups.sort(dim=2, descending=True).values.flatten(1, 2)


@pytest.mark.parametrize("group_size", [0, 4, 16])
@pytest.mark.parametrize("shape", [(64, 32), (8, 32, 3, 3)], ids=["mlp", "conv"])
def test_groupsort_matches_torch_sort_in_value_and_gradient(group_size, shape) -> None:
    torch.manual_seed(group_size)
    x = torch.randn(*shape, dtype=torch.float64, requires_grad=True)  # no ties
    weights = torch.randn(*shape, dtype=torch.float64)
    ours, reference = GroupSort(group_size)(x), torch_groupsort(x, group_size)
    assert torch.equal(ours, reference)
    (grad_ours,) = torch.autograd.grad((ours * weights).sum(), x)
    (grad_ref,) = torch.autograd.grad((reference * weights).sum(), x)
    assert torch.equal(grad_ours, grad_ref)
    # every output is one input: the gradient of sum(w * y) is w permuted back
    assert_close(torch.sort(grad_ours.flatten()).values, torch.sort(weights.flatten()).values)


def test_groupsort_has_the_double_backward_a_penalty_takes() -> None:
    """A gradient penalty differentiates ||grad D(x)|| through the sort: the same through
    NumPy's indices as through torch's sort."""
    torch.manual_seed(0)
    layer1, layer2 = torch.nn.Linear(2, 16), torch.nn.Linear(16, 1)
    x = torch.randn(32, 2, requires_grad=True)

    def penalty(sort) -> torch.Tensor:
        out = layer2(sort(layer1(x))).sum()
        (grad,) = torch.autograd.grad(out, x, create_graph=True)
        return ((grad.norm(dim=1) - 1) ** 2).mean()

    ours = torch.autograd.grad(penalty(GroupSort(0)), layer1.weight)[0]
    reference = torch.autograd.grad(penalty(lambda h: torch_groupsort(h, 0)), layer1.weight)[0]
    assert float(ours.abs().max()) > 0
    assert_close(ours, reference, atol=1e-6, rtol=1e-6)


def test_low_precision_and_ties_keep_the_sorted_values() -> None:
    x = torch.tensor([[1.0, 3.0, 3.0, -2.0], [0.0, 0.0, 0.0, 0.0]])
    for dtype in (torch.float32, torch.bfloat16):
        out = GroupSort(0)(x.to(dtype))
        assert out.dtype == dtype
        assert out.tolist() == [[3.0, 3.0, 1.0, -2.0], [0.0, 0.0, 0.0, 0.0]]
    groups = torch.randn(4, 2, 8).to(torch.bfloat16)
    order = descending_order(groups)  # torch's path: NumPy has no bfloat16
    assert torch.equal(groups.gather(2, order), groups.sort(dim=2, descending=True).values)
