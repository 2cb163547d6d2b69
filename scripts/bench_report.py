"""Print the inference benchmark's headline numbers (a report, not a test).

For every (dataset, entry) that params.yaml declares, from metrics/benchmark/<dataset>/<entry>.json
(files of entries no longer declared are left out): each CPU variant's batch-1 p50/p95,
speed-up over the baseline (eager fp32) and accuracy delta; whether the best variant
reaches the target (>= 2x faster than eager fp32 within 0.5 accuracy points); the whole
stage's wall time; and the harness overhead: the cost of the timing loop itself (an empty
call measured the same way) as a share of the measured p50.

    python scripts/bench_report.py [--metrics-dir metrics/benchmark] [--params params.yaml]
"""

import argparse
import json
from pathlib import Path

from textcls.bench.latency import timer_overhead
from textcls.config.params import declared_entries, load_params


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--metrics-dir", default="metrics/benchmark")
    parser.add_argument("--params", default="params.yaml")
    args = parser.parse_args(argv)
    overhead_ms = timer_overhead() * 1000
    entries = declared_entries(load_params(args.params))
    missing = [e for e in entries if not (Path(args.metrics_dir) / e.dataset / f"{e.name}.json").is_file()]
    if missing:
        print(f"no benchmark results for {', '.join(f'{e.dataset}/{e.name}' for e in missing)}: run "
              f"`dvc repro {' '.join(e.benchmark_stage for e in missing)}` first")
        return 1
    files = [Path(args.metrics_dir) / e.dataset / f"{e.name}.json" for e in entries]
    hardware = json.loads(files[0].read_text())["hardware"]
    print(f"machine: {hardware['cpu']['model']}, {hardware['cpu']['usable_cores']} cores; GPU: "
          f"{hardware['gpu'] if isinstance(hardware['gpu'], str) else hardware['gpu']['name']}")
    print(f"timer overhead per call: {overhead_ms * 1000:.2f} us\n")
    print(f"{'dataset/model':24} {'variant':13} {'p50 ms':>8} {'p95 ms':>8} {'speedup':>8} {'acc':>7} "
          f"{'d acc':>7} {'overhead':>9}")
    for path in files:
        result = json.loads(path.read_text())
        cpu = result["cpu"]
        for name, row in cpu["variants"].items():
            if "error" in row:
                print(f"{path.parent.name + '/' + path.stem:24} {name:13} {row['error']}")
                continue
            lat = row["latency_ms"]
            print(f"{path.parent.name + '/' + path.stem:24} {name:13} {lat['p50']:8.3f} {lat['p95']:8.3f} "
                  f"{row['speedup_p50']:7.2f}x {row['accuracy']:7.4f} {row['accuracy_delta'] * 100:+6.2f}p "
                  f"{overhead_ms / lat['p50'] * 100:8.3f}%")
        best = cpu["variants"][cpu["best_variant"]]
        verdict = "meets" if best["speedup_p50"] >= 2 and best["accuracy_delta"] >= -0.005 else "misses"
        if len(cpu["variants"]) == 1:
            verdict = "has one variant: n/a for"
        print(f"  best: {cpu['best_variant']} {best['speedup_p50']:.2f}x, {best['accuracy_delta'] * 100:+.2f} pt "
              f"-> {verdict} the 2x-within-0.5-pt target; stage took {result.get('benchmark_time_s', '?')} s\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
