"""Commands on data and classifiers: ``data synth|show``, ``train``, ``test``, ``gather``, ``convert``,
``ensemble``, ``predict`` (upstream routines train, test, gatherCorrectPrediction)."""

from __future__ import annotations

import argparse
import pathlib

from tasar_jax.cli.common import COUNT, NON_NEGATIVE, NON_NEGATIVE_INT, POSITIVE, console
from tasar_jax.data.layouts import DATASETS


def _add_train_args(p: argparse.ArgumentParser) -> None:
    from tasar_jax import models

    p.add_argument("--arch", "--model", dest="arch", default="stgcn", choices=sorted(models.ARCHITECTURES),
                   help="architecture (its upstream recipe supplies every training default below)")
    p.add_argument("--dataset", default="hdm05", choices=sorted(DATASETS), help="selects the file format")
    p.add_argument("--data", default="data", help="data root holding <dataset>/classTrain.npz, classTest.npz")
    p.add_argument("--out", required=True, help="checkpoint directory to write (best test accuracy)")
    p.add_argument("--train-file", default="classTrain.npz")
    p.add_argument("--test-file", default="classTest.npz")
    p.add_argument("--width", type=POSITIVE, default=None, help="channel multiplier (1.0 = upstream size)")
    p.add_argument("--num-classes", type=COUNT, default=None, help="default: the dataset's class count")
    p.add_argument("--epochs", type=COUNT, default=None, help="default: the recipe's (80)")
    p.add_argument("--batch-size", type=COUNT, default=None, help="default: 64")
    p.add_argument("--lr", type=POSITIVE, default=None, help="base learning rate (default: the recipe's)")
    p.add_argument("--milestones", default=None, help="comma-separated epochs where the lr is multiplied by 0.1")
    p.add_argument("--warmup-epochs", type=NON_NEGATIVE_INT, default=None,
                   help="linear warm-up epochs (default: the recipe's)")
    p.add_argument("--weight-decay", type=NON_NEGATIVE, default=None)
    p.add_argument("--seed", type=int, default=0)


def _train(args) -> None:
    from tasar_jax import pipeline, recipes

    milestones = None if args.milestones is None else tuple(
        int(m) for m in args.milestones.split(",") if m.strip())
    config = recipes.recipe(args.arch, epochs=args.epochs, batch_size=args.batch_size, learning_rate=args.lr,
                            milestones=milestones, warmup_epochs=args.warmup_epochs,
                            weight_decay=args.weight_decay, seed=args.seed)
    overrides = {k: v for k, v in (("width", args.width), ("num_classes", args.num_classes)) if v is not None}
    trades_config = None
    if args.defence == "trades":
        from tasar_jax.defences import TRADESConfig

        trades_config = TRADESConfig(beta=args.trades_beta, epsilon=args.trades_epsilon, steps=args.trades_steps,
                                     step_size=args.trades_step_size, upstream_clamp=args.upstream_clamp,
                                     eval_every=args.eval_every, select=args.select)
    meta = pipeline.train_classifier(args.arch, args.dataset, args.data, args.out, train_config=config,
                                     train_file=args.train_file, test_file=args.test_file, defence=args.defence,
                                     trades_config=trades_config, **overrides)
    robust = f", robust {meta['robust_accuracy']:.2%}" if meta.get("robust_accuracy") is not None else ""
    console.print(f"best test accuracy {meta['accuracy']:.2%}{robust} at epoch {meta['epoch']} → {args.out}")


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
    from tasar_jax import checkpoints, converters, models

    model = converters.convert_file(args.arch, args.dataset, args.checkpoint, args.bone_checkpoint)
    sources = [str(p) for p in (args.checkpoint, args.bone_checkpoint) if p is not None]
    checkpoints.save(args.out, model, architecture=args.arch, dataset=args.dataset, source=" + ".join(sources),
                     num_parameters=models.num_parameters(model))
    console.print(f"converted {' + '.join(sources)} ({models.num_parameters(model):,} parameters) → {args.out}")


def _ensemble(args) -> None:
    from tasar_jax import pipeline

    out = pipeline.assemble_two_stream(args.joint, args.bone, args.out)
    console.print(f"two-stream ensemble of {args.joint} + {args.bone} → {out}")

def _predict(args) -> None:
    from tasar_jax import pipeline

    logits = pipeline.predict_file(args.model, args.input, args.out)
    console.print(f"wrote logits {logits.shape} → {args.out}")


def _synth(args) -> None:
    from tasar_jax.data import synthetic

    datasets = list(DATASETS) if args.dataset == "all" else [args.dataset]
    for dataset in datasets:
        paths = synthetic.write_dataset(args.out, dataset, args.train_per_class, args.test_per_class, args.seed,
                                        args.classes)
        console.print(f"{dataset}: {paths['train']}  {paths['test']}")


def _show(args) -> None:
    from tasar_jax.data import formats, show, synthetic
    from tasar_jax.pipeline import resolve

    path = resolve(args.data, args.dataset, args.file)
    x, labels = formats.load_dataset_file(path, args.dataset)
    names = synthetic.class_names(args.dataset) if args.class_names == "synthetic" else ()
    out = show.plot_sequences(x, labels, names, args.out, args.dataset, num=args.num)
    console.print(f"figure → {out}")

def add_commands(sub) -> None:
    from tasar_jax import models

    data = sub.add_parser("data", help="the embedded synthetic dataset").add_subparsers(dest="data_command",
                                                                                         required=True)
    p = data.add_parser("synth", help="write synthetic train/test files in the real on-disk formats")
    p.add_argument("--out", default="data", help="data root; files go to <out>/<dataset>/classTrain.npz, ...")
    p.add_argument("--dataset", default="hdm05", choices=[*sorted(DATASETS), "all"])
    p.add_argument("--train-per-class", type=COUNT, default=40)
    p.add_argument("--test-per-class", type=COUNT, default=15)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--classes", default=None, help="a class subset such as '0-18,25' (labels keep their meaning)")
    p.set_defaults(func=_synth)
    p = data.add_parser("show", help="plot a few sequences of a dataset file as stick figures")
    p.add_argument("--data", default="data")
    p.add_argument("--dataset", default="hdm05", choices=sorted(DATASETS))
    p.add_argument("--file", default="classTest.npz")
    p.add_argument("--num", type=COUNT, default=6)
    p.add_argument("--out", default="sequences.png")
    p.add_argument("--class-names", default="synthetic", choices=["synthetic", "none"],
                   help="label rows with the synthetic action names, or with class numbers only")
    p.set_defaults(func=_show)

    p = sub.add_parser("train", help="train a classifier (upstream routine 'train'; --defence trades: TRADES)")
    _add_train_args(p)
    g = p.add_argument_group("TRADES adversarial training (--defence trades)")
    g.add_argument("--defence", default=None, choices=["trades"], help="train a defended classifier")
    g.add_argument("--trades-beta", type=NON_NEGATIVE, default=6.0)
    g.add_argument("--trades-epsilon", type=POSITIVE, default=0.01, help="inner attack L∞ radius")
    g.add_argument("--trades-steps", type=COUNT, default=20, help="inner attack iterations (--attackep)")
    g.add_argument("--trades-step-size", type=POSITIVE, default=1e-4)
    g.add_argument("--upstream-clamp", action="store_true", help="clamp inner iterates to [0, 1] as upstream")
    g.add_argument("--eval-every", type=COUNT, default=5, help="epochs between robust evaluations")
    g.add_argument("--select", default="robust", choices=["robust", "clean"], help="which accuracy picks the kept "
                   "checkpoint")
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
    p.add_argument("--arch", required=True, choices=sorted(models.ARCHITECTURES))
    p.add_argument("--dataset", required=True, choices=sorted(DATASETS))
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
    p = sub.add_parser("predict", help="eval-mode logits of a checkpoint for a .npy batch or dataset .npz")
    p.add_argument("--model", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("input")
    p.set_defaults(func=_predict)
