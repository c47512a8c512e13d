"""The benchmark runner: every attack from every surrogate, evaluated on every target, resumable.

    result = run_benchmark("experiments/configs/hdm05.toml", "runs/hdm05")

Stages, in order: data → models → per surrogate (gathered attack set, TASAR posterior, motion, BA SWAG) → attack
cells (surrogate × attack: the adversarial set ``<run>/attacks/<surrogate>/<attack>.npz`` and its white-box and
perturbation statistics) → evaluation cells (surrogate × attack × target) → reports (``results.json``,
``results.csv``, ``results.md``, ``heatmap.png``; rebuilt from the records every time).

Every stage writes atomically and then records completion (``store.Store``); a finished stage with unchanged
inputs is never recomputed, so an interrupted run continues where it stopped. A cell whose attack or dependency
cannot run here (a module not installed yet) is reported as skipped with the
reason and retried on the next run; every other error stops the run.

Attacks run in fixed-size batches (the last one padded by repeating its last sample: one compilation), keyed by
``fold_in(seed, crc32("<surrogate>/<attack>"))`` with per-sample keys from the global sample index, so results do
not depend on the batch size (docs/decisions.md E6).
"""

from __future__ import annotations

import pathlib
import time
import zlib

import jax

from tasar_jax import checkpoints
from tasar_jax.attacks import base, build, common
from tasar_jax.benchmark import prepare
from tasar_jax.benchmark.config import BenchmarkAttack, BenchmarkConfig, parse
from tasar_jax.benchmark.prepare import Memory
from tasar_jax.benchmark.store import Store, identity, to_json, write_json
from tasar_jax.evaluation import metrics, report
from tasar_jax.progress import bar as progress_bar


def build_attack(cfg: BenchmarkConfig, attack: BenchmarkAttack, surrogate: str, records: dict, memory: Memory,
                 prep: dict):
    """``(base.Attack, extras or None)`` for ``attack`` from ``surrogate``; raises ``prepare.Unavailable``."""
    try:
        build.constructor(attack.method)
    except (ImportError, AttributeError) as err:  # a plugin attack whose module is not installed
        raise prepare.Unavailable(f"attack {attack.method!r} is not available: {err}") from None
    needs = build.needs(attack.method, attack.hyper)
    found = {}
    if "members" in needs:
        found["members"] = tuple(memory.model(records[m]) for m in attack.members or cfg.surrogates)
    if "swag" in needs:
        from tasar_jax.posterior import full_swag

        swag = prep["swag"]
        found["swag"] = memory.get(("swag", swag["file"]), lambda: (full_swag.load_swag(swag["file"])[0],
                                                                    checkpoints.load(swag["model_dir"])[0]))
    if "posterior" in needs:
        from tasar_jax.posterior import load_posterior

        path = prep["posterior"]["file"]
        found["posterior"] = memory.get(("posterior", path), lambda: load_posterior(path)[0])
    if "motion" in needs:
        from tasar_jax import motion

        path = prep["motion"]["file"]
        found["motion"] = memory.get(("motion", path), lambda: {k: v for k, v in motion.load_motion(path).items()
                                                                if k in ("ar1", "ar2")})
    artefacts = build.Artefacts(model=memory.model(records[surrogate]), dataset=cfg.dataset, **found)
    return build.build(attack.method, artefacts, **attack.hyper)


def attack_cell(cfg, attack: BenchmarkAttack, surrogate: str, records: dict, memory: Memory, prep: dict,
                run: pathlib.Path) -> tuple[dict, common.AdversarialSet]:
    """Runs one attack from one surrogate; writes the adversarial set; returns its log (white-box, perturbation)
    and the set itself, for the evaluation cells that follow."""
    x, labels, targets = memory.attack_set(prep["gathered"])
    n = x.shape[0] if attack.samples is None else min(attack.samples, x.shape[0])
    x, labels, targets = x[:n], labels[:n], targets[:n]
    goal = targets if attack.targeted else labels
    atk, extras = build_attack(cfg, attack, surrogate, records, memory, prep)
    if extras is not None:
        extras = {k: v[:n] for k, v in extras.items()}
    key = jax.random.fold_in(jax.random.key(cfg.seed), zlib.crc32(f"{surrogate}/{attack.name}".encode()))
    started = time.time()
    x_adv, predictions, success, rates = base.run_in_batches(atk, key, x, goal, attack.batch_size, extras=extras,
                                                             memory_budget=attack.memory_budget)
    best_rate = float(rates.max()) if rates.size else 0.0
    seconds = time.time() - started
    path = run / "attacks" / surrogate / f"{attack.name}.npz"
    adversarial = common.AdversarialSet(x, x_adv, goal, predictions, success)
    common.save_adversarial(path, adversarial)
    white = metrics.evaluate_model(memory.predictor(records[surrogate]), x, x_adv, labels,
                                   targeted=attack.targeted, target_labels=targets if attack.targeted else None)
    return {"surrogate": surrogate, "attack": attack.name, "method": attack.method, "file": str(path),
            "num_samples": int(n), "targeted": attack.targeted, "hyper": dict(attack.hyper),
            "members": list(attack.members), "white_box": white, "attack_success_rate": float(success.mean()),
            "max_fool_rate_over_iterations": best_rate,
            "perturbation": metrics.perturbation_stats(x, x_adv, cfg.dataset), "seconds": seconds,
            "seconds_per_example": seconds / max(n, 1)}, adversarial


def eval_cell(cfg, log: dict, target: str, records: dict, memory: Memory, prep: dict,
              adversarial: common.AdversarialSet) -> dict:
    """Success of one adversarial set on one target model (both the all-sample and the clean-correct rate)."""
    _, true_labels, _ = memory.attack_set(prep["gathered"])
    true_labels = true_labels[:adversarial.x.shape[0]]
    result = metrics.evaluate_model(memory.predictor(records[target]), adversarial.x, adversarial.x_adv, true_labels,
                                    targeted=log["targeted"],
                                    target_labels=adversarial.labels if log["targeted"] else None, per_sample=True)
    return {"surrogate": log["surrogate"], "attack": log["attack"], "method": log["method"], "target": target,
            "targeted": log["targeted"], **result}


def _needed_models(cfg: BenchmarkConfig) -> list[str]:
    names = list(dict.fromkeys([*cfg.surrogates, *cfg.targets, *(m for a in cfg.attacks for m in a.members)]))
    if any("members" in build.needs(a.method, a.hyper) and not a.members for a in cfg.attacks):
        names = list(dict.fromkeys([*names, *cfg.surrogates]))
    return names


def _prepare_surrogate(cfg, name, records, data, run, store, memory, progress) -> tuple[dict, dict]:
    """Gathered set plus whatever the configured attacks need; returns (prep, {stage: unavailable reason})."""
    prep = {"gathered": prepare.gather_stage(cfg, name, records[name], data, run, store, memory)}
    needs = {n for a in cfg.attacks for n in build.needs(a.method, a.hyper)}
    missing = {}
    for need, stage in (("posterior", lambda: prepare.posterior_stage(cfg, name, records[name], data, run, store,
                                                                      memory, progress=progress)),
                        ("swag", lambda: prepare.swag_stage(cfg, name, records[name], data, run, store, memory,
                                                            progress=progress))):
        if need in needs:
            try:
                prep[need] = stage()
            except prepare.Unavailable as err:
                missing[need] = str(err)
    if "motion" in needs and "posterior" in prep:
        prep["motion"] = prepare.motion_stage(cfg, name, prep["gathered"], run, store, memory, progress=progress)
    return prep, missing


def run_benchmark(config, workdir, *, resume: bool = True, progress: bool = True, console=None,
                  converter=None) -> dict:
    """Runs (or resumes) the benchmark of ``config`` (a TOML/JSON path, a dict or a ``BenchmarkConfig``) in
    ``workdir``; returns the results dict also written to ``<workdir>/results.json``.

    ``resume=False`` recomputes every stage (old records are overwritten as stages finish). ``converter``:
    ``f(arch, dataset, checkpoint, bone_checkpoint) -> model`` for upstream checkpoints (the CLI passes
    ``converters.convert_file``; the library never imports torch).
    """
    from rich.console import Console

    console = console or Console()
    cfg = config if isinstance(config, BenchmarkConfig) else parse(config)
    run = pathlib.Path(workdir)
    run.mkdir(parents=True, exist_ok=True)
    write_json(run / "config.json", cfg.to_dict())
    store, started = Store(run, fresh=not resume), time.time()

    console.rule(f"[bold]benchmark {cfg.name}: data and models")
    data = prepare.data_stage(cfg, run, store)
    records, memory = {}, prepare.Memory(cfg.eval_batch_size)
    for name in _needed_models(cfg):
        records[name] = prepare.model_stage(cfg, cfg.models[name], data, run, store, memory, progress=progress,
                                            converter=converter)
        console.print(f"{name}: test accuracy {records[name]['accuracy']:.1%}")

    console.rule("[bold]surrogates: gathered sets, posteriors, motion, SWAG")
    preps, unavailable = {}, {}
    for name in cfg.surrogates:
        preps[name], unavailable[name] = _prepare_surrogate(cfg, name, records, data, run, store, memory, progress)
        console.print(f"{name}: {preps[name]['gathered']['gathered']}/{preps[name]['gathered']['of']} test samples "
                      f"classified correctly; attacking the first {preps[name]['gathered']['num_samples']}")

    console.rule("[bold]attacks and transfer")
    logs, cells, skipped = [], [], []
    pairs = [(s, a) for s in cfg.surrogates for a in cfg.attacks if not a.surrogates or s in a.surrogates]
    total = len(pairs) * (1 + len(cfg.targets))
    with progress_bar(progress, console=console) as bar:
        task = bar.add_task("cells", total=total)
        for surrogate, attack in pairs:
            prep = preps[surrogate]
            bar.update(task, description=f"{surrogate} / {attack.name}")
            deps = [n for n in build.needs(attack.method, attack.hyper) if n in ("posterior", "motion", "swag")]
            inputs = {"attack": to_json(attack.__dict__), "surrogate": identity(records[surrogate]),
                      "gathered": identity(prep["gathered"]), "seed": cfg.seed,
                      "members": [identity(records[m]) for m in attack.members],
                      **{k: prep[k] for k in deps if k in prep}}
            log, adversarial = store.get(f"attack-{surrogate}-{attack.name}", inputs), None
            if log is None:
                try:
                    for need in deps:
                        if need in unavailable[surrogate]:
                            raise prepare.Unavailable(unavailable[surrogate][need])
                    log, adversarial = attack_cell(cfg, attack, surrogate, records, memory, prep, run)
                    log = store.put(f"attack-{surrogate}-{attack.name}", inputs, log, files=[log["file"]])
                except prepare.Unavailable as err:
                    skipped.append({"surrogate": surrogate, "attack": attack.name, "reason": str(err)})
                    console.print(f"[yellow]skipped {surrogate} / {attack.name}: {err}")
                    cells += [{"surrogate": surrogate, "attack": attack.name, "method": attack.method,
                               "target": t, "success_rate": None, "skipped": str(err)} for t in cfg.targets]
                    bar.update(task, advance=1 + len(cfg.targets))
                    continue
            logs.append(log)
            bar.update(task, advance=1)
            for target in cfg.targets:
                cell_inputs = {"attack_cell": inputs, "target": identity(records[target]), "cell_format": 2}  # 2: hits
                if "content" in log:
                    cell_inputs["adversarial_content"] = log["content"]
                name = f"eval-{surrogate}-{attack.name}-{target}"
                cell = store.get(name, cell_inputs)
                if cell is None:
                    if adversarial is None:  # a resumed attack cell: its file, read once for all its targets
                        adversarial = common.load_adversarial(log["file"])
                    cell = store.put(name, cell_inputs, eval_cell(cfg, log, target, records, memory, prep,
                                                                  adversarial))
                cells.append(cell)
                bar.update(task, advance=1)

    results = {"name": cfg.name, "dataset": cfg.dataset, "seed": cfg.seed, "note": cfg.note,
               "models": {n: {k: r.get(k) for k in ("arch", "defence", "accuracy", "num_parameters", "epoch",
                                                     "seconds")} for n, r in records.items()},
               "surrogates": {n: {k: v for k, v in p["gathered"].items() if k != "inputs"} for n, p in preps.items()},
               "attacks": logs, "cells": cells, "skipped": skipped, "seconds": time.time() - started}
    write_outputs(results, run)
    return results


def write_outputs(results: dict, run: pathlib.Path) -> dict:
    """results.json (cells with Wilson intervals, every paired test), results.csv, paired.csv, results.md
    (transfer tables, differences against TASAR, perturbation table) and heatmap.png."""
    cells = results["cells"] = report.with_intervals(results["cells"])
    pairs = [p for m in ("success_rate", "success_rate_on_correct") for p in report.paired_comparisons(cells, m)[0]]
    attacks = list(dict.fromkeys(c["attack"] for c in cells))
    reference = "tasar" if "tasar" in attacks else (attacks[0] if attacks else "")
    results["paired"] = pairs
    results["statistics"] = {"interval": "Wilson score, 95 %", "paired_test": "exact McNemar (two-sided)",
                             "difference_interval": "Newcombe hybrid score (paired), 95 %",
                             "multiple_testing": "Holm over all attack pairs of one surrogate and target",
                             "alpha": report.ALPHA}
    title = f"{results['name']} ({results['dataset']}): transfer success rate (%)"
    text = [f"# {results['name']}", "", results.get("note", ""), "",
            "Cells: rate ± the larger side of its 95 % Wilson interval; **bold**: significantly best attack for that "
            "surrogate and target (exact McNemar against every other attack, Holm-adjusted, p < 0.05); "
            "* white-box.", "",
            report.markdown_table(cells, title=title + ", all attacked samples (upstream's measure)"),
            report.markdown_table(cells, "success_rate_on_correct",
                                  title=title + ", samples the target classifies correctly when clean"),
            report.markdown_table(cells, "clean_accuracy", title="clean accuracy (%) of each target on the attack set")]
    for metric, what in (("success_rate", "all attacked samples"),
                         ("success_rate_on_correct", "samples the target classifies correctly")):
        table = report.differences_markdown([p for p in pairs if p["metric"] == metric], reference)
        if table:
            text += [f"**{reference} minus each attack, points ({what}): difference (95 % interval), † = Holm-adjusted "
                     "McNemar p < 0.05**", "", table]
    text += ["**white-box success and perturbation size**", "", report.perturbation_markdown(results["attacks"])]
    if results["skipped"]:
        text += ["**skipped**", ""] + [f"* {s['surrogate']} / {s['attack']}: {s['reason']}"
                                       for s in results["skipped"]]
    paths = {"json": write_json(run / "results.json", results), "csv": report.write_csv(run / "results.csv", cells),
             "paired": report.write_csv(run / "paired.csv", pairs, report.PAIR_FIELDS),
             "markdown": report.write_text(run / "results.md", "\n".join(text) + "\n")}
    if any(c.get("success_rate") is not None for c in cells):
        paths["heatmap"] = report.heatmap(cells, run / "heatmap.png", title=title)
    results["files"] = {k: str(v) for k, v in paths.items()}
    return results
