"""Worker of ``tests/test_scale.py``: runs a few attacks and a prediction on a tiny ST-GCN over a memory-mapped set
with ``tasar_jax.scale`` on whatever devices this process is given, and (process 0) saves the results.

    python tests/scale_worker.py DATA.npy OUT.npz --devices 8 --also-one-device
    python tests/scale_worker.py DATA.npy OUT.npz --devices 8 --coordinator 127.0.0.1:PORT --processes 2 --rank R

``--devices``: CPU devices of this process; the results use a mesh over all devices of all processes, and with
``--also-one-device`` also a mesh of the first device alone (keys prefixed ``one_``).

Not a test module itself (no ``test_`` prefix): it must configure its devices before JAX starts.
"""

from __future__ import annotations

import argparse
import os
import sys

PER_DEVICE_BATCH = 2


def main(argv=None):
    p = argparse.ArgumentParser()
    p.add_argument("data")
    p.add_argument("out")
    p.add_argument("--devices", type=int, default=1)
    p.add_argument("--coordinator", default=None)
    p.add_argument("--processes", type=int, default=1)
    p.add_argument("--rank", type=int, default=0)
    p.add_argument("--also-one-device", action="store_true")
    args = p.parse_args(argv)
    os.environ["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={args.devices}"
    import jax

    from tasar_jax import scale

    if args.coordinator:
        scale.initialize_distributed(args.coordinator, args.processes, args.rank, cpu_devices=args.devices)
    import numpy as np

    from tasar_jax import models, training
    from tasar_jax.attacks import base, registry
    from tasar_jax.posterior import heads, posttrain

    x = np.load(args.data, mmap_mode="r")  # each process reads only the rows of its own devices
    n, num_classes = x.shape[0], 6
    model = models.create("stgcn", "hdm05", num_classes=num_classes, width=0.25, seed=0)
    model.eval()
    surrogate = base.Surrogate.from_model(model)
    labels = np.arange(n, dtype=np.int32) % num_classes
    mean = posttrain.init_heads(jax.random.key(1), 2, num_classes)
    posterior = (heads.Posterior(mean, mean, jax.tree.map(lambda a: a**2 + 1e-3, mean)),)  # one stream
    per_stream = base.Surrogate.from_model(model, streams=True)  # TASAR's heads take per-stream logits
    ar = {f"ar{i}": 0.3 * np.asarray(jax.random.uniform(jax.random.key(i + 5), x.shape), np.float32) for i in (1, 2)}
    attacks = {"dim": (registry.constructor("dim")(surrogate, iterations=3), None),
               "tasar": (registry.constructor("tasar")(per_stream, posterior, iterations=3, samples_per_head=2), ar)}
    meshes = {"": scale.data_mesh()}
    if args.also_one_device:
        meshes["one_"] = scale.data_mesh(jax.devices()[:1])
    results = {}
    for prefix, mesh in meshes.items():
        results[f"{prefix}devices"] = np.asarray(mesh.size)
        for name, (atk, extras) in attacks.items():
            r = base.run_in_batches(atk, jax.random.key(3), x, labels, PER_DEVICE_BATCH, extras=extras, mesh=mesh)
            results[f"{prefix}{name}"] = r.x_adv
            results[f"{prefix}{name}_rates"] = r.fool_rate_per_iteration
        results[f"{prefix}logits"] = training.predict(model, x, PER_DEVICE_BATCH, mesh=mesh)
    if jax.process_index() == 0:
        np.savez(args.out, **results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
