"""Run a whole benchmark study: every preset x method x label fraction x seed.

    python recipes/benchmark.py --config recipes/configs/study_tiny.yaml --output_dir /tmp/study
    accelerate launch --multi_gpu --num_processes N recipes/benchmark.py --config recipes/configs/study_gpu.yaml

Each row runs `hf_deeplense.training.finetune`, `pretrain_mae`, `pretrain_simclr` or `anomaly` in this process
(on every process of a multi-process launch: one DDP group for every run); datasets are built once per preset and
SSL models pre-trained once per preset and seed. Rerunning resumes: rows whose `metrics.json` exists are not run
again, an interrupted row resumes from its last checkpoint. Writes
`study.json`, `RESULTS_section.md` (for RESULTS.md), `auc_vs_label_fraction.png` and `best/<preset>`.
Logic: `hf_deeplense.training.study`; tables and target checks: `hf_deeplense.evaluation.study`.
"""

from __future__ import annotations

import argparse
import logging
import shlex
import sys

from hf_deeplense.training import end_run
from hf_deeplense.training.study import load_study_config, run_study


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--config", required=True, help="study YAML (recipes/configs/study_*.yaml)")
    parser.add_argument("--output_dir", default=None, help="override the config's output_dir")
    parser.add_argument("--fail_fast", action="store_true", help="stop at the first failed row")
    parser.add_argument(
        "--finished_only",
        action="store_true",
        help="run nothing: write the tables of the rows finished so far (a study stopped part-way)",
    )
    parser.add_argument(
        "--presets",
        nargs="+",
        default=None,
        help="run only these presets of the config (e.g. one process per preset; then --finished_only over all)",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    config = load_study_config(args.config)
    if args.output_dir:
        config["output_dir"] = args.output_dir
    config["config_path"] = args.config
    if args.presets:
        if unknown := sorted(set(args.presets) - set(config["presets"])):
            parser.error(f"{args.config} has no preset(s) {unknown}; it has {sorted(config['presets'])}")
        config["presets"] = {name: config["presets"][name] for name in args.presets}
    config["study_command"] = shlex.join(["recipes/benchmark.py", *(sys.argv[1:] if argv is None else argv)])
    summary = run_study(config, keep_going=not args.fail_fast, finished_only=args.finished_only)
    end_run()
    if "paths" in summary:  # the main process
        print(
            f"{len(summary['rows'])} rows, {len(summary['failed'])} failed; {len(summary['launched'])} runs launched"
        )
        print(f"study: {summary['paths']['study']}\nRESULTS.md section: {summary['paths']['markdown']}")
    return summary


if __name__ == "__main__":
    main()
