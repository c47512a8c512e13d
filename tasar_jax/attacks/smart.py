"""SMART and CIASA (reference.md §3.3, §3.4): an L2-normalised class gradient mixed with the gradient of a
perceptual loss (joint-weighted L2 + acceleration + bone lengths); only samples the surrogate still classifies
correctly move, so a fooled sample stays where it was first fooled.

    d = w·c/‖c‖ + (1 − w)·p/‖p‖,   c = ∇_x sign·CE,   p = ∇_x L_p(x, x0)   (w = 0.6)
    u = x' − x with x' = x − α·d (gd) or an Adam step;   x ← project(x + u) for the still-correct samples.

The losses are per-sample sums (upstream: batch means); a per-sample L2 normalisation removes the factor, so
directions equal upstream's (up to its 1e-18 guard) and no sample depends on the rest of its batch. The
acceleration term uses the acceleration of ``x − x0`` (upstream: the difference of two float32 accelerations,
whose cancellation error gives a non-zero, then unit-normalised, gradient at ``x = x0`` when compiled) and both
batches' bone lengths come from one call, so the perceptual gradient is exactly 0 at the clean input.

Decisions (docs/decisions.md B20–B24):
* B20 ``u`` larger than ε in L2 is rescaled to ``clip_factor·ε/‖u‖`` with ``clip_factor=1`` (L2 clip to ε, the
  evident intent); upstream multiplies by 5 (``clip_factor=5.0``). With ``gd`` ‖u‖ ≤ α so it never fires.
* B21 ``update_rule="adam"`` is a real per-sample Adam (moments and step count in the attack state, frozen with
  the sample); ``stateless_adam=True`` is upstream's MyAdam, which re-initialises its moments on every call and
  never advances t: ``u = −lr·d/(|d| + ε_adam/√(1 − β₂))`` ≈ ``−0.001·sign(d)``.
* B22 Joint weights 0.02, torso 0.04: the torso is the layout's (``layouts.Skeleton.torso``: HDM05 10–14, NTU 0, 1,
  20, 2, 3, found from ``parents``); ``upstream_joint_weights=True`` uses HDM05's 10–14 for every layout as
  upstream does.
* B23 CIASA's GAN term reaches the input (upstream copies the frame features into a buffer, so its update equals
  SMART's; ``upstream=True`` gives exactly SMART's update and skips the useless discriminator). The intended
  version is a least-squares GAN on per-frame bone-direction cosine matrices: the discriminator learns
  D(clean) → 1, D(adv) → 0 with one Adam step (lr 1e-3) per iteration; the attack adds ``gan_weight·Σ_t
  (D(F_adv,t) − 1)²`` to the perceptual loss (upstream's loss sums D², (D − 1)² on the adversarial frames, whose
  optimum D = ½ carries no signal, and broadcasts (BT,1) against (BT,)).
* B24 Every sample owns a copy of the discriminator (one initial draw from ``discriminator_seed``, carried in the
  surrogate params; each copy trained on its own sample's frames only): batch-global parameters would make a
  sample's attack depend on its batch and cannot be frozen per sample by the driver; the copies are small
  (≈ 24 k floats, × 3 with Adam's moments, per sample).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from tasar_jax.attacks import base, common
from tasar_jax.data import layouts
from tasar_jax.models import streams

NORM_GUARD = 1e-18  # upstream's ‖·‖ + 1e-18
BONE_GUARD = 1e-8  # upstream adds it to every bone-vector component
UPSTREAM_TORSO = (10, 11, 12, 13, 14)


def joint_weights(num_joints: int, torso: tuple[int, ...], base_weight=0.02, torso_weight=0.04) -> jax.Array:
    """Per-joint weights of the L2 term: ``base_weight`` everywhere, ``torso_weight`` on ``torso``."""
    return jnp.full((num_joints,), base_weight, jnp.float32).at[jnp.asarray(torso)].set(torso_weight)


def perceptual_loss(x, x0, parents, weights, *, dt=1 / 30, bone_weight=0.7, recon_weight=0.4):
    """Per-sample perceptual loss (B,) summed over persons: ``bw·L_bone + (1 − bw)·((1 − rw)·L_l2 + rw·L_acc)``."""
    diff = jnp.square(x - x0)
    l2 = jnp.einsum("nctvm,v->n", diff, weights)

    def accel(a):
        return (a[:, :, 2:] - 2 * a[:, :, 1:-1] + a[:, :, :-2]) / dt / dt

    acc = jnp.sum(jnp.square(accel(x - x0)), axis=(1, 2, 3, 4))  # linear: exactly 0 at x = x0
    # one call on both batches: identical inputs give identical lengths under any compilation (exactly 0 at x0)
    lengths = streams.bone_lengths(jnp.concatenate([x, x0]), parents, offset=BONE_GUARD)
    bone = jnp.sum(jnp.square(lengths[:x.shape[0]] - lengths[x.shape[0]:]), axis=(1, 2, 3))
    return bone_weight * bone + (1 - bone_weight) * ((1 - recon_weight) * l2 + recon_weight * acc)


def l2_normalise(g):
    """``g / (‖g‖₂ + 1e-18)`` per sample over all axes but the first."""
    norm = jnp.sqrt(jnp.sum(jnp.square(g), axis=tuple(range(1, g.ndim)), keepdims=True))
    return g / (norm + NORM_GUARD)


class SMARTState(NamedTuple):
    """The iterate; ``adam`` = (m, v, count) for the stateful Adam rule, else None."""

    x: jax.Array
    adam: Any = None


@dataclasses.dataclass(frozen=True)
class SMARTSpec:
    """SMART's hyper-parameters (upstream defaults); ``parents``/``torso`` are the skeleton layout's."""

    config: base.AttackConfig = base.AttackConfig()
    parents: tuple[int, ...] = layouts.HDM05_PARENTS
    torso: tuple[int, ...] = UPSTREAM_TORSO
    class_weight: float = 0.6
    recon_weight: float = 0.4
    bone_weight: float = 0.7
    dt: float = 1 / 30
    update_rule: str = "gd"
    adam_lr: float = 0.001
    stateless_adam: bool = False
    clip_factor: float = 1.0

    def __post_init__(self):
        if self.update_rule not in ("gd", "adam"):
            raise ValueError(f"update_rule must be 'gd' or 'adam', got {self.update_rule!r}")

    def init(self, x0, labels) -> SMARTState:
        if self.update_rule == "adam" and not self.stateless_adam:
            return SMARTState(x0, (jnp.zeros_like(x0), jnp.zeros_like(x0), jnp.zeros(x0.shape[:1], jnp.int32)))
        return SMARTState(x0)

    def perceptual(self, x, x0):
        """Per-sample perceptual loss of iterate ``x`` against the clean ``x0``."""
        weights = joint_weights(x.shape[3], self.torso)
        return perceptual_loss(x, x0, self.parents, weights, dt=self.dt, bone_weight=self.bone_weight,
                               recon_weight=self.recon_weight)

    def direction(self, c, p):
        """``w·ĉ + (1 − w)·p̂`` with per-sample L2-normalised class and perceptual gradients."""
        return self.class_weight * l2_normalise(c) + (1 - self.class_weight) * l2_normalise(p)

    def candidate(self, x, d, adam):
        """The un-masked update target ``x'`` and the new Adam state."""
        if self.update_rule == "gd":
            return x - self.config.step_size * d, adam
        b1, b2, eps = 0.9, 0.999, 1e-8
        if self.stateless_adam:
            m, v, count = 0.0, 0.0, jnp.ones(x.shape[:1], jnp.int32)
        else:
            m, v, count = adam[0], adam[1], adam[2] + 1
        m = b1 * m + (1 - b1) * d
        v = b2 * v + (1 - b2) * jnp.square(d)
        k = count.astype(jnp.float32).reshape((-1,) + (1,) * (x.ndim - 1))
        lr_t = self.adam_lr * jnp.sqrt(1 - b2 ** k) / (1 - b1 ** k)
        new = None if self.stateless_adam else (m, v, count)
        return x - lr_t * m / (jnp.sqrt(v) + eps), new

    def move(self, x, x0, candidate, still_correct):
        """``u = x' − x`` (L2-rescaled when ‖u‖ > ε), applied to the still-correct samples only, then projected."""
        eps = self.config.epsilon
        u = candidate - x
        norm = jnp.sqrt(jnp.sum(jnp.square(u), axis=tuple(range(1, u.ndim)), keepdims=True))
        if eps > 0:
            u = jnp.where(norm > eps, u * (self.clip_factor * eps) / jnp.maximum(norm, common.TINY), u)
        keep = still_correct.reshape((-1,) + (1,) * (x.ndim - 1))
        return common.project_linf(jnp.where(keep, x + u, x), x0, eps)

    def update(self, state, x0, labels, logits, c, p):
        """One SMART update from the class gradient ``c`` and perceptual gradient ``p`` of the iterate."""
        still_correct = ~common.fooled(jnp.argmax(logits, -1), labels, self.config.targeted)
        candidate, adam = self.candidate(state.x, self.direction(c, p), state.adam)
        if adam is not None:  # Adam moments advance only for the samples that move
            keep = lambda a: still_correct.reshape((-1,) + (1,) * (a.ndim - 1))  # noqa: E731
            adam = jax.tree.map(lambda n, o: jnp.where(keep(n), n, o), adam, state.adam)
        return SMARTState(self.move(state.x, x0, candidate, still_correct), adam)

    def step(self, apply_fn, params, x0, labels, keys, state, t):
        c, logits = base.loss_gradient(apply_fn, params, state.x, labels, self.config.sign)
        p = jax.grad(lambda x: jnp.sum(self.perceptual(x, x0)))(state.x)
        return self.update(state, x0, labels, logits, c, p), logits


# ---------------------------------------------------------------------------------------------------------------
# CIASA: SMART plus a least-squares GAN on per-frame bone-direction cosine matrices (one discriminator per sample)


def frame_features(x, parents):
    """Per-frame bone-direction cosines ``F[i, j] = ⟨b_i, b_j⟩/(|b_i||b_j|)`` of one sample: (C, T, V, M) →
    (T·M, V, V); lengths with the 1e-8 inside the square as upstream; root bones (own parent) are zero."""
    parents = jnp.asarray(parents)
    not_root = (parents != jnp.arange(parents.shape[0]))[None, None, :, None]
    bones = (x - x[:, :, parents, :]) * not_root
    lengths = jnp.sqrt(jnp.sum(jnp.square(bones + BONE_GUARD), axis=0))  # (T, V, M)
    bones = jnp.moveaxis(bones, -1, 1).reshape(3, -1, x.shape[2])  # (C, M·T, V)
    lengths = jnp.moveaxis(lengths, -1, 0).reshape(-1, x.shape[2])
    dots = jnp.einsum("cfi,cfj->fij", bones, bones)
    return dots / lengths[:, :, None] / lengths[:, None, :]


def init_discriminator(seed: int, num_joints: int) -> dict:
    """Conv(1→32, 3) → Conv(32→32, 3) → Linear((V−4)²·32 → 1) → ReLU with torch's default uniform init (numpy,
    outside jit: an in-graph threefry draw of 24 k values costs seconds of compile time)."""
    rng = np.random.default_rng(seed)

    def layer(shape, fan_in):
        bound = 1 / math.sqrt(fan_in)
        return (rng.uniform(-bound, bound, shape).astype(np.float32),
                rng.uniform(-bound, bound, shape[:1]).astype(np.float32))

    flat = (num_joints - 4) ** 2 * 32
    return {"conv1": layer((32, 1, 3, 3), 9), "conv2": layer((32, 32, 3, 3), 32 * 9), "linear": layer((1, flat), flat)}


@dataclasses.dataclass(frozen=True)
class PackedApply:
    """``apply_fn`` of a surrogate whose params are packed as ``(model_params, attack_arrays)``: attacks carry
    arrays that are not per-sample (initial discriminator, SWAG moments) in the surrogate params, which the driver
    passes to ``step`` unchanged; hashable, so equal wrappers share one compilation."""

    apply_fn: Any

    def __call__(self, packed, x):
        return self.apply_fn(packed[0], x)


def _conv3x3(h, w, b):
    """Valid 3×3 convolution with per-sample kernels, channels last: h (B, F, H, W, Cin), w (B, Cout, Cin, 3, 3)
    → (B, F, H − 2, W − 2, Cout), as one batched matmul over 3×3 patches (a vmapped convolution with per-sample
    kernels compiles slowly on CPU)."""
    n, f, height, width, c = h.shape
    patches = jnp.concatenate([h[:, :, i:i + height - 2, j:j + width - 2] for i in range(3) for j in range(3)], -1)
    kernel = jnp.transpose(w, (0, 3, 4, 2, 1)).reshape(n, 9 * c, -1)  # (B, (i, j, Cin), Cout)
    out = jnp.matmul(patches.reshape(n, -1, 9 * c), kernel) + b[:, None, :]
    return out.reshape(n, f, height - 2, width - 2, -1)


def discriminate(d_params, features):
    """Per-sample discriminators (leading axis B) on frame features (B, F, V, V) → outputs (B, F)."""
    h = _conv3x3(_conv3x3(features[..., None], *d_params["conv1"]), *d_params["conv2"])
    h = jnp.moveaxis(h, -1, 2)  # torch's Flatten order: (C, H, W)
    w, b = d_params["linear"]
    return jax.nn.relu(jnp.einsum("bfk,bk->bf", h.reshape(h.shape[:2] + (-1,)), w[:, 0]) + b)


class CIASAState(NamedTuple):
    x: jax.Array
    adam: Any
    discriminator: Any
    opt_state: Any


@dataclasses.dataclass(frozen=True)
class CIASASpec:
    """SMART plus ``gan_weight·Σ_t (D(F_adv,t) − 1)²`` in the perceptual loss, D trained alongside (B23, B24)."""

    smart: SMARTSpec = SMARTSpec()
    gan_weight: float = 1.0
    discriminator_lr: float = 1e-3

    @property
    def config(self) -> base.AttackConfig:
        return self.smart.config

    def _optimizer(self):
        return optax.adam(self.discriminator_lr, b1=0.9, b2=0.999, eps=1e-8)

    def init(self, x0, labels) -> CIASAState:
        shapes = jax.eval_shape(lambda: init_discriminator(0, x0.shape[3]))
        d_params = jax.tree.map(lambda s: jnp.zeros(x0.shape[:1] + s.shape, s.dtype), shapes)  # set at t = 0
        smart = self.smart.init(x0, labels)
        return CIASAState(smart.x, smart.adam, d_params, jax.vmap(self._optimizer().init)(d_params))

    def step(self, apply_fn, params, x0, labels, keys, state, t):
        """``params = (model params, initial discriminator)`` (see ``CIASA``); every sample starts from a copy."""
        smart, parents = self.smart, self.smart.parents
        fresh = jax.tree.map(lambda a, s: jnp.broadcast_to(a, s.shape), params[1], state.discriminator)
        d_params = jax.tree.map(lambda f, s: jnp.where(t == 0, f, s), fresh, state.discriminator)
        opt_state = jax.tree.map(lambda f, s: jnp.where(t == 0, f, s),
                                 jax.vmap(self._optimizer().init)(fresh), state.opt_state)
        c, logits = base.loss_gradient(apply_fn, params, state.x, labels, smart.config.sign)

        features = jax.vmap(lambda xb: frame_features(xb, parents))
        clean = features(x0)
        frames = clean.shape[1]

        def both(x, d):  # D on the adversarial then the clean frames: one forward serves both gradients
            return discriminate(d, jnp.concatenate([features(x), clean], axis=1))

        out, vjp = jax.vjp(both, state.x, d_params)
        fake, real = out[:, :frames], out[:, frames:]
        # generator: gan_weight·Σ_t (D(F_adv) − 1)², through x only (the clean half gets a zero cotangent)
        gan_x, _ = vjp(jnp.concatenate([2 * self.gan_weight * (fake - 1), jnp.zeros_like(real)], axis=1))
        # discriminator: Σ_t D(F_adv)² + (D(F_clean) − 1)² (per sample: no coupling), through d only
        _, d_grads = vjp(jnp.concatenate([2 * fake, 2 * (real - 1)], axis=1))
        p = jax.grad(lambda x: jnp.sum(smart.perceptual(x, x0)))(state.x) + gan_x
        updates, opt_state = jax.vmap(self._optimizer().update)(d_grads, opt_state, d_params)
        d_params = optax.apply_updates(d_params, updates)
        new = smart.update(SMARTState(state.x, state.adam), x0, labels, logits, c, p)
        return CIASAState(new.x, new.adam, d_params, opt_state), logits


# ---------------------------------------------------------------------------------------------------------------


def _smart_spec(parents, torso, upstream_joint_weights, config, **hyper) -> SMARTSpec:
    parents = tuple(int(p) for p in parents)
    if upstream_joint_weights:
        torso = UPSTREAM_TORSO
    elif torso is None:
        try:
            torso = layouts.skeleton_with_parents(parents).torso
        except ValueError:
            raise ValueError("unknown skeleton layout: give the torso joints (torso=...) for the L2 weights") from None
    cfg = base.AttackConfig(**base.canonical_kwargs(config))
    return SMARTSpec(cfg, parents, tuple(int(j) for j in torso), **hyper)


def SMART(surrogate: base.Surrogate, parents=layouts.HDM05_PARENTS, torso=None, class_weight=0.6, recon_weight=0.4,
          bone_weight=0.7, dt=1 / 30, update_rule="gd", adam_lr=0.001, stateless_adam=False, clip_factor=1.0,
          upstream_joint_weights=False, **config) -> base.Attack:
    """SMART bound to ``surrogate``. ``parents``: the skeleton layout (default HDM05); ``torso``: joints weighted
    0.04 (default: the layout's torso); upstream quirks: ``clip_factor=5.0``, ``stateless_adam=True``,
    ``upstream_joint_weights=True``. Keyword arguments besides are ``AttackConfig`` fields."""
    spec = _smart_spec(parents, torso, upstream_joint_weights, config, class_weight=class_weight,
                       recon_weight=recon_weight, bone_weight=bone_weight, dt=dt, update_rule=update_rule,
                       adam_lr=adam_lr, stateless_adam=stateless_adam, clip_factor=clip_factor)
    return base.Attack(surrogate, spec)


def CIASA(surrogate: base.Surrogate, parents=layouts.HDM05_PARENTS, torso=None, gan_weight=1.0,
          discriminator_lr=1e-3, discriminator_seed=0, upstream=False, **kw) -> base.Attack:
    """CIASA bound to ``surrogate``: SMART's arguments plus the GAN term; ``upstream=True`` is upstream's effective
    algorithm, i.e. exactly SMART (its GAN term never reaches the input). The initial discriminator (the same
    for every sample) is drawn from ``discriminator_seed``."""
    smart = SMART(surrogate, parents, torso, **kw)
    if upstream:
        return smart
    d0 = jax.tree.map(jnp.asarray, init_discriminator(discriminator_seed, len(smart.spec.parents)))
    packed = base.Surrogate(PackedApply(surrogate.apply_fn), (surrogate.params, d0))
    return base.Attack(packed, CIASASpec(smart.spec, gan_weight, discriminator_lr))
