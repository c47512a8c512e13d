"""The PyTorch reference modules: upstream key listings, golden-fixture parity, strict loading, JAX agreement."""

import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

torch = pytest.importorskip("torch")
from tasar_jax import converters  # noqa: E402
from tasar_jax.converters import reference  # noqa: E402
from tests.conftest import fixtures_dir, random_batch  # noqa: E402
from tests.converters.test_upstream_keys import read_listing  # noqa: E402

KEYS_DIR = fixtures_dir().parent / "reference" / "keys"
STEMS = {"stgcn": "STGCN", "ctrgcn": "CTRGCN"}
KEY_CASES = [(a, d) for a in STEMS for d in ("hdm05", "ntu60", "ntu120")]


@pytest.mark.parametrize("arch, dataset", KEY_CASES, ids=[f"{a}-{d}" for a, d in KEY_CASES])
def test_state_dict_equals_upstream_listing(arch, dataset):
    module = reference.build(arch, dataset)
    got = [(k, tuple(v.shape)) for k, v in module.state_dict().items()]
    assert got == list(read_listing(KEYS_DIR / f"{STEMS[arch]}_{dataset}.txt").items())


@pytest.fixture(scope="module", params=list(STEMS))
def loaded(request, upstream):
    stem = STEMS[request.param]
    module = reference.load(request.param, "hdm05", upstream / f"{stem}_hdm05.pth.xz")
    return module, np.load(upstream / f"{stem}_hdm05_io.npz")


def _logits_and_grad(module, x, cot):
    x = torch.tensor(x, requires_grad=True)
    logits = module(x)
    (logits * torch.tensor(cot, dtype=x.dtype)).sum().backward()
    return logits.detach().numpy(), x.grad.numpy()


@pytest.mark.parametrize("precision", ["float32", "float64"])
def test_golden_fixture_parity(loaded, precision):
    module, io = loaded
    wide = precision == "float64"
    suffix, logit_tol, grad_tol = ("64", 1e-8, 1e-6) if wide else ("", 1e-4, 1e-2)
    # float64 on the first sample only (eval mode treats samples independently): halves the slow CPU pass
    rows = slice(0, 1) if wide else slice(None)
    module = module.double() if wide else module.float()
    try:
        logits, grad = _logits_and_grad(module, io["x" + suffix][rows], io["cot"][rows])
    finally:
        module.float()
    want_logits, want_grad = io["logits" + suffix][rows], io["grad_x" + suffix][rows]
    assert logits.dtype == want_logits.dtype
    assert np.abs(logits - want_logits).max() <= logit_tol * max(1.0, np.abs(want_logits).max())
    assert np.linalg.norm(grad - want_grad) <= grad_tol * np.linalg.norm(want_grad)


def test_stgcn_graph_buffer_matches_checkpoint(upstream):
    checkpoint = converters.read_state_dict(upstream / "STGCN_hdm05.pth.xz")
    np.testing.assert_array_equal(reference.build("stgcn", "hdm05").A.numpy(), checkpoint["A"])


def _checkpoint_state_dict(arch, upstream):
    return {k: torch.from_numpy(v) for k, v in
            converters.read_state_dict(upstream / f"{STEMS[arch]}_hdm05.pth.xz").items()}


@pytest.mark.parametrize("arch, edit, message", [
    ("stgcn", lambda sd: sd.pop("st_gcn_networks.3.tcn.2.bias"), r"Missing key.*st_gcn_networks\.3\.tcn\.2\.bias"),
    ("stgcn", lambda sd: sd.update({"edge_importance.10": torch.ones(3, 25, 25)}),
     r"Unexpected key.*edge_importance\.10"),
    ("ctrgcn", lambda sd: sd.pop("l1.gcn1.PA"), r"Missing key.*l1\.gcn1\.PA"),
    ("ctrgcn", lambda sd: sd.update({"fc.weight": torch.zeros(60, 256)}), r"size mismatch for fc\.weight"),
])
def test_strict_load_rejects_mismatches(arch, edit, message, upstream):
    state_dict = _checkpoint_state_dict(arch, upstream)
    edit(state_dict)
    with pytest.raises(converters.CheckpointError, match=message):
        reference.load_state_dict(reference.build(arch, "hdm05"), state_dict)


def test_load_from_file_errors(tmp_path):
    with pytest.raises(converters.CheckpointError, match="no such checkpoint"):
        reference.load("stgcn", "hdm05", tmp_path / "absent.pth")
    torch.save({"fc.weight": torch.zeros(2, 2)}, tmp_path / "partial.pth")
    with pytest.raises(converters.CheckpointError, match="Missing key"):
        reference.load("ctrgcn", "hdm05", tmp_path / "partial.pth")
    with pytest.raises(ValueError, match="no torch reference"):
        reference.build("msg3d", "hdm05")


@pytest.mark.parametrize("arch", list(STEMS))
def test_jax_port_agrees_on_random_ntu60_weights(arch):
    """Same ntu60 configuration (M = 2, K = 60, NTU graph) at width 0.25 to keep the test fast; the full widths
    are covered by the fixture parity above and by tests/converters/test_parity.py."""
    torch.manual_seed(1)
    module = reference.build(arch, "ntu60", width=0.25)
    module.load_state_dict(reference.randomised_state_dict(module, seed=5), strict=True)
    reference.calibrate_batch_norm(module, torch.from_numpy(random_batch(n=8, t=16, m=2, seed=9)))
    numpy_sd = {k: v.numpy() for k, v in module.state_dict().items()}
    jax_model = converters.convert(arch, "ntu60", numpy_sd, width=0.25)
    jax_model.eval()
    x = random_batch(n=2, t=16, m=2, seed=3)
    with torch.no_grad():
        want = module(torch.from_numpy(x)).numpy()
    got = np.asarray(nnx.jit(lambda model, x: model(x))(jax_model, jnp.asarray(x)))  # one compile, not per op
    assert got.shape == want.shape == (2, 60)
    assert np.abs(want[0] - want[1]).max() > 1e-2 * np.abs(want).max()  # logits depend on the input
    assert np.abs(got - want).max() <= 1e-4 * max(1.0, np.abs(want).max())


@pytest.mark.parametrize("arch, dataset, persons", [("stgcn", "hdm05", 1), ("stgcn", "ntu60", 2),
                                                    ("ctrgcn", "hdm05", 1), ("ctrgcn", "ntu120", 2)])
def test_tiny_width_shapes_and_eval_determinism(arch, dataset, persons):
    torch.manual_seed(0)
    module = reference.build(arch, dataset, width=0.125)
    x = torch.from_numpy(random_batch(n=3, t=16, m=persons))
    with torch.no_grad():
        first, second = module(x), module(x)
    classes = {"hdm05": 65, "ntu60": 60, "ntu120": 120}[dataset]
    assert first.shape == (3, classes) and torch.isfinite(first).all()
    assert torch.equal(first, second)
    assert module.training is False


def test_stgcn_dropout_only_in_train_mode():
    torch.manual_seed(0)
    module = reference.build("stgcn", "hdm05", width=0.125)
    x = torch.from_numpy(random_batch(n=2, t=16, m=1))
    module.train()
    with torch.no_grad():
        assert not torch.equal(module(x), module(x))
