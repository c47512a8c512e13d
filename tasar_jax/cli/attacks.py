"""TASAR commands: ``posttrain``, ``import-posterior``, ``motion``, ``attack``."""

from __future__ import annotations

import pathlib

from tasar_jax.cli.common import console


def _posttrain(args) -> None:
    from tasar_jax import pipeline
    from tasar_jax.posterior import PostTrainConfig

    config = PostTrainConfig(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, swa_n=args.swa_n,
                             sampler=args.sampler, reference_quirks=args.reference_quirks,
                             burn_in_epochs=args.burn_in)
    r = pipeline.posttrain(args.model, args.data, args.out, config=config, num_heads=args.heads, seed=args.seed,
                           train_file=args.train_file, test_file=args.test_file)
    heads = ", ".join(f"{a:.1%}" for a in r["head_accuracy"])
    streams = f" per stream ({' + '.join(r['streams'])})" if r["streams"] else ""
    console.print(f"surrogate {r['surrogate_accuracy']:.1%} → with {args.heads} appended heads{streams} "
                  f"{r['appended_accuracy']:.1%} (heads {heads}); SWAG snapshots {r['snapshots'].tolist()} "
                  f"→ {r['file']}")


def _import_posterior(args) -> None:
    from converters import posterior_io
    from tasar_jax.posterior import save_posterior

    folders = [args.folder] + ([args.bone_folder] if args.bone_folder else [])
    posteriors = tuple(posterior_io.read_upstream_posterior(f, args.heads, swag=not args.no_swag) for f in folders)
    save_posterior(args.out, posteriors if len(posteriors) == 2 else posteriors[0], dataset=args.dataset,
                   source=[str(f) for f in folders], swag=not args.no_swag)
    kind = "two-stream " if len(posteriors) == 2 else ""
    console.print(f"{kind}posterior with {args.heads} heads from {', '.join(map(str, folders))} → {args.out}")


def _attack(args) -> None:
    from tasar_jax import pipeline
    from tasar_jax.attacks import tasar

    make = tasar.TASARConfig.upstream if args.upstream else tasar.TASARConfig
    config = make(iterations=args.iterations, epsilon=args.epsilon, step_size=args.step,
                  samples_per_head=args.samples_per_head, scale=args.scale, temporal=not args.no_temporal,
                  targeted=args.targeted)
    r = pipeline.attack_tasar(args.model, args.data, args.out, posterior_path=args.posterior,
                              motion_path=args.motion, config=config, batch_size=args.batch_size, seed=args.seed,
                              upstream_targets=args.upstream)
    mode = "targeted" if args.targeted else "untargeted"
    console.print(f"TASAR {mode} white-box success {r['success_rate']:.1%} on {r['num_samples']} samples, "
                  f"{r['seconds_per_example'] * 1e3:.1f} ms per example, max |δ| {r['max_linf']:.4f} → {r['file']}")


def _motion(args) -> None:
    import numpy as np

    from tasar_jax import motion

    dataset = args.dataset
    if dataset is None and args.input.suffix == ".npz":  # the clips' rank tells the file layout
        with np.load(args.input) as data:
            dataset = "hdm05" if "clips" in data and data["clips"].ndim == 3 else "ntu120"
    out = motion.motion_for_file(args.input, dataset, args.out, kernel=args.kernel, bandwidth=args.bandwidth,
                                 chunk_size=args.chunk_size, use_cache=not args.no_cache)
    with np.load(out) as data:
        console.print(f"wrote ar1, ar2 {data['ar1'].shape} float64 → {out}")

def add_commands(sub) -> None:
    p = sub.add_parser("posttrain", help="TASAR post-training: appended Bayesian heads + Dual Bayesian SWAG posterior")
    p.add_argument("--model", required=True, help="surrogate checkpoint directory (frozen, eval mode)")
    p.add_argument("--data", default="data")
    p.add_argument("--train-file", default="classTrain.npz")
    p.add_argument("--test-file", default="classTest.npz")
    p.add_argument("--out", default=None, help="default: <model>/posterior.npz")
    p.add_argument("--heads", type=int, default=3, help="K appended models (upstream README: 3)")
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--swa-n", type=int, default=300, help="SWAG snapshots wanted over the run")
    p.add_argument("--sampler", default="sgadahmc", choices=["sgadahmc", "sghmc", "sgld"])
    p.add_argument("--reference-quirks", action="store_true", help="upstream's SG-AdaHMC and SWAG bookkeeping")
    p.add_argument("--burn-in", type=int, default=0, help="upstream --burnIn: plain sampler epochs first")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=_posttrain)

    p = sub.add_parser("import-posterior",
                       help="upstream TASAR head + Dual_Bayesian SWAG files → a posterior.npz (needs torch)")
    p.add_argument("folder", type=pathlib.Path,
                   help="upstream retFolder <retPath>/<dataset>/ExtendedBayesian/<base>/PDBATrainer/")
    p.add_argument("bone_folder", type=pathlib.Path, nargs="?", default=None,
                   help="the bone stream's retFolder, for a two-stream (msg3d/agcn) surrogate")
    p.add_argument("--out", required=True, type=pathlib.Path, help="posterior .npz to write")
    p.add_argument("--heads", type=int, default=3, help="--bayesianModelNum of the upstream run")
    p.add_argument("--no-swag", action="store_true", help="heads only (before DualBayesian): zero-variance posterior")
    p.add_argument("--dataset", default=None, help="recorded in the metadata")
    p.set_defaults(func=_import_posterior)

    p = sub.add_parser("attack", help="transfer attack with a post-trained surrogate (TASAR)")
    p.add_argument("--method", default="tasar", choices=["tasar"])
    p.add_argument("--model", required=True, help="surrogate checkpoint directory")
    p.add_argument("--data", default=None, help="samples to attack (default: <model>/adClassTrain.npz)")
    p.add_argument("--posterior", default=None, help="default: <model>/posterior.npz")
    p.add_argument("--motion", default=None, help="AR1/AR2 cache (default: beside the data file)")
    p.add_argument("--out", default=None, help="default: <model>/tasar_adv.npz")
    p.add_argument("--iterations", type=int, default=200)
    p.add_argument("--epsilon", type=float, default=0.01)
    p.add_argument("--step", type=float, default=0.01)
    p.add_argument("--samples-per-head", type=int, default=20)
    p.add_argument("--scale", type=float, default=1.5)
    p.add_argument("--no-temporal", action="store_true", help="without the motion-dynamics term")
    p.add_argument("--targeted", action="store_true", help="random target class per sample (keyed by --seed)")
    p.add_argument("--upstream", action="store_true",
                   help="upstream's per-batch early stop, shared draws, targets that may equal the true class")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=_attack)

    p = sub.add_parser("motion", help="TASAR motion dynamics: time-varying AR coefficients AR1/AR2 (tvReg tvAR)")
    p.add_argument("--out", required=True, type=pathlib.Path, help=".npz to write (ar1, ar2: (N, 3, T, V, M) float64)")
    p.add_argument("--dataset", default=None, help="layout of a dataset .npz (default: from its clips' rank)")
    p.add_argument("--kernel", default="Triweight", choices=["Triweight", "Epa", "Gaussian"])
    p.add_argument("--bandwidth", type=float, default=None, help="fixed bandwidth (default: leave-one-out CV)")
    p.add_argument("--chunk-size", type=int, default=8, help="samples per progress step")
    p.add_argument("--no-cache", action="store_true", help="recompute even if --out is up to date")
    p.add_argument("input", type=pathlib.Path, help=".npy (N, 3, T, V, M) or a dataset .npz")
    p.set_defaults(func=_motion)
