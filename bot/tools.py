"""What the command line's subcommands do: summarize, keywords, generate/ask, digest, eval,
adapt, storage. Each takes the settings and the parsed arguments and returns what to print
(``bot.cli`` parses, launches the bot, and keeps the exit contract)."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from bot.settings import Settings
from services.core.errors import CondensaError
from services.core.types import (
    ChatDigest,
    ChatMessage,
    DigestSentence,
    DocumentText,
    Length,
    SummaryOptions,
    Transcript,
)
from services.evaluation.data import BadDataFile, load_summary_examples
from services.ingest.audio import is_audio
from services.ingest.documents import read_text_document

logger = logging.getLogger(__name__)


def _read_bytes(source: str) -> tuple[bytes, str]:
    if source == "-":
        return sys.stdin.buffer.read(), "stdin.txt"
    path = Path(source)
    try:
        return path.read_bytes(), path.name
    except OSError as exc:
        raise CondensaError(f"cannot read {source}: {exc.strerror or exc}") from exc


def _read_input(source: str) -> str:
    """A plain-text input (generation context)."""
    data, name = _read_bytes(source)
    return read_text_document(data, name)


def _read_file(settings: Settings, source: str) -> tuple[bytes, str]:
    data, name = _read_bytes(source)
    if len(data) > settings.max_file_bytes:
        raise CondensaError(
            f"{name} is {len(data):,} bytes; the limit is {settings.max_file_bytes:,} bytes"
        )
    return data, name


async def _transcript(settings: Settings, data: bytes, language: str | None) -> Transcript:
    from bot.factories import build_speech

    speech = build_speech(settings)
    try:
        return await speech.transcribe(data, language)
    finally:
        speech.executor.shutdown()


async def _read_document(settings: Settings, source: str) -> DocumentText:
    """Any supported document (photos and scans by OCR, recordings by transcription), parsed
    in the sandbox; refused when over the file limit."""
    from bot.factories import build_document_reader

    data, name = _read_file(settings, source)
    if is_audio(data[:64]):
        transcript = await _transcript(settings, data, None)
        return DocumentText(transcript.text, "audio", None, transcript.words)
    return await build_document_reader(settings).read(data, name)


async def run_transcribe(settings: Settings, args: argparse.Namespace) -> str:
    data, _ = _read_file(settings, args.input)
    transcript = await _transcript(settings, data, args.lang or None)
    print(
        f"condensa: {transcript.seconds:.1f} s of {transcript.language} speech "
        f"({transcript.backend})",
        file=sys.stderr,
    )
    return transcript.text


def _partial_line(document: DocumentText) -> str:
    """The first line of a partial answer, or empty (the bot's English sentence)."""
    from handlers.render import partial_note

    return partial_note(document, "en")


async def run_summarize(settings: Settings, args: argparse.Namespace) -> str:
    from bot.factories import build_services

    document = await _read_document(settings, args.input)
    services = build_services(settings)
    try:
        text = document.text
        options = SummaryOptions(
            method=args.method or "",
            length=Length(args.length),
            sentences=args.sentences,
            language=args.lang or "",
        )
        summary = await services.summarizer.summarize(text, options)
    finally:
        services.close()
    if summary.requested_method:
        print(
            f"condensa: {summary.requested_method} unavailable ({summary.note}); "
            f"used {summary.method}",
            file=sys.stderr,
        )
    header = (
        f"{summary.method} · {len(summary.sentences)} of {summary.source_sentences} sentences, "
        f"{round(100 * summary.compression)} %"
    )
    partial = _partial_line(document)
    return "\n".join([*([partial] if partial else []), header, "", *summary.sentences])


async def run_keywords(settings: Settings, args: argparse.Namespace) -> str:
    from bot.factories import build_services

    document = await _read_document(settings, args.input)
    services = build_services(settings)
    try:
        text = document.text
        result = await services.keywords.extract(text, top_n=args.top, language=args.lang or "")
    finally:
        services.close()
    return "\n".join(f"{item.phrase}\t{item.score:.4f}" for item in result.keyphrases)


async def run_generate(settings: Settings, args: argparse.Namespace) -> str:
    import threading

    from bot.factories import build_services
    from services.core.types import Prompt

    services = build_services(settings)
    if services.generator is None:  # pragma: no cover - build_services always makes one
        raise CondensaError("text generation is not available")
    if args.command == "ask":
        context = _read_input(args.context) if args.context else ""
        prompt = Prompt(args.prompt, instruct=True, context=context)
    else:
        prompt = Prompt(args.prompt, instruct=False)
    try:
        async for piece in services.generator.stream(prompt, threading.Event(), args.max_tokens):
            sys.stdout.write(piece)
            sys.stdout.flush()
    finally:
        services.close()
    return ""


async def run_eval_keywords(settings: Settings, args: argparse.Namespace) -> str:
    from bot.factories import build_services
    from services.evaluation.data import load_keyphrase_examples
    from services.evaluation.keyphrases import keyphrase_report
    from services.evaluation.progress import progress

    examples = load_keyphrase_examples(Path(args.data), args.limit)
    services = build_services(settings)
    rows = []
    try:
        for example in progress(examples, "eval keywords", "doc"):
            try:
                result = await services.keywords.extract(example.text, args.top, example.language)
                phrases = [k.phrase for k in result.keyphrases]
            except CondensaError:
                phrases = []
            rows.append((example, phrases))
    finally:
        services.close()
    if args.predictions_out:
        _write_jsonl(
            Path(args.predictions_out),
            [{"id": example.id, "keyphrases": phrases} for example, phrases in rows],
        )
    report = keyphrase_report(rows)
    if args.json:
        return json.dumps(
            {"data": str(args.data), "documents": len(rows), "scores": report}, indent=2
        )
    lines = [
        f"keywords on {args.data} ({len(rows)} documents)",
        f"{'metric':<14} {'F1':>6}  95 % interval",
    ]
    for name, value in report.items():
        lines.append(
            f"{name:<14} {value['mean']:>6.2f}  [{value['low']:.2f}, {value['high']:.2f}]"
        )
    return "\n".join(lines)


def _write_jsonl(path: Path, rows: Sequence[Mapping[str, object]]) -> None:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), "utf-8")


async def run_eval_summary(settings: Settings, args: argparse.Namespace) -> str:
    from bot.factories import build_services
    from services.evaluation.progress import progress
    from services.evaluation.rouge import bootstrap, evaluate_summarizer, summarize_scores

    if args.methods:
        return await _compare_summaries(settings, args)
    if len(args.data) > 1:
        raise CondensaError("several --data files are compared with --methods a,b,…")
    examples = load_summary_examples(Path(args.data[0]), args.limit)
    services = build_services(settings)
    method = args.method or services.summarizer.methods()[0]
    try:
        shown = progress(examples, f"eval {method}", "doc")
        run = await evaluate_summarizer(services.summarizer, shown, method, args.sentences)
    finally:
        services.close()
    if args.predictions_out:
        _write_jsonl(Path(args.predictions_out), run.predictions)
    refused = run.refused
    scores = summarize_scores(run.scores)
    faithful = bootstrap(run.faithfulness)
    report = {
        "data": str(args.data[0]),
        "method": method,
        "documents": len(examples),
        "refused": refused,
        "sentences": args.sentences,
        "rouge": {name: value.as_dict() for name, value in scores.items()},
        "faithfulness": faithful.as_dict(),
    }
    if args.json:
        return json.dumps(report, indent=2)
    lines = [
        f"{method} on {args.data[0]} ({len(examples)} documents, {refused} refused)",
        f"{'metric':<10} {'F1':>6}  95 % interval",
    ]
    for name, value in scores.items():
        lines.append(f"{name:<10} {value.mean:>6.2f}  [{value.low:.2f}, {value.high:.2f}]")
    lines.append(
        f"supported sentences {faithful.mean:.1f} % [{faithful.low:.1f}, {faithful.high:.1f}]"
        " (names, numbers and content words found in the source)"
    )
    return "\n".join(lines)


async def _compare_summaries(settings: Settings, args: argparse.Namespace) -> str:
    """``eval summary --methods a,b --data X Y``: every method on every file, one table per
    ROUGE type (Markdown; ``--json`` for the numbers)."""
    from bot.factories import build_services
    from services.evaluation.baselines import compare_methods, comparison_markdown
    from services.evaluation.progress import progress

    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    sets = {Path(path).stem: load_summary_examples(Path(path), args.limit) for path in args.data}
    services = build_services(settings)
    try:
        table = await compare_methods(
            services.summarizer,
            sets,
            methods,
            args.sentences,
            shown=lambda examples, label: progress(examples, f"eval {label}", "doc"),
        )
    finally:
        services.close()
    if args.json:
        return json.dumps(table, indent=2)
    parts = []
    for metric, title in (
        ("rouge1", "ROUGE-1"),
        ("rouge2", "ROUGE-2"),
        ("rougeLsum", "ROUGE-Lsum"),
    ):
        parts += [
            f"{title} F1 (95 % interval)",
            "",
            comparison_markdown(table, metric, args.sentences),
            "",
        ]
    return "\n".join(parts).rstrip()


async def read_conversation(settings: Settings, data: bytes, name: str) -> list[ChatMessage]:
    """A conversation file: JSONL of ``{"author", "text"[, "date"]}``, or a Telegram Desktop
    export (parsed in the sandboxed child, as ``/import`` does)."""
    from bot.factories import documents_limits
    from services.evaluation.data import jsonl_lines
    from services.ingest.chat_export import ChatExportReader

    if data.startswith(b"PK") or (data.lstrip().startswith(b"{") and b'"messages"' in data[:4096]):
        reader = ChatExportReader(limits=documents_limits(settings))
        return (await reader.read_export(data)).messages
    messages: list[ChatMessage] = []
    for number, record in jsonl_lines(data.decode("utf-8", "replace").splitlines(), name):
        if not isinstance(record.get("text"), str):
            raise CondensaError(f'{name}:{number}: expected {{"author", "text"}}')
        date = record.get("date")
        stamp = int(date) if isinstance(date, int | float) else 60 * number
        author = str(record.get("author") or "")
        messages.append(ChatMessage(0, number, 0, author, stamp, record["text"]))
    return messages


def digest_text(digest: ChatDigest) -> str:
    """A digest as plain text; each sentence names the message (#id) it rests on."""

    def said(sentence: DigestSentence) -> str:
        where = ",".join(f"#{m.message_id}" for m in sentence.sources)
        flag = "[unsupported] " if sentence.flagged else ""
        return f"{flag}{sentence.plain()} ({where})" if where else flag + sentence.plain()

    lines = [
        f"Digest: {digest.message_count} messages from {digest.participants} people",
    ]
    if digest.tldr:
        lines += ["", "In short:", *(f"  {said(s)}" for s in digest.tldr)]
    if digest.keyphrases:
        lines += ["", "Key phrases: " + ", ".join(f"{p} ({n})" for p, n in digest.keyphrases)]
    for number, topic in enumerate(digest.topics, start=1):
        people = f" · with {', '.join(topic.people)}" if topic.people else ""
        heading = f"{number}. {', '.join(topic.words)} · {topic.message_count} messages{people}"
        lines += ["", heading, *(f"  - {said(s)}" for s in topic.sentences)]
    if digest.written_by:
        lines += ["", f"Sentences written by {digest.written_by} from the messages cited."]
    return "\n".join(lines)


async def run_digest(settings: Settings, args: argparse.Namespace) -> str:
    from bot.factories import build_services

    data, name = _read_bytes(args.input)
    messages = await read_conversation(settings, data, name)
    services = build_services(settings)
    try:
        if services.digests is None:  # pragma: no cover - build_services always makes one
            raise CondensaError("digests are not available")
        digest = await services.digests.digest(messages, args.lang or "")
    finally:
        services.close()
    return digest_text(digest)


async def run_eval_grounding(settings: Settings, args: argparse.Namespace) -> str:
    from services.evaluation.faithfulness import evaluate_checker, load_faithfulness_examples
    from services.evaluation.progress import progress
    from services.grounding.checkers import AlignmentChecker, ConsistencyChecker, LLMJudge
    from services.grounding.learned import shipped_head

    examples = load_faithfulness_examples(Path(args.data), args.limit)
    if args.cross_validate or args.save_head:
        if args.checker != "learned":
            raise CondensaError("--cross-validate and --save-head train the learned checker")
        report = await asyncio.to_thread(_train_grounding, examples, args)
    else:
        checker: ConsistencyChecker = AlignmentChecker()
        if args.checker == "learned":
            head = shipped_head()
            if head is None:
                raise CondensaError("the learned consistency head is missing or damaged")
            checker = AlignmentChecker(head=head, name="learned")
        elif args.checker == "llm":
            from bot.factories import build_engine

            checker = LLMJudge(build_engine(settings))
        shown = progress(examples, f"eval grounding {checker.name}", "row")
        report = await asyncio.to_thread(evaluate_checker, checker, shown, len(examples))
    if args.json:
        return json.dumps(report)
    scores = report["balanced_accuracy"]
    low, high = report["overall_interval"]
    lines = [
        f"grounding checker {report['checker']} on {args.data} ({len(examples)} rows)",
        f"{'domain':<14} {'balanced accuracy':>18}",
    ]
    lines += [f"{name:<14} {value:>18.2f}" for name, value in scores.items() if name != "overall"]
    lines += [
        f"{'overall':<14} {scores['overall']:>18.2f}  [{low:.2f}, {high:.2f}] (mean of domains)",
        f"recall: inconsistent {report['recall_inconsistent']:.1f} %, "
        f"consistent {report['recall_consistent']:.1f} %",
        f"seconds per example: {report['seconds_per_example']:.4f}",
    ]
    return "\n".join(lines)


def _train_grounding(examples: list[Any], args: argparse.Namespace) -> dict[str, Any]:
    """Cross-validate (and with ``--save-head`` train and save) the learned consistency head."""
    from services.evaluation import consistency_head
    from services.evaluation.progress import progress

    started = time.perf_counter()
    described = consistency_head.describe(progress(examples, "eval grounding features", "row"))
    # What a judgement costs is describing the summary; fitting is training's.
    per_example = {
        "seconds_per_example": round((time.perf_counter() - started) / len(examples), 4)
    }
    try:
        report = consistency_head.cross_validate(described) | per_example
        if args.save_head:
            head = consistency_head.train(described, Path(args.data).name, report=report)
            head.save(Path(args.save_head))
            report["saved"] = args.save_head
    except ValueError as error:
        raise CondensaError(str(error)) from error
    return report


def catchup_report(data: str, found: dict[str, Any]) -> str:
    """``eval digest --catchup`` as text."""
    return "\n".join(
        [
            f"catch-ups on {data} ({found['conversations']} conversations, one member each "
            f"chosen at random, seed {found['seed']})",
            f"every reply to the member listed: {found['complete_share']:.1f} % "
            f"({found['replies_to_member']} replies)",
            f"length: {found['catchup_words_mean']:.1f} words on average, from "
            f"{found['window_words_mean']:.1f} words by others since the member left",
        ]
    )


async def run_eval_digest(settings: Settings, args: argparse.Namespace) -> str:
    from bot.factories import build_services
    from services.digest.catchup import catch_up
    from services.evaluation.data import load_conversation_examples
    from services.evaluation.digests import evaluate_catchups, evaluate_digests
    from services.evaluation.progress import progress
    from services.evaluation.rouge import summarize_scores

    examples = load_conversation_examples(Path(args.data), args.limit)
    services = build_services(settings)
    try:
        if services.digests is None:  # pragma: no cover - build_services always makes one
            raise CondensaError("digests are not available")
        if args.catchup:
            shown = progress(examples, "eval digest --catchup", "chat")
            found = await evaluate_catchups(services.digests, shown, catch_up, args.seed)
            return json.dumps(found) if args.json else catchup_report(str(args.data), found)
        runs = await evaluate_digests(services.digests, progress(examples, "eval digest", "chat"))
    finally:
        services.close()
    if args.predictions_out:
        _write_jsonl(Path(args.predictions_out), runs["narrative"].predictions)
    report = {
        "data": str(args.data),
        "conversations": len(examples),
        "refused": runs["narrative"].refused,
        "systems": {
            name: {metric: v.as_dict() for metric, v in summarize_scores(run.scores).items()}
            for name, run in runs.items()
        },
    }
    if args.json:
        return json.dumps(report, indent=2)
    lines = [
        f"digest narrative on {args.data} ({len(examples)} conversations, "
        f"{report['refused']} refused); baselines scored the same way",
        f"{'system':<10} {'metric':<10} {'F1':>6}  95 % interval",
    ]
    for name, run in runs.items():
        for metric, value in summarize_scores(run.scores).items():
            lines.append(
                f"{name:<10} {metric:<10} {value.mean:>6.2f}  [{value.low:.2f}, {value.high:.2f}]"
            )
    return "\n".join(lines)


def _numbers(text: str, kind: type[float] | type[int]) -> tuple[Any, ...]:
    try:
        return tuple(kind(part) for part in text.split(",") if part.strip())
    except ValueError as exc:
        raise BadDataFile(f"not a comma-separated list of numbers: {text!r}") from exc


async def run_adapt(settings: Settings, args: argparse.Namespace) -> str:
    from services.llm.adapt.training import Adaptation, AdaptConfig
    from services.text.language import detect_language

    examples = load_summary_examples(Path(args.data))
    language = args.lang or examples[0].language or detect_language(examples[0].text)
    if args.kind == "extractive":
        return await _adapt_extractive(settings, args, examples, language)
    config = AdaptConfig(
        name=args.name,
        base=args.base or settings.llm_model,
        language=language,
        validation_share=args.validation_share,
        seed=args.seed,
        budget_minutes=args.budget_minutes,
        learning_rates=_numbers(args.learning_rates, float),
        ranks=_numbers(args.ranks, int),
        epochs=_numbers(args.epochs, int),
        stages=args.stages,
        batch_size=args.batch_size,
    )
    adaptation = Adaptation(
        config,
        settings.llm_cache_dir,
        say=lambda line: print(line, flush=True),
        progress=not args.no_progress,
    )
    report = await asyncio.to_thread(adaptation.run, examples)
    return f"saved {adaptation.directory}; use it with --method {report['method']}"


async def _adapt_extractive(
    settings: Settings, args: argparse.Namespace, examples: list[Any], language: str
) -> str:
    from services.summarize.learned.training import ExtractiveAdaptation, markdown

    adaptation = ExtractiveAdaptation(
        args.name,
        settings.llm_cache_dir,
        language,
        folds=args.folds,
        say=lambda line: print(line, flush=True),
    )
    report = await asyncio.to_thread(adaptation.run, examples)
    print(markdown(report))
    return f"saved {adaptation.directory}; use it with --method {report['method']}"


async def run_storage(settings: Settings, args: argparse.Namespace) -> str:
    """``storage new-key`` / ``storage rotate-key``."""
    from bot.factories import open_store
    from services.storage.crypto import (
        KEY_FILE_NAME,
        MasterKey,
        encode_key,
        new_key,
        write_key_file,
    )

    key = new_key()
    if args.storage_command == "new-key":
        return encode_key(key)
    store = await open_store(settings)
    try:
        if settings.storage_key is not None:
            # The operator's secret store holds the key: show the new one before committing,
            # so a crash in between leaves the old key valid.
            print(f"new STORAGE_KEY (store it before the next start): {encode_key(key)}")
            rotated = await store.rotate_master_key(MasterKey(key))
            return f"re-wrapped {rotated} group key(s); set STORAGE_KEY to the new key now"
        path = settings.data_dir / KEY_FILE_NAME
        pending = path.with_suffix(".new")
        pending.unlink(missing_ok=True)
        write_key_file(pending, key)
        rotated = await store.rotate_master_key(MasterKey(key))
        pending.replace(path)
        return f"re-wrapped {rotated} group key(s); the new key is in {path}"
    finally:
        await store.close()
