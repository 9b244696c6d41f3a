"""Training runs on top of `transformers.Trainer`: one function per recipe (`finetune`, `pretrain_mae`,
`pretrain_ssl` (also behind `recipes/pretrain_simclr.py`), `anomaly`, `lens_finding`, `domain_adapt`,
`evaluate_checkpoint`), each taking the recipe's command-line arguments and returning its metrics, and the pieces
they share (arguments, data, models, trainer, artifacts)."""

from .arguments import LensingTrainingArguments, parse_recipe_args
from .callbacks import EvalHistoryJsonCallback, ImageLoggingCallback, MomentumEncoderCallback
from .domain_adaptation import DomainAdaptArguments, domain_adapt
from .evaluate import EvaluateArguments, evaluate_checkpoint
from .finetune import FinetuneArguments, finetune
from .lens_finding import LensFindingArguments, lens_finding
from .pretrain import (
    AnomalyArguments,
    EncoderEvalArguments,
    MAEArguments,
    SSLArguments,
    anomaly,
    pretrain_mae,
    pretrain_ssl,
)
from .trainer import end_run

__all__ = [
    "AnomalyArguments",
    "DomainAdaptArguments",
    "EncoderEvalArguments",
    "EvalHistoryJsonCallback",
    "EvaluateArguments",
    "FinetuneArguments",
    "ImageLoggingCallback",
    "LensFindingArguments",
    "LensingTrainingArguments",
    "MAEArguments",
    "MomentumEncoderCallback",
    "SSLArguments",
    "anomaly",
    "domain_adapt",
    "end_run",
    "evaluate_checkpoint",
    "finetune",
    "lens_finding",
    "parse_recipe_args",
    "pretrain_mae",
    "pretrain_ssl",
]
