"""Run a whole benchmark study (issue 6): every preset x method x label fraction x seed, through the recipes.

    accelerate launch recipes/benchmark.py --config recipes/configs/study_gpu.yaml
    python recipes/benchmark.py --config recipes/configs/study_tiny.yaml --output_dir /tmp/study

Each row runs `recipes/finetune.py`, `pretrain_mae.py`, `pretrain_simclr.py` or `anomaly.py` as a
subprocess (command recorded); datasets are built once per preset and SSL models pre-trained once per
preset and seed. Rerunning resumes: rows whose `metrics.json` exists are not run again. Writes
`study.json`, `RESULTS_section.md` (for RESULTS.md), `auc_vs_label_fraction.png` and `best/<preset>`.
Logic: `hf_deeplense.training.study`; tables and target checks: `hf_deeplense.evaluation.study`.
"""

from __future__ import annotations

import argparse
import logging
import os
import shlex
import sys
from pathlib import Path

from hf_deeplense.training.study import load_study_config, run_study


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--config", required=True, help="study YAML (recipes/configs/study_*.yaml)")
    parser.add_argument("--output_dir", default=None, help="override the config's output_dir")
    parser.add_argument("--fail_fast", action="store_true", help="stop at the first failed row")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        raise SystemExit("run benchmark.py as one process: it launches every recipe itself")

    config = load_study_config(args.config)
    if args.output_dir:
        config["output_dir"] = args.output_dir
    config["config_path"] = args.config
    config["study_command"] = shlex.join(["recipes/benchmark.py", *(sys.argv[1:] if argv is None else argv)])
    summary = run_study(config, recipes_dir=Path(__file__).resolve().parent, keep_going=not args.fail_fast)
    print(
        f"{len(summary['rows'])} rows, {len(summary['failed'])} failed; {len(summary['launched'])} runs launched"
    )
    print(f"study: {summary['paths']['study']}\nRESULTS.md section: {summary['paths']['markdown']}")
    return summary


if __name__ == "__main__":
    main()
