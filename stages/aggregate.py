"""Stage `aggregate`: every (dataset, model) result -> one leaderboard (JSON, CSV, Markdown) and
a Pareto plot of accuracy vs CPU latency (PNG), and a recommendation (Markdown, JSON): the best
model under the deployment constraints in ``recommend:``, the runner-up and why.

    python stages/aggregate.py EVAL_DIR TRAIN_DIR BENCH_DIR PREDICTIONS_DIR OUT_JSON OUT_CSV OUT_MD OUT_PNG \
        REC_MD REC_JSON [--roc-dir DIR] [--pr-dir DIR] [--prepared-dir DIR --errors-md FILE --length-dir DIR] \
        [--served-dir DIR] [--capacity-json FILE] [--capacity-md FILE] [--cascades-json FILE --cascades-md FILE] \
        [--params params.yaml]

With ``--capacity-json`` / ``--capacity-md`` it plans every benchmarked variant for the ``capacity:`` traffic
(``textcls.report.capacity``: replicas meeting the p95 target, cost per month at ``benchmark.price_per_hour``, and
the traffic below which an LLM API billed for the few-shot prompt would cost less).

With ``--cascades-json`` / ``--cascades-md`` (and ``--served-dir``) it evaluates every chain under ``cascades:``
(``textcls.report.cascades``: thresholds chosen on the served validation predictions, scored on test, latency
summed per text from the served calls, cost per 1,000 texts), appends their Pareto table to the leaderboard
Markdown, and the recommendation says whether a chain beats the recommended model.

With ``--prepared-dir`` and ``--errors-md`` / ``--length-dir`` it writes the error analysis of every entry
(``textcls.report.errors``: most confident mistakes, most confused class pairs, accuracy by text length) as one
Markdown report and per-entry plot rows. With ``--roc-dir`` / ``--pr-dir`` it also writes every entry's ROC and precision-recall curve (from its saved
test probabilities) as ``DIR/<dataset>/<entry>.csv``, for `dvc plots`.

Each model is compared with its dataset's best on the same test examples (paired bootstrap
interval of the accuracy difference, McNemar's exact test), on the evaluate stage's predictions (the ones the
leaderboard ranks by); the recommended model is compared with the runner-up the same way, each on the served
predictions of the variant it would be deployed as (``--served-dir``: ``DIR/<dataset>/<entry>.parquet``, written by
the benchmark stages; where they are missing, on the evaluate stage's predictions, and the recommendation says so).
Each data set's recommendation also gets its decision certificate (``textcls.report.certificate``): per model, the
probability of being the best one meeting every constraint, from ``aggregate.bootstrap_resamples`` joint resamples
of those test predictions (paired rows) and of each deployed variant's latency repeats (``p95_repeats`` in the
benchmark reports), and its margin to each limit.
"""

import argparse
import logging
from pathlib import Path

from textcls.cli import run
from textcls.report import leaderboard

from textcls.report import capacity, cascades, errors, recommend
from textcls.io import atomic_outputs, write_bytes, write_json, write_text
from textcls.config.params import declared_entries, load_params

logger = logging.getLogger("aggregate")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    for name in ("eval_dir", "train_dir", "bench_dir", "predictions_dir", "out_json", "out_csv", "out_md",
                 "out_png", "rec_md", "rec_json"):
        parser.add_argument(name)
    parser.add_argument("--roc-dir", help="write each entry's ROC curve to ROC_DIR/<dataset>/<entry>.csv")
    parser.add_argument("--pr-dir", help="write each entry's precision-recall curve to PR_DIR/<dataset>/<entry>.csv")
    parser.add_argument("--prepared-dir", help="the prepared data sets (their test texts), for the error analysis")
    parser.add_argument("--errors-md", help="write the error analysis of every entry here (needs --prepared-dir)")
    parser.add_argument("--length-dir", help="write each entry's accuracy by text length to "
                                             "LENGTH_DIR/<dataset>/<entry>.csv (needs --prepared-dir)")
    parser.add_argument("--served-dir", help="every benchmarked variant's served test predictions "
                                             "(SERVED_DIR/<dataset>/<entry>.parquet): the recommendation compares "
                                             "the deployed variants on them")
    parser.add_argument("--capacity-json", help="write the capacity and cost plan of every benchmarked variant "
                                                "under `capacity:` here (textcls.report.capacity)")
    parser.add_argument("--capacity-md", help="the same plan as a Markdown table")
    parser.add_argument("--cascades-json", help="write every `cascades:` chain, thresholds chosen on validation and "
                                                "scored on test, here (textcls.report.cascades; needs --served-dir)")
    parser.add_argument("--cascades-md", help="the same chains as a Markdown table (also appended to OUT_MD)")
    parser.add_argument("--params", default="params.yaml")
    args = parser.parse_args(argv)
    if (args.errors_md or args.length_dir) and not args.prepared_dir:
        parser.error("--errors-md and --length-dir need --prepared-dir (the test texts)")
    if (args.cascades_json or args.cascades_md) and not args.served_dir:
        parser.error("--cascades-json and --cascades-md need --served-dir (the served predictions)")

    params = load_params(args.params)
    cfg = params.aggregate
    entries = declared_entries(params)  # exactly what params declare; other files never reach an output
    left = leaderboard.undeclared_files(entries, args.eval_dir, args.train_dir, args.bench_dir, args.predictions_dir,
                                        *([args.served_dir] if args.served_dir else []))
    if left:
        logger.warning("ignoring %d result file(s) of entries params.yaml does not declare (left by an earlier "
                       "model set or profile; delete them if unwanted): %s", len(left),
                       ", ".join(str(p) for p in left[:10]) + (" ..." if len(left) > 10 else ""))
    table = leaderboard.collect(entries, args.eval_dir, args.train_dir, cfg.metrics, args.bench_dir)
    table = leaderboard.rank(table, cfg.sort_by)
    table = leaderboard.compare_with_best(table, args.predictions_dir, cfg.bootstrap_resamples, params.base.seed,
                                          cfg.significance_level)
    markdown = leaderboard.to_markdown(table, cfg.sort_by)

    compare = leaderboard.deployed_comparison(args.predictions_dir, args.served_dir, cfg.bootstrap_resamples,
                                              params.base.seed, cfg.significance_level)
    certify = leaderboard.deployed_certificate(args.predictions_dir, args.served_dir, args.bench_dir,
                                               cfg.bootstrap_resamples, params.base.seed)
    recs = recommend.recommend(table, params.recommend, compare, cfg.sort_by, certify)
    todo, skipped = cascades.declared(params.cascades.chains, list(dict.fromkeys(e.name for e in entries)))
    for chain in skipped:
        logger.warning("cascade %s skipped: %s", chain["chain"], chain["reason"])
    chains = (cascades.build(list(params.datasets), todo, Path(args.served_dir), Path(args.bench_dir), params.cascades,
                             params.recommend.device, cfg.bootstrap_resamples, params.base.seed, skipped)
              if (args.cascades_json or args.cascades_md) and todo else None)
    if chains is not None:
        for dataset, verdict in cascades.consider(chains, recs, params.recommend, cfg.significance_level,
                                                  cfg.bootstrap_resamples, params.base.seed).items():
            recs[dataset]["cascades"] = verdict
        markdown += "\n" + cascades.leaderboard_section(chains.json)
    recommendation = recommend.to_markdown(recs, params.recommend)
    curve_dirs = {"roc": args.roc_dir, "pr": args.pr_dir}
    curves = {(e.dataset, e.name): leaderboard.curves(args.predictions_dir, e.dataset, e.name)
              for e in entries} if any(curve_dirs.values()) else {}
    analysis = (errors.analyse(entries, Path(args.predictions_dir), Path(args.prepared_dir))
                if args.errors_md or args.length_dir else [])
    plan = (capacity.build(entries, **capacity.read_inputs(entries, args.bench_dir, args.eval_dir, args.prepared_dir,
                                                           args.predictions_dir),
                           cfg=params.capacity, price_per_hour=params.benchmark.price_per_hour)
            if args.capacity_json or args.capacity_md else None)
    outputs = (args.out_json, args.out_csv, args.out_md, args.out_png, args.rec_md, args.rec_json,
               *(d for d in (*curve_dirs.values(), args.errors_md, args.length_dir, args.capacity_json,
                             args.capacity_md, args.cascades_json, args.cascades_md) if d))
    with atomic_outputs(*outputs):
        write_json(args.out_json, leaderboard.to_metrics_json(table, cfg.metrics))
        write_text(args.out_csv, table.to_csv(index=False))
        write_text(args.out_md, markdown)
        Path(args.out_png).parent.mkdir(parents=True, exist_ok=True)
        write_bytes(args.out_png, leaderboard.pareto_png(table))
        write_text(args.rec_md, recommendation)
        write_json(args.rec_json, recs)
        for (dataset, name), frames in curves.items():
            for curve, folder in curve_dirs.items():
                if folder:
                    path = Path(folder) / dataset / f"{name}.csv"
                    path.parent.mkdir(parents=True, exist_ok=True)
                    write_text(path, frames[curve].to_csv(index=False))
        if args.errors_md:
            write_text(args.errors_md, errors.to_markdown(analysis))
        for result in analysis if args.length_dir else []:
            path = Path(args.length_dir) / result.dataset / f"{result.entry}.csv"
            path.parent.mkdir(parents=True, exist_ok=True)
            write_text(path, errors.length_rows(result).to_csv(index=False))
        if args.capacity_json:
            write_json(args.capacity_json, plan)
        if args.capacity_md:
            write_text(args.capacity_md, capacity.to_markdown(plan))
        empty = {"method": None, "skipped": skipped, "datasets": {}}
        if args.cascades_json:
            write_json(args.cascades_json, chains.json if chains is not None else empty)
        if args.cascades_md:
            write_text(args.cascades_md, cascades.to_markdown(chains.json if chains is not None else empty))
    print(markdown)
    print(recommendation)
    return 0


if __name__ == "__main__":
    raise SystemExit(run(main))
