"""Print the inference benchmark's headline numbers (a report, not a test).

For every (dataset, entry) that params.yaml declares, from metrics/benchmark/<dataset>/<entry>.json
(files of entries no longer declared are left out): each CPU variant's batch-1 end-to-end p50 with its
95 % interval over the repeats, the 95 % upper bound of p95, the speed-up over the baseline (eager fp32)
with its interval, the served accuracy delta and McNemar p against the baseline; whether the best variant
reaches the target (>= 2x faster than eager fp32 within 0.5 accuracy points); the whole
stage's wall time, whether the machine was busy; and the harness overhead: the cost of the timing loop itself (an empty
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
    print(f"{'dataset/model':24} {'variant':13} {'p50 ms [95 % CI]':>22} {'p95<= ms':>9} {'speedup [95 % CI]':>20} "
          f"{'acc':>7} {'d acc':>7} {'p':>7} {'overhead':>9}")
    for path in files:
        result = json.loads(path.read_text())
        cpu = result["cpu"]
        for name, row in cpu["variants"].items():
            if "error" in row:
                print(f"{path.parent.name + '/' + path.stem:24} {name:13} {row['error']}")
                continue
            lat = row["latency_ms"]
            p50 = f"{lat['p50']:.3f} [{lat['p50_ci'][0]:.3f}, {lat['p50_ci'][1]:.3f}]" if lat.get("p50_ci") else \
                f"{lat['p50']:.3f}"
            ci = row.get("speedup_p50_ci")
            speedup = f"{row['speedup_p50']:.2f}x" + (f" [{ci[0]:.2f}, {ci[1]:.2f}]" if ci else "")
            p95 = lat.get("p95_upper") if lat.get("p95_upper") is not None else lat["p95"]
            p_value = row.get("vs_reference", {}).get("p_value")
            print(f"{path.parent.name + '/' + path.stem:24} {name:13} {p50:>22} {p95:9.3f} {speedup:>20} "
                  f"{row['accuracy']:7.4f} {row['accuracy_delta'] * 100:+6.2f}p "
                  f"{p_value if p_value is not None else float('nan'):7.2g} {overhead_ms / lat['p50'] * 100:8.3f}%")
        best = cpu["variants"][cpu["best_variant"]]
        verdict = "meets" if best["speedup_p50"] >= 2 and best["accuracy_delta"] >= -0.005 else "misses"
        if len(cpu["variants"]) == 1:
            verdict = "has one variant: n/a for"
        print(f"  best: {cpu['best_variant']} {best['speedup_p50']:.2f}x, {best['accuracy_delta'] * 100:+.2f} pt "
              f"-> {verdict} the 2x-within-0.5-pt target; stage took {result.get('benchmark_time_s', '?')} s"
              + ("; MACHINE BUSY: " + "; ".join(result["machine_state"]["busy_reasons"])
                 if result.get("machine_state", {}).get("busy") else "") + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
