"""Attack commands: ``posttrain``, ``import-posterior``, ``motion`` (TASAR's inputs), ``finetune`` (BA's) and
``attack --method NAME`` (every attack of the registry)."""

from __future__ import annotations

import pathlib

from tasar_jax.cli.common import (
    COUNT,
    NON_NEGATIVE,
    NON_NEGATIVE_INT,
    POSITIVE,
    add_scale_arguments,
    console,
    start_distributed,
)
from tasar_jax.data.layouts import DATASETS


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
    from tasar_jax.converters import posterior_io
    from tasar_jax.posterior import save_posterior

    folders = [args.folder] + ([args.bone_folder] if args.bone_folder else [])
    posteriors = tuple(posterior_io.read_upstream_posterior(f, args.heads, swag=not args.no_swag) for f in folders)
    save_posterior(args.out, posteriors, dataset=args.dataset,
                   source=[str(f) for f in folders], swag=not args.no_swag)
    kind = "two-stream " if len(posteriors) == 2 else ""
    console.print(f"{kind}posterior with {args.heads} heads from {', '.join(map(str, folders))} → {args.out}")


# the attack flags besides --set: flag destination → the setting it gives (None: flag not given)
_FLAGS = {"iterations": "iterations", "epsilon": "epsilon", "step": "step_size", "samples_per_head": "samples_per_head",
          "n_models": "n_models", "scale": "scale"}


def _hyper(args) -> dict:
    """The attack's keyword arguments from the flags that were given and ``--set KEY=VALUE``; the rest keep the
    attack's own defaults (``attacks.build.defaults``)."""
    import json

    from tasar_jax.attacks import build

    hyper = {setting: getattr(args, flag) for flag, setting in _FLAGS.items() if getattr(args, flag) is not None}
    if args.targeted:
        hyper["targeted"] = True
    if args.no_temporal:
        hyper["temporal"] = False
    if args.upstream:
        hyper.update(build.upstream_settings(args.method))
    for item in args.set:
        name, _, value = item.partition("=")
        if not value:
            raise ValueError(f"--set takes KEY=VALUE, got {item!r}")
        try:
            hyper[name.replace("-", "_")] = json.loads(value)
        except json.JSONDecodeError:
            hyper[name.replace("-", "_")] = value
    build.check_settings(args.method, hyper)
    return hyper


def _settings_help() -> str:
    """Every attack's settings with their defaults, for ``attack --help`` (common ones listed once)."""
    import textwrap

    from tasar_jax.attacks import build

    common = build.defaults("fgsm")
    lines = ["settings (--set KEY=VALUE; defaults shown):",
             "  every attack: " + ", ".join(f"{k}={v!r}" for k, v in common.items())]
    for name in build.names():
        first = next(n for n in build.names() if build.entry(n).target == build.entry(name).target)
        try:
            own = {k: v for k, v in build.defaults(name).items() if k not in common or common[k] != v}
        except (ImportError, AttributeError):  # a plugin attack whose module is not installed
            continue
        own = {k: ("<the dataset's>" if k in ("parents", "dataset") else repr(v)) for k, v in own.items()}
        if first != name:  # a preset variant (the TASAR ablations)
            text = f"{name}: {first} with " + ", ".join(f"{k}={v!r}" for k, v in build.entry(name).preset)
        else:
            text = f"{name}: " + (", ".join(f"{k}={v}" for k, v in own.items()) or "no others")
        lines += textwrap.wrap(text, 116, initial_indent="  ", subsequent_indent="      ")
    return "\n".join(lines)


def _attack(args) -> None:
    start_distributed(args)
    from tasar_jax import pipeline

    r = pipeline.attack(args.method, args.model, args.data, args.out, hyper=_hyper(args), members=args.member,
                        posterior_path=args.posterior, motion_path=args.motion, swag_path=args.swag,
                        batch_size=args.batch_size, seed=args.seed, upstream_targets=args.upstream,
                        memory_budget=args.memory_budget)
    mode = "targeted" if args.targeted else "untargeted"
    console.print(f"{args.method} {mode} white-box success {r['success_rate']:.1%} on {r['num_samples']} samples, "
                  f"{r['seconds_per_example'] * 1e3:.1f} ms per example, max |δ| {r['max_linf']:.4f} → {r['file']}")


def _finetune(args) -> None:
    from tasar_jax import pipeline
    from tasar_jax.posterior import full_swag

    config = full_swag.FinetuneConfig(epochs=args.epochs, batch_size=args.batch_size, learning_rate=args.lr,
                                      lam=args.lam, swa_n=args.swa_n, seed=args.seed)
    r = pipeline.finetune_swag(args.model, args.data, args.out, config=config,
                               upstream_statistics=args.upstream_statistics, train_file=args.train_file)
    console.print(f"SWAG moments → {r['file']}; BA attacks with {r['model_dir']}")


def _motion(args) -> None:
    import numpy as np

    from tasar_jax import motion

    dataset = args.dataset
    if dataset is None and args.input.suffix == ".npz":  # the stored clips' shape tells the dataset layout
        from tasar_jax.data import formats

        dataset = formats.dataset_of_file(args.input)
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
    p.add_argument("--heads", type=COUNT, default=3, help="K appended models (upstream README: 3)")
    p.add_argument("--epochs", type=COUNT, default=5)
    p.add_argument("--batch-size", type=COUNT, default=32)
    p.add_argument("--lr", type=POSITIVE, default=2e-3)
    p.add_argument("--swa-n", type=COUNT, default=300, help="SWAG snapshots wanted over the run")
    p.add_argument("--sampler", default="sgadahmc", choices=["sgadahmc", "sghmc", "sgld"])
    p.add_argument("--reference-quirks", action="store_true", help="upstream's SG-AdaHMC and SWAG bookkeeping")
    p.add_argument("--burn-in", type=NON_NEGATIVE_INT, default=0, help="upstream --burnIn: plain sampler epochs first")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=_posttrain)

    p = sub.add_parser("import-posterior",
                       help="upstream TASAR head + Dual_Bayesian SWAG files → a posterior.npz (needs torch)")
    p.add_argument("folder", type=pathlib.Path,
                   help="upstream retFolder <retPath>/<dataset>/ExtendedBayesian/<base>/PDBATrainer/")
    p.add_argument("bone_folder", type=pathlib.Path, nargs="?", default=None,
                   help="the bone stream's retFolder, for a two-stream (msg3d/agcn) surrogate")
    p.add_argument("--out", required=True, type=pathlib.Path, help="posterior .npz to write")
    p.add_argument("--heads", type=COUNT, default=3, help="--bayesianModelNum of the upstream run")
    p.add_argument("--no-swag", action="store_true", help="heads only (before DualBayesian): zero-variance posterior")
    p.add_argument("--dataset", default=None, choices=sorted(DATASETS), help="recorded in the metadata")
    p.set_defaults(func=_import_posterior)

    import argparse

    from tasar_jax.attacks import build

    p = sub.add_parser("attack", help="run an attack from a surrogate checkpoint on its gathered samples",
                       epilog=_settings_help(), formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--method", default="tasar", choices=build.names())
    p.add_argument("--model", required=True, help="surrogate checkpoint directory")
    p.add_argument("--member", action="append", default=[], help="ensemble/svre: another member checkpoint")
    p.add_argument("--data", default=None, help="samples to attack (default: <model>/adClassTrain.npz)")
    p.add_argument("--out", default=None, help="default: <model>/<method>_adv.npz")
    p.add_argument("--iterations", type=COUNT, default=None, help="the attack's iterations setting")
    p.add_argument("--epsilon", type=POSITIVE, default=None, help="the attack's epsilon setting (L∞ radius)")
    p.add_argument("--step", type=POSITIVE, default=None, help="the attack's step_size setting")
    p.add_argument("--targeted", action="store_true", help="random target class per sample (keyed by --seed)")
    p.add_argument("--upstream", action="store_true", help="the attack's upstream switches (TASAR: per-batch early "
                   "stop, shared draws, §7.15 bone head) and targets that may equal the true class")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="any other hyper-parameter of the attack, e.g. --set decay=1.0 (JSON values)")
    p.add_argument("--batch-size", type=COUNT, default=None,
                   help="samples per device in one chunk (default 16, or what --memory-budget allows)")
    p.add_argument("--seed", type=int, default=0)
    add_scale_arguments(p)
    g = p.add_argument_group("TASAR and BA")
    g.add_argument("--posterior", default=None, help="TASAR: default <model>/posterior.npz")
    g.add_argument("--motion", default=None, help="TASAR: AR1/AR2 cache (default: beside the data file)")
    g.add_argument("--samples-per-head", type=COUNT, default=None, help="TASAR: posterior draws per head")
    g.add_argument("--no-temporal", action="store_true", help="TASAR without the motion-dynamics term")
    g.add_argument("--swag", default=None, help="BA: default <model>/swag.npz (tasar-jax finetune)")
    g.add_argument("--n-models", type=COUNT, default=None, help="BA: networks drawn per iteration")
    g.add_argument("--scale", type=NON_NEGATIVE, default=None, help="posterior std multiplier (TASAR, BA)")
    p.set_defaults(func=_attack)

    p = sub.add_parser("finetune", help="BA's surrogate: SWAG fine-tuning of the whole network (upstream finetune)")
    p.add_argument("--model", required=True, help="surrogate checkpoint directory")
    p.add_argument("--data", default="data")
    p.add_argument("--train-file", default="classTrain.npz")
    p.add_argument("--out", default=None, help="folder for swag.npz and ba_model/ (default: the model's)")
    p.add_argument("--epochs", type=COUNT, default=20)
    p.add_argument("--batch-size", type=COUNT, default=64)
    p.add_argument("--lr", type=POSITIVE, default=0.01)
    p.add_argument("--lam", type=NON_NEGATIVE, default=1e-3)
    p.add_argument("--swa-n", type=COUNT, default=300)
    p.add_argument("--upstream-statistics", action="store_true",
                   help="BA keeps the original batch-norm statistics, as upstream (§7.27)")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=_finetune)

    p = sub.add_parser("motion", help="TASAR motion dynamics: time-varying AR coefficients AR1/AR2 (tvReg tvAR)")
    p.add_argument("--out", required=True, type=pathlib.Path, help=".npz to write (ar1, ar2: (N, 3, T, V, M) float64)")
    p.add_argument("--dataset", default=None, choices=sorted(DATASETS),
                   help="layout of a dataset .npz (default: from its clips' rank)")
    p.add_argument("--kernel", default="Triweight", choices=["Triweight", "Epa", "Gaussian"])
    p.add_argument("--bandwidth", type=POSITIVE, default=None, help="fixed bandwidth (default: leave-one-out CV)")
    p.add_argument("--chunk-size", type=COUNT, default=8, help="samples per progress step")
    p.add_argument("--no-cache", action="store_true", help="recompute even if --out is up to date")
    p.add_argument("input", type=pathlib.Path, help=".npy (N, 3, T, V, M) or a dataset .npz")
    p.set_defaults(func=_motion)
