"""Defences and analysis: ``beat`` (BEAT heads on a frozen classifier) and ``landscape`` (loss-surface slices and
sharpness around clean and adversarial samples). TRADES is ``train --defence trades``."""

from __future__ import annotations

import pathlib

from tasar_jax.cli.common import COUNT, NON_NEGATIVE, POSITIVE, console


def _beat(args) -> None:
    from tasar_jax import pipeline
    from tasar_jax.defences import BEATConfig

    config = BEATConfig(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, sgld_steps=args.sgld_steps,
                        reference_quirks=args.reference_quirks, seed=args.seed)
    r = pipeline.beat(args.model, args.data, args.out, config=config, num_heads=args.heads,
                      train_file=args.train_file, test_file=args.test_file)
    heads = ", ".join(f"{a:.1%}" for a in r["head_accuracy"])
    console.print(f"BEAT heads (test accuracy {heads}) → {r['file']}")


def _landscape(args) -> None:
    from tasar_jax import landscape

    config = landscape.LandscapeConfig(epsilon=args.epsilon, radius=args.radius, points=args.points,
                                       num_directions=args.directions, normalisation=args.normalisation,
                                       pgd_steps=args.pgd_steps, gradient_plane=args.gradient_plane)
    summaries = landscape.analyse_checkpoint(args.model, args.data, args.out, posterior_path=args.posterior,
                                             adv_path=args.adv, num_samples=args.num_samples, config=config,
                                             num_draws=args.draws, scale=args.scale,
                                             attack_iterations=args.attack_iterations, seed=args.seed)
    for loss, by_centre in summaries.items():
        for centre, values in by_centre.items():
            console.print(f"{loss} loss around {centre} samples: " + ", ".join(f"{k} {v:.4g}"
                                                                           for k, v in values.items()))
    console.print(f"plots and JSON → {args.out}_*.png / .json")


def add_commands(sub) -> None:
    p = sub.add_parser("beat", help="BEAT: Bayesian energy-based adversarial training of appended heads")
    p.add_argument("--model", required=True, help="trained classifier checkpoint (frozen base)")
    p.add_argument("--data", default="data")
    p.add_argument("--train-file", default="classTrain.npz")
    p.add_argument("--test-file", default="classTest.npz")
    p.add_argument("--out", default=None, help="default: <model>/beat.npz")
    p.add_argument("--heads", type=COUNT, default=5, help="appended heads (upstream argparse default 5)")
    p.add_argument("--epochs", type=COUNT, default=80)
    p.add_argument("--batch-size", type=COUNT, default=64)
    p.add_argument("--lr", type=POSITIVE, default=0.1)
    p.add_argument("--sgld-steps", type=COUNT, default=10)
    p.add_argument("--reference-quirks", action="store_true", help="upstream's all-head SGLD and mean-logit energy")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=_beat)

    p = sub.add_parser("landscape", help="loss-surface slices and sharpness around clean and adversarial samples")
    p.add_argument("--model", required=True, help="classifier checkpoint")
    p.add_argument("--data", required=True, type=pathlib.Path,
                   help="dataset .npz, or an adversarial set .npz (its x_adv are the adversarial centres)")
    p.add_argument("--adv", default=None, help="adversarial set for a dataset --data (default: I-FGSM at ε)")
    p.add_argument("--posterior", default=None, help="TASAR posterior: also the expected loss over head draws")
    p.add_argument("--out", required=True, help="output prefix: <out>_surrogate.png/.json, <out>_posterior.*")
    p.add_argument("--num-samples", type=COUNT, default=16)
    p.add_argument("--epsilon", type=POSITIVE, default=0.01)
    p.add_argument("--radius", type=POSITIVE, default=2.0, help="grid spans [−radius·ε, radius·ε]")
    p.add_argument("--points", type=COUNT, default=21)
    p.add_argument("--directions", type=COUNT, default=8)
    p.add_argument("--normalisation", default="linf", choices=["linf", "sign", "rms"])
    p.add_argument("--gradient-plane", action="store_true", help="2-D plane spanned by the gradient direction")
    p.add_argument("--pgd-steps", type=COUNT, default=10)
    p.add_argument("--draws", type=COUNT, default=20, help="posterior draws per head")
    p.add_argument("--scale", type=NON_NEGATIVE, default=1.5)
    p.add_argument("--attack-iterations", type=COUNT, default=20)
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=_landscape)
