"""Adapting the LLM summarizer to a user's own {"text", "summary"} pairs, on a CPU.

The loop: choose the base model; split train / validation (seeded); score the base model on the
validation split; train LoRA adapters (peft) with gradual unfreezing — the top layers' adapters
first, lower layers released stage by stage, each stage with its own warm-up and linear decay —
inside a small hyperparameter search (learning rate × LoRA rank × epochs per stage) with early
stopping on validation ROUGE-Lsum, bounded by a time budget; merge the best adapters into the
base, save it under ``DATA_DIR/models/<name>/model``, score the saved model the same way, and
write ``report.json`` and ``report.md``. Checkpoints after every epoch make a run resumable.

Served by :class:`AdaptedModels` as the summary method ``llm:<name>``.
"""

from __future__ import annotations

import gc
import itertools
import json
import random
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from services.core.errors import ModelUnavailable
from services.core.types import Length, model_name_problem
from services.evaluation.data import BadDataFile, SummaryExample
from services.evaluation.progress import progress
from services.evaluation.rouge import ROUGE_TYPES, make_scorer, score_pair, summarize_scores
from services.llm.engines import GenerationLimits, TransformersEngine
from services.llm.summarizer import LLMSummarizer
from services.text.splitting import split_sentences

_LORA_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "c_attn", "query", "value")
_LAYER_RE = re.compile(r"\.(?:layers|h|layer|blocks)\.(\d+)\.")
METRIC = "rougeLsum"
"""Directories of DATA_DIR/models that hold downloaded or converted base models."""


@dataclass(frozen=True)
class AdaptConfig:
    """What ``condensa adapt`` was asked to do."""

    name: str
    base: str = "smollm2"
    language: str = "en"
    validation_share: float = 0.2
    seed: int = 0
    budget_minutes: float = 30.0
    learning_rates: tuple[float, ...] = (3e-4, 1e-3)
    ranks: tuple[int, ...] = (8,)
    epochs: tuple[int, ...] = (1,)
    stages: int = 2
    batch_size: int = 4
    patience: int = 1
    max_source_tokens: int = 384
    max_summary_tokens: int = 96
    max_new_tokens: int = 96

    def __post_init__(self) -> None:
        if problem := model_name_problem(self.name):
            raise BadDataFile(problem)
        if not 0 < self.validation_share < 1:
            raise BadDataFile("the validation share must be between 0 and 1")
        if self.stages < 1:
            raise BadDataFile("at least one training stage is needed")


@dataclass
class TrialResult:
    """One point of the hyperparameter search and its learning curve."""

    learning_rate: float
    rank: int
    epochs: int
    curve: list[dict[str, float]] = field(default_factory=list)
    best: float = -1.0
    seconds: float = 0.0
    stopped_early: bool = False
    finished: bool = False


def split_examples(
    examples: Sequence[SummaryExample], validation_share: float, seed: int
) -> tuple[list[SummaryExample], list[SummaryExample]]:
    """A seeded train / validation split with at least one example on each side."""
    if len(examples) < 2:
        raise BadDataFile("at least two examples are needed (one to train, one to validate)")
    order = list(examples)
    random.Random(seed).shuffle(order)
    validation = max(1, min(len(order) - 1, round(len(order) * validation_share)))
    return order[validation:], order[:validation]


def lora_targets(model: Any) -> list[str]:
    """The attention projections of ``model`` that LoRA adapters attach to."""
    present = {name.rsplit(".", 1)[-1] for name, _ in model.named_modules()}
    chosen = [t for t in _LORA_TARGETS if t in present]
    if not chosen:
        raise ModelUnavailable("adapt", "no attention projection found to attach LoRA to")
    # q and v are the classic LoRA pair; the fused GPT-2 projection stands for all three.
    return [t for t in chosen if t in ("q_proj", "v_proj", "c_attn", "query", "value")]


def layer_of(parameter_name: str) -> int:
    """The transformer block a parameter belongs to (-1 when none)."""
    match = _LAYER_RE.search(parameter_name)
    return int(match.group(1)) if match else -1


def stage_layers(layers: int, stages: int, stage: int) -> int:
    """The lowest block trainable in ``stage`` (1-based): the top 1/stages, then 2/stages …"""
    return layers - (layers * stage + stages - 1) // stages


class Adaptation:
    """One ``condensa adapt`` run.

    Args:
        config: the request.
        models_dir: ``DATA_DIR/models``; the result goes to ``models_dir/<name>``.
        say: where step lines go (stdout in the CLI).
        progress: show tqdm bars (stderr).
    """

    def __init__(
        self,
        config: AdaptConfig,
        models_dir: Path,
        say: Callable[[str], None] = print,
        progress: bool = True,
    ) -> None:
        self.config = config
        self.directory = models_dir / config.name
        self._models_dir = models_dir
        self._say = say
        self._progress = progress
        self._limits = GenerationLimits(
            max_new_tokens=config.max_new_tokens, temperature=0.0, max_prompt_tokens=4096
        )

    # ---------------------------------------------------------------- steps

    def run(self, examples: Sequence[SummaryExample]) -> dict[str, Any]:
        """Every step in order; returns the report (also written to disk)."""
        import torch

        torch.manual_seed(self.config.seed)
        started = time.monotonic()
        deadline = started + 60 * self.config.budget_minutes
        self.directory.mkdir(parents=True, exist_ok=True)
        self._say(f"1/5 base model: {self.config.base} (language: {self.config.language})")
        # Trained in float32 (bfloat16 weights would lose the small updates).
        engine = TransformersEngine(self.config.base, self._models_dir, dtype="float32")
        model, tokenizer = engine.loaded()
        train, validation = split_examples(
            examples, self.config.validation_share, self.config.seed
        )
        self._say(
            f"2/5 split (seed {self.config.seed}): {len(train)} train, {len(validation)} "
            "validation; scoring the base model on the validation split"
        )
        before = self._evaluate(engine, validation, "base model")
        self._say(f"    base {METRIC}: {before[METRIC]['mean']:.2f}")
        batches = self._encode(engine, tokenizer, train)
        self._say(
            f"3/5 training LoRA adapters in {self.config.stages} stages (gradual unfreezing); "
            f"4/5 search over {len(self._grid())} settings, {self.config.budget_minutes:g} min"
        )
        trials: list[TrialResult] = []
        best_state: dict[str, Any] | None = None
        best_trial: TrialResult | None = None
        for number, (lr, rank, epochs) in enumerate(self._grid(), start=1):
            remaining = deadline - time.monotonic()
            estimate = trials[-1].seconds if trials else 0.0
            if trials and remaining < estimate:
                self._say(f"    time budget reached: {len(trials)} of {len(self._grid())} tried")
                break
            trial, state = self._trial(
                number, model, tokenizer, batches, validation, lr, rank, epochs, deadline
            )
            trials.append(trial)
            self._say(
                f"    trial {number}: lr {lr:g}, rank {rank}, {epochs} epoch(s)/stage → "
                f"best {METRIC} {trial.best:.2f}"
                + (" (stopped early)" if trial.stopped_early else "")
            )
            if best_trial is None or trial.best > best_trial.best:
                best_trial, best_state = trial, state
        assert best_trial is not None and best_state is not None
        saved = self._save(model, tokenizer, best_trial, best_state)
        del engine, model  # the saved model is loaded next: never two copies in memory
        gc.collect()
        self._say(f"5/5 scoring the saved model ({saved}) on the validation split")
        # In float32 like the base model, so the two scores differ only by the training.
        after = self._evaluate(
            TransformersEngine(str(saved), self._models_dir, dtype="float32"),
            validation,
            "adapted model",
        )
        report = self._report(
            before, after, trials, best_trial, len(train), len(validation), started
        )
        return report

    def _grid(self) -> list[tuple[float, int, int]]:
        return list(
            itertools.product(self.config.learning_rates, self.config.ranks, self.config.epochs)
        )

    def _evaluate(
        self, engine: TransformersEngine, examples: Sequence[SummaryExample], label: str
    ) -> dict[str, dict[str, float]]:
        summarizer = LLMSummarizer(engine, self._limits)
        scorer = make_scorer(self.config.language)
        per_document = []
        for example in progress(examples, f"scoring the {label}", "doc", self._progress):
            sentences = split_sentences(self._truncate(engine, example.text), self.config.language)
            written = " ".join(
                summarizer.summarize(sentences, self.config.language, Length.MEDIUM)
            )
            per_document.append(score_pair(scorer, written, example.summary, self.config.language))
        return {name: value.as_dict() for name, value in summarize_scores(per_document).items()}

    def _truncate(self, engine: TransformersEngine, text: str) -> str:
        _, tokenizer = engine.loaded()
        ids = tokenizer(text, add_special_tokens=False)["input_ids"]
        if len(ids) <= self.config.max_source_tokens:
            return text
        return str(tokenizer.decode(ids[: self.config.max_source_tokens]))

    def _encode(
        self, engine: TransformersEngine, tokenizer: Any, examples: Sequence[SummaryExample]
    ) -> list[tuple[list[int], list[int]]]:
        """(input ids, labels) per example: the serving prompt, then the reference summary."""
        pairs = []
        eos = tokenizer.eos_token_id if tokenizer.eos_token_id is not None else 0
        for example in examples:
            source = self._truncate(engine, example.text)
            prompt = LLMSummarizer.prompt(source, self.config.language)
            prompt_ids = [int(i) for i in engine.prompt_ids(prompt)[0].tolist()]
            target = tokenizer(example.summary, add_special_tokens=False)["input_ids"]
            target = [*target[: self.config.max_summary_tokens], eos]
            pairs.append((prompt_ids + target, [-100] * len(prompt_ids) + target))
        return pairs

    # ---------------------------------------------------------------- one trial

    def _trial(
        self,
        number: int,
        base: Any,
        tokenizer: Any,
        batches: list[tuple[list[int], list[int]]],
        validation: Sequence[SummaryExample],
        lr: float,
        rank: int,
        epochs: int,
        deadline: float,
    ) -> tuple[TrialResult, dict[str, Any]]:
        import torch
        from peft import LoraConfig, get_peft_model
        from transformers import get_linear_schedule_with_warmup

        started = time.monotonic()
        checkpoint = self.directory / "checkpoints" / f"trial-{number}.pt"
        result = TrialResult(lr, rank, epochs)
        config = LoraConfig(
            r=rank,
            lora_alpha=2 * rank,
            lora_dropout=0.05,
            target_modules=lora_targets(base),
            task_type="CAUSAL_LM",
        )
        model = get_peft_model(base, config)
        lora = {n: p for n, p in model.named_parameters() if "lora_" in n}
        layers = max(layer_of(n) for n in lora) + 1
        best_state = {n: p.detach().clone() for n, p in lora.items()}
        position = (1, 0)  # (stage, epochs done in it)
        saved: dict[str, Any] | None = None
        if checkpoint.is_file():
            saved = torch.load(checkpoint, weights_only=False)
            if saved.get("key") != [lr, rank, epochs]:
                saved = None
        if saved is not None:
            model.load_state_dict(saved["lora"], strict=False)
            best_state = saved["best_state"]
            result = TrialResult(**saved["result"])
            position = (saved["stage"], saved["epoch"])
            self._say(f"    trial {number}: resumed at stage {position[0]}, epoch {position[1]}")
        if result.finished:
            model.unload()
            return result, best_state
        stale = 0
        try:
            for stage in range(position[0], self.config.stages + 1):
                lowest = stage_layers(layers, self.config.stages, stage)
                for name, parameter in lora.items():
                    parameter.requires_grad = layer_of(name) >= lowest
                trainable = [p for p in lora.values() if p.requires_grad]
                optimizer = torch.optim.AdamW(trainable, lr=lr, weight_decay=0.0)
                steps = epochs * -(-len(batches) // self.config.batch_size)
                schedule = get_linear_schedule_with_warmup(
                    optimizer, max(1, steps // 10), max(1, steps)
                )
                first_epoch = position[1] if stage == position[0] else 0
                if saved is not None and stage == saved["stage"] and "optimizer" in saved:
                    optimizer.load_state_dict(saved["optimizer"])
                    schedule.load_state_dict(saved["schedule"])
                for epoch in range(first_epoch, epochs):
                    loss = self._train_epoch(model, batches, optimizer, schedule)
                    engine = TransformersEngine.from_loaded(model, tokenizer, "training")
                    model.eval()
                    score = self._evaluate(engine, validation, f"trial {number}")[METRIC]["mean"]
                    result.curve.append(
                        {"stage": stage, "epoch": epoch + 1, "train_loss": loss, METRIC: score}
                    )
                    if score > result.best:
                        result.best, stale = score, 0
                        best_state = {n: p.detach().clone() for n, p in lora.items()}
                    else:
                        stale += 1
                    result.seconds = (
                        time.monotonic() - started + (saved["result"]["seconds"] if saved else 0.0)
                    )
                    out_of_time = time.monotonic() > deadline
                    last = stage == self.config.stages and epoch + 1 == epochs
                    result.stopped_early = not last and (
                        stale >= self.config.patience or out_of_time
                    )
                    result.finished = last or result.stopped_early
                    self._checkpoint(
                        checkpoint,
                        [lr, rank, epochs],
                        model,
                        best_state,
                        result,
                        stage,
                        epoch + 1,
                        optimizer,
                        schedule,
                    )
                    if result.stopped_early:
                        return result, best_state
            return result, best_state
        finally:
            model.unload()  # the base model is shared by every trial

    def _train_epoch(
        self,
        model: Any,
        batches: list[tuple[list[int], list[int]]],
        optimizer: Any,
        schedule: Any,
    ) -> float:
        import torch

        model.train()
        # Activations are recomputed layer by layer in the backward pass instead of kept, and
        # a batch is run one example at a time (below): SmolLM2-135M trains in ~1.2 GB.
        base = model.get_base_model()
        if hasattr(base, "activation_checkpointing_enable"):
            base.activation_checkpointing_enable({"use_reentrant": False})
        else:  # transformers before 5.2x
            base.gradient_checkpointing_enable({"use_reentrant": False})
        order = list(range(len(batches)))
        random.Random(self.config.seed + len(batches)).shuffle(order)
        losses: list[float] = []
        size = self.config.batch_size
        groups = [order[i : i + size] for i in range(0, len(order), size)]
        for group in progress(groups, "training", "batch", self._progress):
            loss = batch_backward(model, [batches[i] for i in group])
            torch.nn.utils.clip_grad_norm_([p for p in model.parameters() if p.requires_grad], 1.0)
            optimizer.step()
            schedule.step()
            optimizer.zero_grad()
            losses.append(loss)
        return sum(losses) / max(1, len(losses))

    def _checkpoint(
        self,
        path: Path,
        key: list[float | int],
        model: Any,
        best_state: dict[str, Any],
        result: TrialResult,
        stage: int,
        epoch: int,
        optimizer: Any,
        schedule: Any,
    ) -> None:
        import torch

        path.parent.mkdir(parents=True, exist_ok=True)
        lora = {n: p.detach() for n, p in model.named_parameters() if "lora_" in n}
        partial = path.with_suffix(".partial")
        torch.save(
            {
                "key": key,
                "lora": lora,
                "best_state": best_state,
                "result": asdict(result),
                "stage": stage,
                "epoch": epoch,
                "optimizer": optimizer.state_dict(),
                "schedule": schedule.state_dict(),
            },
            partial,
        )
        partial.replace(path)

    # ---------------------------------------------------------------- results

    def _save(self, base: Any, tokenizer: Any, trial: TrialResult, state: dict[str, Any]) -> Path:
        from peft import LoraConfig, get_peft_model

        config = LoraConfig(
            r=trial.rank,
            lora_alpha=2 * trial.rank,
            lora_dropout=0.0,
            target_modules=lora_targets(base),
            task_type="CAUSAL_LM",
        )
        model = get_peft_model(base, config)
        model.load_state_dict(state, strict=False)
        merged: Any = model.merge_and_unload()
        target = self.directory / "model"
        merged.save_pretrained(target)
        tokenizer.save_pretrained(target)
        return target

    def _report(
        self,
        before: dict[str, dict[str, float]],
        after: dict[str, dict[str, float]],
        trials: list[TrialResult],
        best: TrialResult,
        train_size: int,
        validation_size: int,
        started: float,
    ) -> dict[str, Any]:
        gained = after[METRIC]["mean"] > before[METRIC]["mean"]
        report: dict[str, Any] = {
            "name": self.config.name,
            "method": f"llm:{self.config.name}",
            "config": {**asdict(self.config)},
            "train_examples": train_size,
            "validation_examples": validation_size,
            "before": before,
            "after": after,
            "gained": gained,
            "best_trial": asdict(best),
            "trials": [asdict(t) for t in trials],
            "seconds": round(time.monotonic() - started, 1),
        }
        (self.directory / "report.json").write_text(json.dumps(report, indent=2))
        (self.directory / "report.md").write_text(report_markdown(report))
        self._say(report_markdown(report))
        return report


def report_markdown(report: dict[str, Any]) -> str:
    """The human-readable report: before/after table with intervals, then the curves."""
    lines = [
        f"# Adapted model `{report['method']}`",
        "",
        f"Base {report['config']['base']}, language {report['config']['language']}, "
        f"{report['train_examples']} training / {report['validation_examples']} validation "
        f"examples, {report['seconds']} s.",
        "",
        "| metric | before | after |",
        "|---|---|---|",
    ]
    for name in ROUGE_TYPES:
        b, a = report["before"][name], report["after"][name]
        lines.append(
            f"| {name} | {b['mean']:.2f} [{b['low']:.2f}, {b['high']:.2f}] "
            f"| {a['mean']:.2f} [{a['low']:.2f}, {a['high']:.2f}] |"
        )
    lines += ["", "| trial | lr | rank | epochs/stage | curve (stage.epoch: loss → RLsum) |"]
    lines.append("|---|---|---|---|---|")
    for number, trial in enumerate(report["trials"], start=1):
        curve = "; ".join(
            f"{int(p['stage'])}.{int(p['epoch'])}: {p['train_loss']:.3f} → {p[METRIC]:.2f}"
            for p in trial["curve"]
        )
        lines.append(
            f"| {number} | {trial['learning_rate']:g} | {trial['rank']} | {trial['epochs']} "
            f"| {curve} |"
        )
    verdict = (
        "The adapted model scores higher than the base on the validation split."
        if report["gained"]
        else "No gain: the adapted model does not beat the base on the validation split."
    )
    return "\n".join([*lines, "", verdict, ""])


def batch_backward(model: Any, batch: Sequence[tuple[list[int], list[int]]]) -> float:
    """Accumulate the gradient of ``batch``'s loss (the mean over all its summary tokens, as
    one padded batch would give) one example at a time: one sequence's activations in memory,
    no padding computed. Returns the loss."""
    import torch

    counts = [sum(1 for label in labels[1:] if label != -100) for _, labels in batch]
    total = sum(counts)
    loss = 0.0
    for (inputs, labels), count in zip(batch, counts, strict=True):
        if not count:
            continue
        ids = torch.tensor([inputs])
        part = summary_loss(model, ids, torch.ones_like(ids), torch.tensor([labels]))
        (part * (count / total)).backward()
        loss += float(part.detach()) * count / total
    return loss


def summary_loss(model: Any, ids: Any, mask: Any, labels: Any) -> Any:
    """Next-token cross-entropy on the summary tokens only (labels ≠ -100), as the model's own
    loss computes it, but the vocabulary projection runs on those positions alone: logits for
    every prompt token (batch × 550 × 49,152 floats, with their softmax and gradient) were
    most of ``adapt``'s memory."""
    from torch.nn import functional

    base = model.get_base_model()
    hidden = base.get_decoder()(input_ids=ids, attention_mask=mask).last_hidden_state
    targets = labels[:, 1:]
    keep = targets != -100
    logits = base.get_output_embeddings()(hidden[:, :-1][keep])
    return functional.cross_entropy(logits.float(), targets[keep])
