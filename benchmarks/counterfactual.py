"""Validity, sparsity, proximity, plausibility, rule agreement and seconds of the counterfactuals of a trained run.

    python benchmarks/counterfactual.py RESULTS [--run hybrid_superdiagnostic] [--per-label 40]
        [--configfile config.yaml real.yaml] [--no-randomised] [--max-features 24] [--candidates 16] [--beam 1]

Runs the stage of rule counterfactuals (`ptbxl_xai.stages.counterfactuals`) on RESULTS's run with more
records per label than the rule's default, writes its tables under /tmp/counterfactual_benchmark/, and prints
per label and kind: validity (95% interval), the median size, plausibility, the expert-rule share and the
seconds per record-label, trained against randomised. Targets (issue 21, superdiagnostic fold-10 positives):
validity >= 90% for every class, a median of <= 4 features, <= 1 s per record-label on 2 CPU cores.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import pandas as pd
import torch
import yaml

from ptbxl_xai.config import data_path
from ptbxl_xai.layout import Layout
from ptbxl_xai.stages.counterfactuals import counterfactuals


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("results")
    ap.add_argument("--run", default="hybrid_superdiagnostic")
    ap.add_argument("--per-label", type=int, default=40)
    ap.add_argument("--configfile", nargs="+", default=["config.yaml"])
    ap.add_argument("--no-randomised", action="store_true")
    ap.add_argument("--max-features", type=int)
    ap.add_argument("--candidates", type=int)
    ap.add_argument("--beam", type=int)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    config: dict = {}
    for f in args.configfile:
        for key, value in (yaml.safe_load(open(f)) or {}).items():
            config[key] = {**config.get(key, {}), **value} if isinstance(value, dict) else value
    torch.set_num_threads(args.threads)
    layout = Layout(args.results)
    settings = {**config["counterfactuals"], "records_per_label": args.per_label}
    settings.pop("enabled", None)
    if args.no_randomised:
        settings["randomised"] = False
    for key in ("max_features", "candidates", "beam"):
        if getattr(args, key) is not None:
            settings[key] = getattr(args, key)
    out = Path("/tmp/counterfactual_benchmark")
    out.mkdir(exist_ok=True)
    template = Path(layout.template(args.run))
    start = time.perf_counter()
    res = counterfactuals(
        weights=layout.weights(args.run),
        thresholds=layout.thresholds(args.run),
        predictions=layout.predictions(args.run, "test"),
        data=data_path(config, args.run, results=args.results),
        beats=layout.delineation(config["preprocess"]["sampling_rate"]),
        template=template if template.is_file() else None,
        records=out / "records.tsv",
        summary=out / "summary.tsv",
        figure=out / "counterfactual_examples.png",
        settings=settings,
        explain={k: config["explain"][k] for k in ("features", "background", "blur_sigma_s", "seed")},
        delineation_method=config["delineate"]["method"],
    )
    wall = time.perf_counter() - start
    rows, table = res["records"], res["summary"]
    n = rows[["ecg_id", "label"]].drop_duplicates().shape[0]
    print(f"{res['context']}; settings {settings}")
    print(f"wall {wall:.1f} s for {n} record-labels x {rows['model'].nunique()} model(s) (plausibility included)")
    search = rows.groupby(["model", "ecg_id", "label"])["seconds"].agg(["first", "last"])
    per = (search["first"] + search["last"]).groupby(level="model").median()
    print(f"search seconds per record-label (segments + all edits), median: {per.round(3).to_dict()}")
    cols = ["model", "label", "kind", "n_predicted", "validity", "validity_low", "validity_high", "size_median",
            "size_q1", "size_q3", "plausible", "rule_share", "seconds_median"]  # fmt: skip
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        print(table[cols].round(3).to_string(index=False))
        if "control" in table:
            print(table[table["model"] == "trained"][["label", "kind", "control"]].to_string(index=False))


if __name__ == "__main__":
    main()
