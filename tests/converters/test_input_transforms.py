"""The models' own input transforms reproduce the network inputs upstream recorded (``x_model``, ``x_model_bone``).

Bone streams and SkateFormer do not feed ``x`` to the network: the bone streams (and the bone member of the
two-stream ensembles) take ``x − x[parents]``, SkateFormer the zero-padded, re-indexed clip. Both are a single
subtraction or pure copies in float32, so they must be exact, not merely close.
"""

import dataclasses

import jax.numpy as jnp
import numpy as np
import pytest

from tasar_jax import models
from tasar_jax.data import formats, layouts
from tasar_jax.models import skateformer, streams

# io fixture → (array holding the network input, architecture whose input transform makes it)
BONE_INPUTS = {
    "MSG3D_bone_hdm05_io.npz": ("x_model", "msg3d_bone"),
    "AGCN_bone_hdm05_io.npz": ("x_model", "agcn_bone"),
    "MSG3D_hdm05_io.npz": ("x_model_bone", "msg3d"),
    "AGCN_hdm05_io.npz": ("x_model_bone", "agcn"),
}
SKATEFORMER_INPUT = "SkateFormer_hdm05_io.npz"


def _bone_stream_config(arch: str):
    """The config of the model that sees bone vectors: the bone stream itself, or an ensemble's bone member (which
    ``models.create`` builds from the ensemble config with ``stream="bone"``)."""
    config = models.config_for(arch, "hdm05")
    return config if config.stream == "bone" else dataclasses.replace(config, stream="bone")


def test_every_recorded_network_input_is_covered(upstream):
    """A new io fixture with a transformed input must be added here, not silently left untested."""
    recorded = {}
    for path in sorted(upstream.glob("*_io.npz")):
        with np.load(path) as io:
            keys = [k for k in io.files if k.startswith("x_model")]
        if keys:
            recorded[path.name] = keys
    covered = {name: [key] for name, (key, _) in BONE_INPUTS.items()} | {SKATEFORMER_INPUT: ["x_model"]}
    assert recorded == covered


@pytest.mark.parametrize("fixture", sorted(BONE_INPUTS))
def test_bone_vectors_are_the_upstream_bone_input(upstream, fixture):
    """``x − x[parents]`` with the parents the model is configured with (HDM05's, root 10 its own parent)."""
    key, arch = BONE_INPUTS[fixture]
    io = np.load(upstream / fixture)
    config = _bone_stream_config(arch)
    assert config.parents == layouts.get_dataset("hdm05").parents
    bones = np.asarray(streams.stream_input(jnp.asarray(io["x"]), config.stream, config.parents))
    assert bones.dtype == np.float32 and bones.shape == io[key].shape
    np.testing.assert_array_equal(bones, io[key])
    np.testing.assert_array_equal(np.asarray(streams.bone_vectors(jnp.asarray(io["x"]), config.parents)), io[key])
    assert not np.any(bones[:, :, :, 10])  # the root bone is zero


def test_bone_vectors_depend_on_the_parent_table(upstream):
    """The comparison above is sensitive to the parents: NTU's table gives a different input."""
    io = np.load(upstream / "MSG3D_bone_hdm05_io.npz")
    ntu = np.asarray(streams.bone_vectors(jnp.asarray(io["x"]), layouts.NTU_PARENTS))
    assert np.abs(ntu - io["x_model"]).max() > 0.1


def test_joint_streams_see_x_itself(upstream):
    io = np.load(upstream / "MSG3D_joint_hdm05_io.npz")
    config = models.config_for("msg3d_joint", "hdm05")
    np.testing.assert_array_equal(np.asarray(streams.stream_input(jnp.asarray(io["x"]), config.stream,
                                                                   config.parents)), io["x"])


def test_skateformer_input_is_the_upstream_padded_reindexed_clip(upstream):
    """The in-model (jnp, differentiable) transform and the numpy one both give upstream's (2,3,64,24,1) input:
    frames 60..63 zero, joints ``new_idx`` (joint 20 dropped)."""
    io = np.load(upstream / SKATEFORMER_INPUT)
    x, expected = io["x"], io["x_model"]
    assert expected.shape == (2, 3, 64, 24, 1)
    in_model = np.asarray(skateformer.skateformer_input(jnp.asarray(x)))
    assert in_model.dtype == np.float32
    np.testing.assert_array_equal(in_model, expected)
    np.testing.assert_array_equal(formats.skateformer_input(x), expected)
    assert not np.any(expected[:, :, 60:])
    np.testing.assert_array_equal(expected[:, :, :60], x[:, :, :, list(layouts.SKATEFORMER_JOINTS)])
