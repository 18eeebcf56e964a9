"""condensa adapt on a tiny GPT-2: split, two unfreezing stages, evaluate, save, reload, serve."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from bot.cli import main
from playground.api import BotAPIEmulator
from services.core.executor import ModelExecutor
from services.core.types import SummaryOptions
from services.evaluation.data import BadDataFile, load_summary_examples
from services.keywords.extractor import KeyBERTExtractor
from services.llm.adapt.serving import AdaptedModels
from services.llm.adapt.training import (
    Adaptation,
    AdaptConfig,
    batch_backward,
    layer_of,
    split_examples,
    stage_layers,
    summary_loss,
)
from services.llm.engines import GenerationLimits
from services.summarize.service import build_summary_service
from tests.conftest import ENGLISH_ARTICLE, BotFactory

SENTENCES = ENGLISH_ARTICLE.split(". ")


def write_pairs(path: Path, count: int = 8) -> Path:
    lines = []
    for i in range(count):
        picked = [SENTENCES[(i + k) % len(SENTENCES)].rstrip(".") + "." for k in range(4)]
        lines.append(json.dumps({"id": str(i), "text": " ".join(picked), "summary": picked[0]}))
    path.write_text("\n".join(lines) + "\n")
    return path


def tiny_config(base: Path, **overrides: Any) -> AdaptConfig:
    values: dict[str, Any] = {
        "name": "newsroom",
        "base": str(base),
        "language": "en",
        "validation_share": 0.25,
        "budget_minutes": 5,
        "learning_rates": (5e-3,),
        "ranks": (4,),
        "epochs": (1,),
        "stages": 2,
        "batch_size": 2,
        "patience": 5,
        "max_source_tokens": 48,
        "max_summary_tokens": 16,
        "max_new_tokens": 6,
    }
    values.update(overrides)
    return AdaptConfig(**values)


def test_the_split_is_seeded_and_never_empty() -> None:
    examples = load_summary_examples(write_pairs(Path("/tmp") / "condensa-split.jsonl", 10))
    train, validation = split_examples(examples, 0.2, seed=3)
    again = split_examples(examples, 0.2, seed=3)
    assert (len(train), len(validation)) == (8, 2)
    assert [e.id for e in validation] == [e.id for e in again[1]]
    assert {e.id for e in train}.isdisjoint({e.id for e in validation})
    assert [len(part) for part in split_examples(examples[:2], 0.9, 0)] == [1, 1]
    with pytest.raises(BadDataFile, match="two examples"):
        split_examples(examples[:1], 0.2, 0)


def test_the_summary_loss_is_the_models_own_loss(tiny_gpt2: Path) -> None:
    """The loss that projects only the summary positions onto the vocabulary equals the
    model's own causal-LM loss, value and gradients, with padding and LoRA in place."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    base = AutoModelForCausalLM.from_pretrained(str(tiny_gpt2))
    model = get_peft_model(
        base, LoraConfig(r=4, target_modules=["c_attn"], lora_dropout=0.0, init_lora_weights=False)
    )
    ids = torch.randint(5, 100, (2, 12))
    mask = torch.ones_like(ids)
    mask[1, 9:] = 0  # the second row is padded
    labels = torch.full_like(ids, -100)
    labels[0, 6:] = ids[0, 6:]
    labels[1, 4:9] = ids[1, 4:9]
    lora = [p for n, p in model.named_parameters() if "lora_" in n]
    expected = model(input_ids=ids, attention_mask=mask, labels=labels).loss
    expected_grads = torch.autograd.grad(expected, lora)
    ours = summary_loss(model, ids, mask, labels)
    our_grads = torch.autograd.grad(ours, lora)
    assert float(ours.detach()) == pytest.approx(float(expected.detach()), rel=1e-5)
    assert all(float(g.abs().max()) > 0 for g in expected_grads)
    for got, want in zip(our_grads, expected_grads, strict=True):
        assert torch.allclose(got, want, atol=1e-6)


def test_a_batch_run_one_example_at_a_time_has_the_padded_batchs_gradient(
    tiny_gpt2: Path,
) -> None:
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    base = AutoModelForCausalLM.from_pretrained(str(tiny_gpt2))
    config = LoraConfig(r=4, target_modules=["c_attn"], lora_dropout=0.0, init_lora_weights=False)
    model = get_peft_model(base, config)
    pairs = [  # (input ids, labels): a prompt, then 3 / 6 summary tokens
        (list(range(10, 22)), [-100] * 9 + list(range(19, 22))),
        (list(range(30, 38)), [-100] * 2 + list(range(32, 38))),
    ]
    ids = torch.zeros((2, 12), dtype=torch.long)
    mask = torch.zeros_like(ids)
    labels = torch.full_like(ids, -100)
    for row, (inputs, targets) in enumerate(pairs):
        ids[row, : len(inputs)] = torch.tensor(inputs)
        mask[row, : len(inputs)] = 1
        labels[row, : len(targets)] = torch.tensor(targets)
    lora = [p for n, p in model.named_parameters() if "lora_" in n]
    padded = summary_loss(model, ids, mask, labels)
    expected = torch.autograd.grad(padded, lora)
    loss = batch_backward(model, pairs)
    assert loss == pytest.approx(float(padded), rel=1e-5)
    for parameter, want in zip(lora, expected, strict=True):
        assert parameter.grad is not None
        assert torch.allclose(parameter.grad, want, atol=1e-6)


def test_unfreezing_releases_layers_from_the_top() -> None:
    assert [stage_layers(2, 2, s) for s in (1, 2)] == [1, 0]
    assert [stage_layers(30, 3, s) for s in (1, 2, 3)] == [20, 10, 0]
    assert layer_of("base_model.model.transformer.h.1.attn.c_attn.lora_A.default.weight") == 1
    assert layer_of("model.layers.17.self_attn.q_proj.lora_B.default.weight") == 17
    for bad in ("Bad Name!", "hub", "x" * 33):
        with pytest.raises(BadDataFile, match="model name"):
            tiny_config(Path(), name=bad)


def test_adapt_end_to_end_then_serve_it_as_a_summary_method(
    tiny_gpt2: Path, tmp_path: Path
) -> None:
    examples = load_summary_examples(write_pairs(tmp_path / "pairs.jsonl"))
    lines: list[str] = []
    adaptation = Adaptation(tiny_config(tiny_gpt2), tmp_path / "models", lines.append, False)
    report = adaptation.run(examples)

    steps = [line.split(" ", 1)[0] for line in lines if line[:1].isdigit()]
    assert steps == ["1/5", "2/5", "3/5", "5/5"]
    assert (report["train_examples"], report["validation_examples"]) == (6, 2)
    curve = report["trials"][0]["curve"]
    assert [(point["stage"], point["epoch"]) for point in curve] == [(1, 1), (2, 1)]
    assert all(point["train_loss"] > 0 for point in curve)
    for side in ("before", "after"):
        rouge = report[side]["rougeLsum"]
        assert 0 <= rouge["low"] <= rouge["mean"] <= rouge["high"] <= 100
    directory = tmp_path / "models" / "newsroom"
    assert json.loads((directory / "report.json").read_text())["method"] == "llm:newsroom"
    assert "| rougeLsum |" in (directory / "report.md").read_text()

    adapted = AdaptedModels(tmp_path / "models", GenerationLimits(max_new_tokens=6))
    assert adapted.names() == ["newsroom"]
    service = build_summary_service(ModelExecutor(), 100_000, "lexrank", adapted=adapted)
    assert "llm:newsroom" in service.methods()
    import asyncio

    summary = asyncio.run(
        service.summarize(ENGLISH_ARTICLE, SummaryOptions(method="llm:newsroom"))
    )
    assert summary.method == "llm:newsroom" and summary.sentences

    fallback = asyncio.run(service.summarize(ENGLISH_ARTICLE, SummaryOptions(method="llm:gone")))
    assert fallback.method == "lexrank" and fallback.requested_method == "llm:gone"
    assert "no adapted model" in fallback.note
    (directory / "model" / "model.safetensors").write_bytes(b"broken")
    broken = AdaptedModels(tmp_path / "models", GenerationLimits(max_new_tokens=6))
    service = build_summary_service(ModelExecutor(), 100_000, "lexrank", adapted=broken)
    answer = asyncio.run(service.summarize(ENGLISH_ARTICLE, SummaryOptions(method="llm:newsroom")))
    assert answer.method == "lexrank" and "damaged" in answer.note


def test_an_interrupted_run_resumes_from_its_checkpoint(
    tiny_gpt2: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    examples = load_summary_examples(write_pairs(tmp_path / "pairs.jsonl"))
    config = tiny_config(tiny_gpt2, name="resumed")
    original = Adaptation._train_epoch
    calls = {"count": 0}

    def crash_on_second_epoch(self: Adaptation, *args: Any) -> float:
        calls["count"] += 1
        if calls["count"] == 2:
            raise KeyboardInterrupt
        return original(self, *args)

    monkeypatch.setattr(Adaptation, "_train_epoch", crash_on_second_epoch)
    with pytest.raises(KeyboardInterrupt):
        Adaptation(config, tmp_path / "models", lambda _: None, False).run(examples)
    checkpoint = tmp_path / "models" / "resumed" / "checkpoints" / "trial-1.pt"
    assert checkpoint.is_file()

    lines: list[str] = []
    report = Adaptation(config, tmp_path / "models", lines.append, False).run(examples)
    assert any("resumed at stage 1, epoch 1" in line for line in lines)
    assert calls["count"] == 3  # only the second stage was trained again
    stages = [point["stage"] for point in report["trials"][0]["curve"]]
    assert stages == [1, 2]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"text": "a b c", "summary": "a"}\n{"text": "x y"}\n', ":2: missing or empty field"),
        ("", "no examples"),
        ('{"text": "a", "summary": "b"}\nnot json\n', ":2:"),
    ],
)
def test_bad_training_files_name_the_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str, message: str
) -> None:
    data = tmp_path / "bad.jsonl"
    data.write_text(content)
    assert main(["adapt", "--data", str(data), "--name", "x"]) == 2
    error = capsys.readouterr().err
    assert message in error and error.count("\n") == 1


async def test_an_adapted_model_is_chosen_in_settings_and_used_in_chat(
    tiny_gpt2: Path, tmp_path: Path, emulator: BotAPIEmulator, make_bot: BotFactory
) -> None:
    import asyncio

    from bot.factories import Services

    examples = load_summary_examples(write_pairs(tmp_path / "pairs.jsonl"))
    models = tmp_path / "models"
    adaptation = Adaptation(tiny_config(tiny_gpt2), models, lambda _: None, False)
    await asyncio.to_thread(adaptation.run, examples)
    executor = ModelExecutor()
    adapted = AdaptedModels(models, GenerationLimits(max_new_tokens=6))
    await make_bot(
        services=Services(
            summarizer=build_summary_service(executor, 100_000, "lexrank", adapted=adapted),
            keywords=KeyBERTExtractor(executor),
            executor=executor,
        )
    )
    user = emulator.add_user(7, "Dana", "en")
    chat = emulator.private_chat(user)
    await emulator.send_text(chat, user, "/settings")
    menu = (await emulator.wait_until(lambda: emulator.bot_messages(7)))[0]
    buttons = [b for row in menu["reply_markup"]["inline_keyboard"] for b in row]
    choice = next(b for b in buttons if b["text"] == "LLM · newsroom")
    pressed = await emulator.press_button(chat, user, menu["message_id"], choice["callback_data"])
    await emulator.wait_until(lambda: pressed in emulator.callback_answers)
    sent = await emulator.send_text(chat, user, "/summary " + ENGLISH_ARTICLE)
    reply = await emulator.wait_until(
        lambda: [
            m
            for m in emulator.bot_messages(7)
            if m["message_id"] > sent["message_id"] and "LLM · newsroom" in m["text"]
        ],
        timeout=60,
    )
    assert reply[0]["text"].startswith("LLM · newsroom ·")
