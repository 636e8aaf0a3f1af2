"""The resources model jobs ask a scheduler for."""

import pytest

from unetscape.workflow.cluster import gpu_resources


@pytest.mark.parametrize(
    "settings,expected",
    [
        ({"device": "cpu", "gpu_model": "a100"}, {"gpu": 0}),
        ({"device": "auto"}, {"gpu": 1}),
        ({"device": "cuda", "gpu_model": None, "gpu_request": "gpus"}, {"gpu": 1}),
        ({"device": "cuda:1", "gpu_model": "a100"}, {"gpu": 1, "gpu_model": "a100"}),
        ({"device": "auto", "gpu_request": "gres"}, {"gres": "gpu:1"}),
        ({"device": "auto", "gpu_model": "h100", "gpu_request": "gres"}, {"gres": "gpu:h100:1"}),
    ],
)
def test_gpu_resources(settings, expected):
    assert gpu_resources(settings) == expected
