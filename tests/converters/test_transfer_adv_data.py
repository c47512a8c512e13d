"""Upstream's transfer-test input (``transfer_adv_data.pt``) read by tasar-jax gives, per target network, exactly
the batch upstream's ``adv_dataset_hdm05`` yields; its sibling files hold what the TASAR run wrote.

Upstream prepares the batch in the Dataset (SkateFormer targets get the pad-to-64 + joint re-indexing there);
tasar-jax reads the file with ``converters.adversarial_io.read_pair`` and leaves the transform to the target model
(``skateformer.skateformer_input`` inside ``SkateFormer.forward``; ``formats.skateformer_input`` is its numpy twin),
so the network input must equal upstream's batch bit for bit.
"""

import jax.numpy as jnp
import numpy as np
import pytest

from tasar_jax.data import formats
from tasar_jax.models import skateformer

pytest.importorskip("torch")
from tasar_jax.converters import adversarial_io  # noqa: E402


@pytest.fixture(scope="module")
def transfer(upstream):
    """(data, labels) as tasar-jax reads the upstream .pt file, and the npz copy with the reference batches."""
    return adversarial_io.read_pair(upstream / "transfer_adv_data.pt"), np.load(upstream / "transfer_adv_data.npz")


def test_reading_the_upstream_file_gives_its_tensors(transfer):
    (data, labels), ref = transfer
    assert data.dtype == np.float32 and data.shape == (8, 3, 60, 25, 1)
    assert labels.dtype == np.int64 and labels.shape == (8,)
    np.testing.assert_array_equal(data, ref["data"])
    np.testing.assert_array_equal(labels, ref["labels"])


def test_stgcn_target_gets_the_file_unchanged(transfer):
    """Non-SkateFormer targets (ST-GCN here) take the common layout as read: no transform on either side."""
    (data, labels), ref = transfer
    np.testing.assert_array_equal(data, ref["batch_x_stgcn"])
    np.testing.assert_array_equal(labels, ref["batch_y_stgcn"])


def test_skateformer_target_gets_the_padded_reindexed_batch(transfer):
    """The in-model transform of the read batch is upstream's SkateFormer batch (8,3,64,24,1); labels untouched."""
    (data, labels), ref = transfer
    expected = ref["batch_x_skateformer"]
    assert expected.shape == (8, 3, 64, 24, 1)
    in_model = np.asarray(skateformer.skateformer_input(jnp.asarray(data)))
    assert in_model.dtype == np.float32
    np.testing.assert_array_equal(in_model, expected)
    np.testing.assert_array_equal(formats.skateformer_input(data), expected)
    np.testing.assert_array_equal(labels, ref["batch_y_skateformer"])
    assert not np.array_equal(expected[:, :, :60], data[:, :, :, :24])  # the joint order is not the identity


def test_sibling_files_hold_what_the_tasar_run_wrote(upstream, transfer):
    """``visual_adData.pt`` = (x_adv, surrogate argmax on x_adv), ``original_data.pt`` = (clean x, attack labels),
    against the TASAR run that wrote them (``tasar_attack.npz``) and its own fool-rate bookkeeping."""
    (data, labels), ref = transfer
    run = np.load(upstream / "tasar_attack.npz")
    np.testing.assert_array_equal(ref["visual_data"], data)
    np.testing.assert_array_equal(ref["visual_data"], run["x_final"])
    np.testing.assert_array_equal(run["x_final"], run["x_adv_iters"][-1])
    np.testing.assert_array_equal(ref["visual_labels"], run["labels_final_pred"])
    # the surrogate's argmax on x_adv fools it exactly as often as the reference counted after the last iteration
    assert 100.0 * np.mean(ref["visual_labels"] != labels) == run["foolrate_after_iter"][-1]
    assert not np.array_equal(ref["visual_labels"], labels)  # visual labels are predictions, not the attack labels
    np.testing.assert_array_equal(ref["original_data"], run["x"])
    np.testing.assert_array_equal(ref["original_labels"], run["labels"])
    np.testing.assert_array_equal(labels, run["labels"])
    # x_adv lies in the ε = 0.01 box around the clean batch (up to one float32 ulp of x + δ)
    assert np.abs(data - ref["original_data"]).max() <= 0.01 * (1 + 1e-5)
