"""lookalike.faces.compiled: ONNX exports compiled by OpenVINO give torch's outputs, from any thread, on the
dynamic model and on the fixed-shape models it compiles for recurring shapes."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import torch
from facenet_pytorch import MTCNN

from lookalike.faces.compiled import CompiledNetwork
from lookalike.faces.fast_mtcnn import export_networks


@pytest.fixture(scope="module")
def pnet():
    """facenet-pytorch's P-Net (weights shipped in the wheel) and its ONNX export (dynamic h, w)."""
    mtcnn = MTCNN()
    return mtcnn.pnet.eval(), export_networks(mtcnn.pnet, mtcnn.rnet, mtcnn.onet)["pnet"]


def torch_outputs(net, x: np.ndarray) -> list[np.ndarray]:
    with torch.inference_mode():
        return [o.numpy() for o in net(torch.from_numpy(x))]


def assert_close(ours: list[np.ndarray], expected: list[np.ndarray]) -> None:
    assert [o.shape for o in ours] == [e.shape for e in expected]
    for o, e in zip(ours, expected, strict=True):
        assert np.abs(o - e).max() < 1e-4


def test_dynamic_and_fixed_shape_models_give_torchs_outputs(pnet):
    net, onnx = pnet
    compiled = CompiledNetwork(onnx, static_shapes=2, static_after=3)
    rng = np.random.default_rng(0)
    shapes = [(1, 3, 40, 52), (2, 3, 31, 17)]
    inputs = {shape: rng.uniform(-1, 1, shape).astype(np.float32) for shape in shapes}
    for call in range(4):
        for shape in shapes:
            assert_close(compiled(inputs[shape]), torch_outputs(net, inputs[shape]))
        # Fixed-shape models appear only once a shape has been called static_after (3) times.
        assert len(compiled._static) == (0 if call < 2 else 2)
    # At most static_shapes (2) of them: a third recurring shape pushes out the least recently used.
    third = rng.uniform(-1, 1, (1, 3, 24, 24)).astype(np.float32)
    for _ in range(3):
        assert_close(compiled(third), torch_outputs(net, third))
    assert list(compiled._static) == [shapes[1], third.shape]


def test_calls_from_many_threads_at_once_each_get_their_own_answer(pnet):
    net, onnx = pnet
    compiled = CompiledNetwork(onnx)
    rng = np.random.default_rng(1)
    inputs = [rng.uniform(-1, 1, (1, 3, 30 + i, 30)).astype(np.float32) for i in range(16)]
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(compiled, inputs * 4))
    for x, ours in zip(inputs * 4, results, strict=True):
        assert_close(ours, torch_outputs(net, x))
