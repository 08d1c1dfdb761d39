"""The PyTorch frontend: small modules exercising each translated ATen operator on odd
shapes, run by the reference interpreter against the module itself; a ResNet block, a
MobileNetV2 inverted residual and a BERT layer written in plain torch.nn, also compiled;
and what it refuses."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402

import tilewise as tw  # noqa: E402
from tilewise.errors import ModelError  # noqa: E402
from tilewise.frontend import from_torch  # noqa: E402
from tilewise.frontend.torch_ops import TRANSLATORS  # noqa: E402
from tilewise.graph.interpret import interpret  # noqa: E402

TARGET = "c -cores=2"
# torch.export's own deprecation notice, not this frontend's
pytestmark = pytest.mark.filterwarnings("ignore:.*LeafSpec.*:FutureWarning")


class Fn(nn.Module):
    """A module computing ``fn(self, *inputs)``; keyword arguments become submodules
    or parameters."""

    def __init__(self, fn, **children):
        super().__init__()
        self.fn = fn
        for name, child in children.items():
            setattr(self, name, child)

    def forward(self, *xs):
        return self.fn(self, *xs)


def _rand(*shape, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


def _feeds(graph, inputs):
    return {name: x.numpy() for name, x in zip(graph.inputs, inputs, strict=True)}


def _outputs(module, inputs):
    with torch.no_grad():
        out = module.eval()(*inputs)
    return [o.numpy() for o in (out if isinstance(out, (tuple, list)) else (out,))]


def _check(module, inputs, rtol=1e-5, atol=1e-6):
    """Import ``module``, run the graph, compare with the module; returns the graph."""
    graph = from_torch(module, inputs)
    got = interpret(graph, _feeds(graph, inputs))
    want = _outputs(module, inputs)
    assert len(got) == len(want)
    for name, w in zip(graph.outputs, want, strict=True):
        assert got[name].shape == w.shape and got[name].dtype == w.dtype, name
        np.testing.assert_allclose(got[name], w, rtol=rtol, atol=atol, err_msg=name)
    return graph


def _ops(graph):
    return {n.op for n in graph.nodes}


# --- one family of operators per case --------------------------------------------------

CASES = {
    "conv2d": (Fn(lambda m, x: m.a(x) + m.b(x)[..., :5, :4].sum(1, keepdim=True),
                  a=nn.Conv2d(3, 5, 3, stride=2, padding=1),
                  b=nn.Conv2d(3, 4, (3, 1), padding=(1, 0), dilation=(2, 1), bias=False)),
               [(2, 3, 9, 7)]),
    "conv2d_groups_bn": (Fn(lambda m, x: F.relu6(m.bn(m.dw(m.g(x)))),
                            g=nn.Conv2d(4, 6, 3, groups=2, padding=2, dilation=2),
                            dw=nn.Conv2d(6, 6, 3, stride=2, groups=6, padding=1),
                            bn=nn.BatchNorm2d(6)),
                         [(1, 4, 11, 6)]),
    "unbatched_conv_bn_no_affine": (Fn(lambda m, x: m.bn(m.c(x)[None])[0],
                                       c=nn.Conv2d(2, 3, 1), bn=nn.BatchNorm2d(3, affine=False)),
                                    [(2, 5, 3)]),
    "unary": (Fn(lambda m, x: (x.relu(), x.sigmoid(), x.tanh(), x.exp(), x.abs().sqrt(),
                               x.abs().add(0.5).rsqrt(), -x, torch.erf(x), x.abs().log(),
                               x.reciprocal(), F.silu(x), F.hardswish(x), F.hardsigmoid(x))),
              [(3, 7)]),
    "gelu_clip": (Fn(lambda m, x: (F.gelu(x), F.gelu(x, approximate="tanh"),
                                   F.hardtanh(x, -0.5, 0.25), x.clamp(min=-1.0),
                                   x.clamp(max=0.5), x.clamp(-0.3, 0.3), F.relu6(4 * x))),
                  [(2, 3, 5)]),
    "binary": (Fn(lambda m, x, y: (torch.add(x, y, alpha=2), torch.sub(x, y, alpha=0.5),
                                   1.0 - x, x * 3, x / 7, y ** 2, x.abs() ** y,
                                   torch.maximum(x, y), torch.minimum(x, y), 2.0 ** x,
                                   x + y[0, 0], (x * 2) - y.mean())),
               [(4, 1, 5), (3, 5)]),
    "integer_promotion": (Fn(lambda m, x: (x * 0.5, x / 2, x + 3, (x.float() + 1).int(),
                                           x.to(torch.float64) * 2.0)),
                          [torch.arange(-6, 6).reshape(3, 4)]),
    "compare_where": (Fn(lambda m, x, y: (torch.where(x > y, x, y), x.masked_fill(x < 0, -1.0),
                                          torch.where(x == 0.5, 1.0, x), (x > 0.2).float())),
                      [(3, 4), (4,)]),
    "matmul": (Fn(lambda m, a, b, c: (a @ b, torch.bmm(a, b), torch.mm(a[0], b[1]),
                                      torch.matmul(a, c), torch.addmm(c[0], a[1], b[0]),
                                      torch.addmm(c[0], a[1], b[0], beta=0.5, alpha=2.0))),
               [(2, 3, 5), (2, 5, 4), (5, 4)]),
    "linear": (Fn(lambda m, x: (m.a(x), m.b(x[0]), F.linear(x, m.a.weight)),
                  a=nn.Linear(7, 3), b=nn.Linear(7, 2, bias=False)),
               [(2, 5, 7)]),
    "attention": (Fn(lambda m, q, k, v, bias: (
        F.scaled_dot_product_attention(q, k, v),
        F.scaled_dot_product_attention(q, k, v, attn_mask=bias, scale=0.3),
        F.scaled_dot_product_attention(q, k, v, attn_mask=bias > 0),
        F.scaled_dot_product_attention(q, k[:, :, :3], v[:, :, :3], is_causal=True))),
        [(2, 3, 3, 4), (2, 3, 5, 4), (2, 3, 5, 6), (1, 1, 3, 5)]),
    "views": (Fn(lambda m, x: (x.view(3, -1), x.reshape(6, 5)[1:], x.flatten(1),
                               x.flatten(), x.unsqueeze(1).unsqueeze(-1), x[None].squeeze(0),
                               x.permute(2, 0, 1), x.transpose(0, -1).contiguous(),
                               x[0].t(), x[:, :1].expand(2, 3, 5), x.clone(),
                               x[..., None].expand(-1, -1, -1, 2), x.unflatten(2, (5, 1)))),
              [(2, 3, 5)]),
    "reductions_softmax": (Fn(lambda m, x: (x.softmax(-1), x.softmax(1), x.mean((1, 2)),
                                            x.mean(), x.sum(0), x.sum(-1, keepdim=True),
                                            x.amax(1), torch.log_softmax(x, 0).exp())),
                           [(2, 3, 5)]),
    "layer_norm": (Fn(lambda m, x: (m.a(x), m.b(x), F.layer_norm(x, (5,), eps=1e-3)),
                      a=nn.LayerNorm(5), b=nn.LayerNorm((3, 5), elementwise_affine=False)),
                   [(2, 3, 5)]),
    "pooling": (Fn(lambda m, x: (F.max_pool2d(x, 3, 2, 1), F.max_pool2d(x, 2, ceil_mode=True),
                                 F.max_pool2d(x, (2, 3), 1, (1, 1), dilation=(2, 1)),
                                 F.avg_pool2d(x, 3, 2, 1),
                                 F.avg_pool2d(x, 3, 2, 1, count_include_pad=False),
                                 F.avg_pool2d(x, 2, ceil_mode=True),
                                 F.adaptive_avg_pool2d(x, 1), F.adaptive_avg_pool2d(x, (3, 2)),
                                 F.adaptive_avg_pool2d(x, (9, 4)), x.mean((-1, -2)))),
                [(2, 3, 9, 4)]),
    "cat_split_slice": (Fn(lambda m, x: (torch.cat([x, 2 * x], 1), torch.cat([x, x], -1),
                                         *x.split(2, 1), *x.split([1, 4], -1), *x.chunk(2, 0),
                                         *x.unbind(1), x[:, 1:4:2], x[:, -2:], x[1], x[:, -1],
                                         x[..., 3], x.narrow(2, 1, 3))),
                        [(3, 5, 5)]),
    "dropout_and_constants": (Fn(lambda m, x: (m.drop(x) * m.w.t().sum(0) + torch.arange(4.0),
                                               F.dropout(x, 0.5, training=False),
                                               torch.zeros_like(x) + x, torch.full_like(x, 2.0)),
                                 drop=nn.Dropout(0.3), w=nn.Parameter(torch.ones(4, 3))),
                              [(2, 4)]),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_op_family_matches_torch(case):
    module, shapes = CASES[case]
    inputs = [s if isinstance(s, torch.Tensor) else _rand(*s, seed=i)
              for i, s in enumerate(shapes)]
    _check(module, inputs)


def test_embedding_and_index_select():
    module = Fn(lambda m, ids, x: (m.emb(ids), x.index_select(1, ids[0])),
                emb=nn.Embedding(11, 6))
    graph = _check(module, [torch.tensor([[1, 10, 3], [0, 0, 7]]), _rand(2, 11)])
    assert graph.type_of(graph.inputs[0]).dtype == "int64"


def test_what_reads_only_constants_is_evaluated_by_torch():
    module = Fn(lambda m, x: x @ (m.w.t() * 2).softmax(0) + torch.arange(3.0).sort().values,
                w=nn.Parameter(_rand(3, 4)))
    graph = _check(module, [_rand(2, 4)])
    assert _ops(graph) == {"matmul", "add"}


def test_names_and_outputs():
    """Inputs keep their names, outputs are numbered; an input or a value returned
    twice is copied to its output."""
    class Named(nn.Module):
        def forward(self, tokens, mask):
            return tokens, tokens.relu(), tokens.relu(), mask * 2

    graph = _check(Named(), [_rand(2, 3), _rand(3)])
    assert graph.inputs == ("tokens", "mask")
    assert graph.outputs == ("output_0", "output_1", "output_2", "output_3")
    one = from_torch(Fn(lambda m, x: x + 1), (_rand(2),))
    assert one.outputs == ("output",)
    linear = from_torch(Fn(lambda m, x: m.fc(x), fc=nn.Linear(2, 3)), (_rand(1, 2),))
    assert {"fc.weight_transpose", "fc.bias"} == set(linear.constants)


def test_exported_program_and_training_mode():
    module = Fn(lambda m, x: m.drop(m.bn(x)), bn=nn.BatchNorm2d(2), drop=nn.Dropout(0.5))
    module.train()
    x = _rand(1, 2, 3, 3)
    graph = from_torch(module, (x,))  # exported in eval mode; the module's mode is kept
    assert module.training
    np.testing.assert_allclose(interpret(graph, _feeds(graph, [x]))["output"],
                               _outputs(module, [x])[0], rtol=1e-5, atol=1e-6)
    program = torch.export.export(module.eval(), (x,))
    assert _ops(from_torch(program)) == {"batch_norm"}


def test_unsupported_operators_are_listed_before_translating():
    module = Fn(lambda m, x: torch.sort(x).values + torch.fft.rfft(x, n=6).abs().sum()
                + x.cumsum(0))
    with pytest.raises(ModelError, match="unsupported PyTorch operators") as info:
        from_torch(module, (_rand(4, 3),))
    message = str(info.value)
    assert "aten.sort" in message and "(node 'sort')" in message
    assert "fft" in message and "aten.cumsum" in message


@pytest.mark.parametrize("fn, match", [
    (lambda m, x: F.adaptive_avg_pool2d(x, (2, 3)), "pools 5x5 to 2x3"),
    (lambda m, x: torch.div(x, 2, rounding_mode="floor"), "rounding_mode 'floor'"),
    (lambda m, x: F.conv_transpose2d(x, torch.ones(3, 1, 2, 2)), "transposed convolution"),
])
def test_what_is_refused_names_the_node(fn, match):
    with pytest.raises(ModelError, match=match):
        from_torch(Fn(fn), (_rand(1, 3, 5, 5),))


def test_a_module_needs_example_inputs():
    module = Fn(lambda m, x: x + 1)
    with pytest.raises(ModelError, match="needs example_inputs"):
        from_torch(module)
    with pytest.raises(ModelError, match="needs example_inputs"):
        tw.model.import_model(module)
    with pytest.raises(ModelError, match="example_inputs is for PyTorch"):
        tw.model.import_model("resnet18", example_inputs=(_rand(1),))
    with pytest.raises(ModelError, match="cannot export"):
        from_torch(Fn(lambda m, x: x + 1), (_rand(2), _rand(2)))


def test_a_translation_that_disagrees_with_torch_is_caught(monkeypatch):
    monkeypatch.setitem(TRANSLATORS, "aten.relu.default",
                        lambda ctx: ctx.emit1("reduce_sum", [ctx.x(0)],
                                              {"axes": (0,), "keepdims": 1}))
    with pytest.raises(ModelError, match=r"node 'relu': translated to float32\[1, 3\], but "
                                         r"PyTorch computes float32\[2, 3\]"):
        from_torch(Fn(lambda m, x: x.relu() * 2), (_rand(2, 3),))


def test_importing_tilewise_does_not_import_torch():
    code = ("import sys, tilewise, tilewise.frontend, tilewise.model; "
            "assert 'torch' not in sys.modules, 'torch imported'")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stderr[-2000:]


# --- whole blocks, as torchvision and BERT write them ------------------------------------

def _conv_bn(cin, cout, k, stride=1, groups=1):
    return nn.Sequential(nn.Conv2d(cin, cout, k, stride, k // 2, groups=groups, bias=False),
                         nn.BatchNorm2d(cout))


class BasicBlock(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1, self.conv2 = _conv_bn(cin, cout, 3, stride), _conv_bn(cout, cout, 3)
        self.downsample = _conv_bn(cin, cout, 1, stride) if stride != 1 or cin != cout \
            else nn.Identity()

    def forward(self, x):
        return F.relu(self.conv2(F.relu(self.conv1(x))) + self.downsample(x))


class TinyResNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(_conv_bn(3, 8, 7, 2), nn.ReLU(), nn.MaxPool2d(3, 2, 1))
        self.layer1, self.layer2 = BasicBlock(8, 8, 1), BasicBlock(8, 16, 2)
        self.fc = nn.Linear(16, 10)

    def forward(self, x):
        x = self.layer2(self.layer1(self.stem(x)))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, (1, 1)), 1))


class InvertedResidual(nn.Module):
    def __init__(self, cin, cout, stride, expand):
        super().__init__()
        hidden = cin * expand
        self.use_res = stride == 1 and cin == cout
        self.conv = nn.Sequential(_conv_bn(cin, hidden, 1), nn.ReLU6(inplace=True),
                                  _conv_bn(hidden, hidden, 3, stride, groups=hidden),
                                  nn.ReLU6(inplace=True), _conv_bn(hidden, cout, 1))

    def forward(self, x):
        return x + self.conv(x) if self.use_res else self.conv(x)


class TinyMobileNetV2(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(_conv_bn(3, 8, 3, 2), nn.ReLU6(),
                                      InvertedResidual(8, 8, 1, 6),
                                      InvertedResidual(8, 12, 2, 6))
        self.classifier = nn.Sequential(nn.Dropout(0.2), nn.Linear(12, 5))

    def forward(self, x):
        x = nn.functional.adaptive_avg_pool2d(self.features(x), 1)
        return self.classifier(torch.flatten(x, 1))


class BertLayer(nn.Module):
    def __init__(self, hidden=24, heads=3, ffn=40, approximate="none"):
        super().__init__()
        self.heads, self.approximate = heads, approximate
        self.query, self.key, self.value = (nn.Linear(hidden, hidden) for _ in range(3))
        self.attn_out, self.ln1 = nn.Linear(hidden, hidden), nn.LayerNorm(hidden, eps=1e-12)
        self.inter, self.out = nn.Linear(hidden, ffn), nn.Linear(ffn, hidden)
        self.ln2, self.dropout = nn.LayerNorm(hidden, eps=1e-12), nn.Dropout(0.1)

    def _heads(self, x):
        b, t, d = x.size()
        return x.view(b, t, self.heads, d // self.heads).permute(0, 2, 1, 3)

    def forward(self, hidden_states, attention_mask):
        q, k, v = (self._heads(f(hidden_states)) for f in (self.query, self.key, self.value))
        scores = torch.matmul(q, k.transpose(-1, -2)) / (q.shape[-1] ** 0.5)
        scores = scores + (1.0 - attention_mask[:, None, None, :]) * -10000.0
        probs = self.dropout(nn.functional.softmax(scores, dim=-1))
        context = torch.matmul(probs, v).permute(0, 2, 1, 3).contiguous()
        context = context.view(*context.shape[:2], -1)
        x = self.ln1(hidden_states + self.dropout(self.attn_out(context)))
        y = self.out(F.gelu(self.inter(x), approximate=self.approximate))
        return self.ln2(x + self.dropout(y))


def _randomize_bn(module):
    gen = torch.Generator().manual_seed(1)
    for m in module.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.copy_(torch.randn(m.num_features, generator=gen) * 0.1)
            m.running_var.copy_(torch.rand(m.num_features, generator=gen) + 0.5)
    return module


def _bert_inputs():
    mask = torch.ones(2, 7)
    mask[1, 5:] = 0
    return [_rand(2, 7, 24), mask]


BLOCKS = {
    "resnet": (lambda: _randomize_bn(TinyResNet()), lambda: [_rand(1, 3, 32, 32)]),
    "mobilenet_v2": (lambda: _randomize_bn(TinyMobileNetV2()), lambda: [_rand(2, 3, 20, 20)]),
    "bert_layer": (BertLayer, _bert_inputs),
}


@pytest.mark.parametrize("name", sorted(BLOCKS))
def test_block_imports(name):
    torch.manual_seed(0)
    build, inputs = BLOCKS[name]
    graph = _check(build(), inputs(), atol=1e-5)
    ops = _ops(graph)
    if name == "bert_layer":
        assert {"matmul", "softmax", "layer_norm", "gelu"} <= ops
        assert not {"erf", "pow", "reduce_mean"} & ops
    else:
        assert {"conv2d", "batch_norm", "global_avg_pool"} <= ops
        assert ("clip" in ops) == (name == "mobilenet_v2")


def test_bert_layer_with_tanh_gelu():
    graph = _check(BertLayer(approximate="tanh"), _bert_inputs(), atol=1e-5)
    assert any(n.op == "gelu" and n.attrs["approximate"] == "tanh" for n in graph.nodes)


@pytest.mark.compiles
@pytest.mark.parametrize("name", sorted(BLOCKS))
def test_block_compiles(name):
    torch.manual_seed(0)
    build, inputs = BLOCKS[name]
    module, xs = build().eval(), inputs()
    compiled = tw.compile_model(module, example_inputs=tuple(xs), target=TARGET)
    got = compiled.run({spec["name"]: x.numpy()
                        for spec, x in zip(compiled.inputs, xs, strict=True)})
    want = _outputs(module, xs)[0]
    scale = float(np.max(np.abs(want)))
    np.testing.assert_allclose(got["output"], want, rtol=1e-4, atol=1e-4 * scale)
