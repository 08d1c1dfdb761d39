"""Fusion: which nodes share a kernel, on the zoo's graphs (a golden listing of the
groups) and on the cases that must not fuse."""

from __future__ import annotations

import pytest

from tilewise.graph.fuse import partition
from tilewise.graph.ir import Graph, Node, TensorType
from tilewise.graph.layouts import listing
from tilewise.graph.passes import optimize
from tilewise.model import import_model

models = pytest.importorskip("tilewise.models")


RESNET18_HEAD = """\
conv2d[bias+relu]: input, conv1.weight_bn, bn1_bias -> relu
max_pool2d[]: relu -> maxpool
conv2d[bias+relu]: maxpool, layer1.0.conv1.weight_bn, layer1.0.bn1_bias -> layer1.0.relu1
conv2d[bias+residual+relu]: layer1.0.relu1, layer1.0.conv2.weight_bn, layer1.0.bn2_bias, \
maxpool -> layer1.0.relu"""


def test_resnet_convolutions_take_bias_residual_and_relu():
    g = import_model(models.build("resnet18", image=32))
    groups = partition(g)
    assert listing(groups[:4]) == RESNET18_HEAD
    # the global pooling and the flatten (a view, no kernel); fc's bias is dense's
    assert [gr.nodes[0].op for gr in groups if gr.anchor is None] == ["global_avg_pool",
                                                                      "reshape"]
    # every add and relu of the network runs inside a convolution's kernel
    loose = [n.op for gr in groups if gr.anchor is None for n in gr.nodes]
    assert "relu" not in loose


def test_downsample_branch_takes_the_residual():
    """The block's second conv runs before the downsample conv writes the skip: the
    residual add fuses into the downsample conv instead."""
    g = import_model(models.build("resnet18", image=32))
    by_anchor = {gr.anchor.name: gr for gr in partition(g) if gr.anchor is not None}
    assert by_anchor["layer2.0.conv2"].epilogue.steps == ["bias"]
    assert by_anchor["layer2.0.downsample.0"].epilogue.steps == ["bias", "residual", "relu"]


def test_bert_softmax_fuses_its_scale_and_mask():
    g = import_model(models.build("bert_layer", seq=16, hidden=64, heads=4, ffn=128))
    text = listing(partition(g))
    assert "div+add+softmax" in text
    assert "matmul[bias+gelu]" in text
    assert text.count("matmul[bias+residual]") == 2


def _graph(nodes, inputs, outputs, types, constants=None):
    return Graph(inputs, outputs, tuple(nodes), types, constants or {})


def test_a_value_read_twice_is_not_fused_away():
    f = TensorType((4, 8), "float32")
    g = _graph([Node("exp", ("x",), ("a",), name="e"), Node("relu", ("a",), ("b",), name="r"),
                Node("add", ("a", "b"), ("y",), name="s")],
               ("x",), ("y",), {"x": f, "a": f, "b": f, "y": f})
    groups = partition(optimize(g))
    assert [len(gr.nodes) for gr in groups] == [1, 2]
    assert groups[0].outputs == ["a"]


def test_an_output_read_inside_is_still_written():
    f = TensorType((4, 8), "float32")
    g = _graph([Node("exp", ("x",), ("a",), name="e"), Node("relu", ("a",), ("y",), name="r")],
               ("x",), ("a", "y"), {"x": f, "a": f, "y": f})
    groups = partition(g)
    assert [gr.outputs for gr in groups] == [["a"], ["y"]]
