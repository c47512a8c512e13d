"""Command line: ``tasar-jax <command>``. Parses arguments and calls one library function per command.

Nothing imports this module; it is the only place in ``tasar_jax`` that imports ``converters`` and
``experiments``.
"""

from __future__ import annotations

import argparse
import pathlib
import sys

from rich.console import Console

console = Console(soft_wrap=True)


def _add_train_args(p: argparse.ArgumentParser) -> None:
    from tasar_jax import models

    p.add_argument("--arch", "--model", dest="arch", default="stgcn", choices=sorted(models.ARCHITECTURES),
                   help="architecture (its upstream recipe supplies every training default below)")
    p.add_argument("--dataset", default="hdm05", help="hdm05 | ntu60 | ntu120 (selects the file format)")
    p.add_argument("--data", default="data", help="data root holding <dataset>/classTrain.npz, classTest.npz")
    p.add_argument("--out", required=True, help="checkpoint directory to write (best test accuracy)")
    p.add_argument("--train-file", default="classTrain.npz")
    p.add_argument("--test-file", default="classTest.npz")
    p.add_argument("--width", type=float, default=None, help="channel multiplier (1.0 = upstream size)")
    p.add_argument("--num-classes", type=int, default=None, help="default: the dataset's class count")
    p.add_argument("--epochs", type=int, default=None, help="default: the recipe's (80)")
    p.add_argument("--batch-size", type=int, default=None, help="default: 64")
    p.add_argument("--lr", type=float, default=None, help="base learning rate (default: the recipe's)")
    p.add_argument("--milestones", default=None, help="comma-separated epochs where the lr is multiplied by 0.1")
    p.add_argument("--warmup-epochs", type=int, default=None, help="linear warm-up epochs (default: the recipe's)")
    p.add_argument("--weight-decay", type=float, default=None)
    p.add_argument("--seed", type=int, default=0)


def _train(args) -> None:
    from tasar_jax import pipeline, recipes

    milestones = None if args.milestones is None else tuple(
        int(m) for m in args.milestones.split(",") if m.strip())
    config = recipes.recipe(args.arch, epochs=args.epochs, batch_size=args.batch_size, learning_rate=args.lr,
                            milestones=milestones, warmup_epochs=args.warmup_epochs,
                            weight_decay=args.weight_decay, seed=args.seed)
    overrides = {k: v for k, v in (("width", args.width), ("num_classes", args.num_classes)) if v is not None}
    meta = pipeline.train_classifier(args.arch, args.dataset, args.data, args.out, train_config=config,
                                     train_file=args.train_file, test_file=args.test_file, **overrides)
    console.print(f"best test accuracy {meta['accuracy']:.2%} at epoch {meta['epoch']} → {args.out}")


def _test(args) -> None:
    from tasar_jax import pipeline

    result = pipeline.test_classifier(args.model, args.data, test_file=args.test_file)
    console.print(f"{result['file']}: {result['correct']}/{result['num_samples']} correct")
    console.print(f"unaccuracy: {result['misclassification']:.4f}")
    console.print(f"accuracy: {result['accuracy']:.4f}")


def _gather(args) -> None:
    from tasar_jax import pipeline

    result = pipeline.gather_correct(args.model, args.data, args.out, test_file=args.test_file)
    console.print(f"wrote {result['num_samples']}/{result['of']} correctly classified samples → {result['file']}")


def _convert(args) -> None:
    import converters
    from tasar_jax import checkpoints, models

    model = converters.convert_file(args.arch, args.dataset, args.checkpoint, args.bone_checkpoint)
    sources = [str(p) for p in (args.checkpoint, args.bone_checkpoint) if p is not None]
    checkpoints.save(args.out, model, architecture=args.arch, dataset=args.dataset, source=" + ".join(sources),
                     num_parameters=models.num_parameters(model))
    console.print(f"converted {' + '.join(sources)} ({models.num_parameters(model):,} parameters) → {args.out}")


def _ensemble(args) -> None:
    from tasar_jax import pipeline

    out = pipeline.assemble_two_stream(args.joint, args.bone, args.out)
    console.print(f"two-stream ensemble of {args.joint} + {args.bone} → {out}")


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


def _predict(args) -> None:
    from tasar_jax import pipeline

    logits = pipeline.predict_file(args.model, args.input, args.out)
    console.print(f"wrote logits {logits.shape} → {args.out}")


def _synth(args) -> None:
    from tasar_jax.data import synthetic

    datasets = ["hdm05", "ntu60", "ntu120"] if args.dataset == "all" else [args.dataset]
    for dataset in datasets:
        paths = synthetic.write_dataset(args.out, dataset, args.train_per_class, args.test_per_class, args.seed)
        console.print(f"{dataset}: {paths['train']}  {paths['test']}")


def _show(args) -> None:
    from tasar_jax.data import formats, show, synthetic
    from tasar_jax.pipeline import resolve

    path = resolve(args.data, args.dataset, args.file)
    x, labels = formats.load_dataset_file(path, args.dataset)
    names = synthetic.ACTIONS if args.class_names == "synthetic" else ()
    out = show.plot_sequences(x, labels, names, args.out, args.dataset, num=args.num)
    console.print(f"figure → {out}")


def _demo(args) -> None:
    from experiments import demo

    demo.run(args.workdir, epochs=args.epochs, seed=args.seed, console=console)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tasar-jax", description="TASAR transfer attacks and the RobustBenchHAR benchmark, in JAX.")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("demo", help="synthesize data → train ST-GCN → test → gather, with a summary")
    p.add_argument("--workdir", default="tasar-demo")
    p.add_argument("--epochs", type=int, default=None, help="default: the demo's own setting")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=_demo)

    data = sub.add_parser("data", help="the embedded synthetic dataset").add_subparsers(dest="data_command",
                                                                                         required=True)
    p = data.add_parser("synth", help="write synthetic train/test files in the real on-disk formats")
    p.add_argument("--out", default="data", help="data root; files go to <out>/<dataset>/classTrain.npz, ...")
    p.add_argument("--dataset", default="hdm05", choices=["hdm05", "ntu60", "ntu120", "all"])
    p.add_argument("--train-per-class", type=int, default=40)
    p.add_argument("--test-per-class", type=int, default=15)
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=_synth)
    p = data.add_parser("show", help="plot a few sequences of a dataset file as stick figures")
    p.add_argument("--data", default="data")
    p.add_argument("--dataset", default="hdm05")
    p.add_argument("--file", default="classTest.npz")
    p.add_argument("--num", type=int, default=6)
    p.add_argument("--out", default="sequences.png")
    p.add_argument("--class-names", default="synthetic", choices=["synthetic", "none"],
                   help="label rows with the synthetic action names, or with class numbers only")
    p.set_defaults(func=_show)

    p = sub.add_parser("train", help="train a classifier (upstream routine 'train')")
    _add_train_args(p)
    p.set_defaults(func=_train)

    for name, func, helptext in (("test", _test, "accuracy of a checkpoint on a test file"),
                                 ("gather", _gather, "write the correctly classified test samples")):
        p = sub.add_parser(name, help=helptext)
        p.add_argument("--model", required=True, help="checkpoint directory")
        p.add_argument("--data", default="data")
        p.add_argument("--test-file", default="classTest.npz")
        if name == "gather":
            p.add_argument("--out", default=None, help="default: <model>/adClassTrain.npz")
        p.set_defaults(func=func)

    p = sub.add_parser("convert", help="convert an upstream PyTorch checkpoint (.pth or .pth.xz)")
    p.add_argument("--arch", required=True)
    p.add_argument("--dataset", required=True)
    p.add_argument("--out", required=True, help="checkpoint directory to write")
    p.add_argument("checkpoint", type=pathlib.Path, help="upstream .pth / .pth.xz (joint stream for msg3d, agcn)")
    p.add_argument("bone_checkpoint", type=pathlib.Path, nargs="?", default=None,
                   help="bone-stream checkpoint, for the two-stream ensembles msg3d and agcn")
    p.set_defaults(func=_convert)

    p = sub.add_parser("ensemble", help="sum a joint-stream and a bone-stream checkpoint (msg3d, agcn)")
    p.add_argument("--joint", required=True, help="msg3d_joint / agcn_joint checkpoint directory")
    p.add_argument("--bone", required=True, help="msg3d_bone / agcn_bone checkpoint directory")
    p.add_argument("--out", required=True, help="ensemble checkpoint directory to write")
    p.set_defaults(func=_ensemble)

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

    p = sub.add_parser("predict", help="eval-mode logits of a checkpoint for a .npy batch or dataset .npz")
    p.add_argument("--model", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("input")
    p.set_defaults(func=_predict)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except (ValueError, ImportError, FileNotFoundError) as err:
        console.print(f"[bold red]error:[/] {err}", highlight=False)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
