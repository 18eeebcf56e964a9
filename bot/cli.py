"""The command line: ``python -m bot`` / ``condensa`` with no arguments runs the bot; with a
subcommand it works on a file or stdin and prints the result on stdout.

Contract other tools rely on: exit 0 with the result on stdout; a refusal exits 2 with one plain
line on stderr, never a traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from bot.logging_setup import configure_logging
from bot.settings import Settings
from services.core.errors import CondensaError
from services.core.types import (
    ChatDigest,
    ChatMessage,
    DigestSentence,
    DocumentText,
    Length,
    SummaryOptions,
)
from services.evaluation.data import BadDataFile, load_summary_examples
from services.ingest.documents import read_text_document
from services.storage.crypto import StorageKeyError

logger = logging.getLogger(__name__)
EXIT_REFUSED = 2


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


async def _read_document(settings: Settings, source: str) -> DocumentText:
    """Any supported document, parsed in the sandbox; refused when over the file limit."""
    from bot.factories import build_document_reader

    data, name = _read_bytes(source)
    if len(data) > settings.max_file_bytes:
        raise CondensaError(
            f"{name} is {len(data):,} bytes; the limit is {settings.max_file_bytes:,} bytes"
        )
    return await build_document_reader(settings).read(data, name)


def _partial_line(document: DocumentText) -> str:
    """The first line of a partial answer, or empty (the bot's English sentence)."""
    from handlers.render import partial_note

    return partial_note(document, "en")


async def _summarize(settings: Settings, args: argparse.Namespace) -> str:
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


async def _keywords(settings: Settings, args: argparse.Namespace) -> str:
    from bot.factories import build_services

    document = await _read_document(settings, args.input)
    services = build_services(settings)
    try:
        text = document.text
        result = await services.keywords.extract(text, top_n=args.top, language=args.lang or "")
    finally:
        services.close()
    return "\n".join(f"{item.phrase}\t{item.score:.4f}" for item in result.keyphrases)


async def _generate(settings: Settings, args: argparse.Namespace) -> str:
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


async def _eval_keywords(settings: Settings, args: argparse.Namespace) -> str:
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


async def _eval_summary(settings: Settings, args: argparse.Namespace) -> str:
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


async def _digest(settings: Settings, args: argparse.Namespace) -> str:
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


async def _eval_grounding(settings: Settings, args: argparse.Namespace) -> str:
    from services.evaluation.faithfulness import evaluate_checker, load_faithfulness_examples
    from services.evaluation.progress import progress
    from services.grounding.checkers import AlignmentChecker, ConsistencyChecker, LLMJudge

    examples = load_faithfulness_examples(Path(args.data), args.limit)
    checker: ConsistencyChecker = AlignmentChecker()
    if args.checker == "llm":
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


async def _eval_digest(settings: Settings, args: argparse.Namespace) -> str:
    from bot.factories import build_services
    from services.evaluation.data import load_conversation_examples
    from services.evaluation.digests import evaluate_digests
    from services.evaluation.progress import progress
    from services.evaluation.rouge import summarize_scores

    examples = load_conversation_examples(Path(args.data), args.limit)
    services = build_services(settings)
    try:
        if services.digests is None:  # pragma: no cover - build_services always makes one
            raise CondensaError("digests are not available")
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


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``condensa``."""
    parser = argparse.ArgumentParser(
        prog="condensa",
        description="Condensa: summaries and key phrases of long text. "
        "With no subcommand, runs the Telegram bot (or a local chat when no token is set).",
    )
    sub = parser.add_subparsers(dest="command")
    summarize = sub.add_parser("summarize", help="summarize a text file (or - for stdin)")
    summarize.add_argument("input", help="a text file, or - for stdin")
    summarize.add_argument("--method", help="summary method (default: the configured one)")
    summarize.add_argument("--length", choices=[x.value for x in Length], default="medium")
    summarize.add_argument("--sentences", type=int, help="exact number of sentences")
    summarize.add_argument("--lang", help="language code of the text (default: detect)")
    keywords = sub.add_parser("keywords", help="key phrases of a text file (or - for stdin)")
    keywords.add_argument("input", help="a text file, or - for stdin")
    keywords.add_argument("--top", type=int, default=10, help="how many key phrases")
    keywords.add_argument("--lang", help="language code of the text (default: detect)")
    generate = sub.add_parser("generate", help="continue a text with the local LLM (streamed)")
    generate.add_argument("prompt", help="the beginning of the text")
    generate.add_argument("--max-tokens", type=int, help="new tokens at most")
    ask = sub.add_parser("ask", help="ask the local instruct LLM (streamed)")
    ask.add_argument("prompt", help="the question or instruction")
    ask.add_argument("--context", help="a text file (or -) the question is about")
    ask.add_argument("--max-tokens", type=int, help="new tokens at most")
    digest = sub.add_parser("digest", help="digest a conversation (JSONL or Telegram export)")
    digest.add_argument("input", help='JSONL of {"author","text"[,"date"]}, an export, or -')
    digest.add_argument("--lang", help="language code of the messages (default: detect)")
    sub.add_parser("console", help="chat with the bot in this terminal (no token needed)")
    sub.add_parser("ingress", help="with REDIS_URL: take updates and queue them (no models)")
    sub.add_parser("worker", help="with REDIS_URL: handle queued updates (run one or more)")
    evaluate = sub.add_parser("eval", help="measure quality on a JSONL reference set")
    eval_sub = evaluate.add_subparsers(dest="eval_command", required=True)
    eval_summary = eval_sub.add_parser(
        "summary",
        help='ROUGE-1/2/Lsum F1 with bootstrap 95 %% intervals on {"text","summary"} JSONL',
    )
    eval_summary.add_argument(
        "--data", required=True, nargs="+", help="JSONL with text and summary fields (one or more)"
    )
    eval_summary.add_argument("--method", help="summary method (default: the configured one)")
    eval_summary.add_argument(
        "--methods",
        help="compare these methods (comma-separated; 'longest' is the Longest-k baseline) on "
        "every --data file, as one table per ROUGE type, e.g. lead,longest,embedding,"
        "extractive:auto",
    )
    eval_summary.add_argument("--limit", type=int, help="only the first N documents")
    eval_summary.add_argument(
        "--sentences",
        type=int,
        default=3,
        help="sentences per extractive summary (default 3, as Lead-3)",
    )
    eval_summary.add_argument("--json", action="store_true", help="print a JSON report")
    eval_summary.add_argument("--predictions-out", help='write {"id","summary"} JSONL here')
    eval_digest = eval_sub.add_parser(
        "digest", help="ROUGE of the digest narrative against reference conversation summaries"
    )
    eval_digest.add_argument(
        "--data", required=True, help='JSONL with "messages" [{"author","text"}] and "summary"'
    )
    eval_digest.add_argument("--limit", type=int, help="only the first N conversations")
    eval_digest.add_argument("--json", action="store_true", help="print a JSON report")
    eval_digest.add_argument("--predictions-out", help='write {"id","prediction"} JSONL here')
    eval_grounding = eval_sub.add_parser(
        "grounding",
        help="balanced accuracy of a consistency checker on document/summary/label JSONL",
    )
    eval_grounding.add_argument(
        "--data", required=True, help='JSONL with "document", "summary", "label" (1 = consistent)'
    )
    eval_grounding.add_argument(
        "--checker",
        choices=("offline", "llm"),
        default="offline",
        help="offline: the bot's alignment check; llm: the model judges each sentence "
        "(the model server with LLM_BASE_URL, else the local model)",
    )
    eval_grounding.add_argument("--limit", type=int, help="only the first N rows")
    eval_grounding.add_argument("--json", action="store_true", help="print a JSON report")
    eval_keywords = eval_sub.add_parser(
        "keywords", help='F1@5/F1@10 (and present-only) on {"text","keyphrases"} JSONL'
    )
    eval_keywords.add_argument("--data", required=True, help="JSONL with text and keyphrases")
    eval_keywords.add_argument("--limit", type=int, help="only the first N documents")
    eval_keywords.add_argument("--top", type=int, default=10, help="keyphrases per document")
    eval_keywords.add_argument("--json", action="store_true", help="print a JSON report")
    eval_keywords.add_argument("--predictions-out", help='write {"id","keyphrases"} JSONL here')
    adapt = sub.add_parser(
        "adapt",
        help="adapt the LLM summarizer to your own JSONL of text/summary pairs (LoRA, CPU)",
    )
    adapt.add_argument(
        "--kind",
        choices=("llm", "extractive"),
        default="llm",
        help="llm: LoRA on the LLM (llm:NAME); extractive: a learned sentence scorer "
        "(extractive:NAME, minutes on a CPU)",
    )
    adapt.add_argument("--data", required=True, help='JSONL with "text" and "summary" fields')
    adapt.add_argument("--folds", type=int, default=5, help="extractive: k of the k-fold report")
    adapt.add_argument("--name", required=True, help="name of the result (method llm:NAME)")
    adapt.add_argument("--base", help="base causal LM: path or hub id (default: LLM_MODEL)")
    adapt.add_argument("--lang", default="", help="language of the data (default: detect)")
    adapt.add_argument("--budget-minutes", type=float, default=30.0, help="time for the search")
    adapt.add_argument("--validation-share", type=float, default=0.2)
    adapt.add_argument("--seed", type=int, default=0)
    adapt.add_argument(
        "--learning-rates", default="3e-4,1e-3", help="comma-separated learning rates to try"
    )
    adapt.add_argument("--ranks", default="8", help="comma-separated LoRA ranks to try")
    adapt.add_argument("--epochs", default="1", help="comma-separated epochs per stage to try")
    adapt.add_argument("--stages", type=int, default=2, help="gradual-unfreezing stages")
    adapt.add_argument("--batch-size", type=int, default=4)
    adapt.add_argument("--no-progress", action="store_true", help="no progress bars")
    storage = sub.add_parser("storage", help="the encryption key of stored group messages")
    storage_sub = storage.add_subparsers(dest="storage_command", required=True)
    storage_sub.add_parser("new-key", help="print a fresh key for STORAGE_KEY")
    storage_sub.add_parser(
        "rotate-key",
        help="re-wrap every group key under a new master key (messages are not re-encrypted)",
    )
    return parser


def _numbers(text: str, kind: type[float] | type[int]) -> tuple[Any, ...]:
    try:
        return tuple(kind(part) for part in text.split(",") if part.strip())
    except ValueError as exc:
        raise BadDataFile(f"not a comma-separated list of numbers: {text!r}") from exc


async def _adapt(settings: Settings, args: argparse.Namespace) -> str:
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


async def _check_store(settings: Settings) -> None:
    """Open and close the store: a wrong or missing storage key fails here, before any
    network traffic, as one clear line."""
    from bot.factories import open_store

    await (await open_store(settings)).close()


def _run_bot(settings: Settings, role: str | None = None) -> None:
    from bot.run import TaskGivenUp

    try:
        _serve(settings, role)
    except TaskGivenUp as error:
        logger.critical("exiting: %s", error)
        _exit_now(1)


def _serve(settings: Settings, role: str | None) -> None:
    from bot.run import run_combined, run_ingress, run_polling, run_webhook, run_worker

    if role is not None and (settings.redis_url is None or settings.telegram_bot_token is None):
        raise CondensaError(f"`{role}` needs REDIS_URL and TELEGRAM_BOT_TOKEN")
    if role == "ingress":
        asyncio.run(run_ingress(settings))
        _exit_now()
    asyncio.run(_check_store(settings))

    if settings.telegram_bot_token is None:
        from playground.local import run_playground

        asyncio.run(run_playground(settings))
    elif role == "worker":
        asyncio.run(run_worker(settings))
        _exit_now()
    elif settings.redis_url is not None:
        asyncio.run(run_combined(settings))
        _exit_now()
    elif settings.webhook_url:
        asyncio.run(run_webhook(settings))
        _exit_now()
    else:
        asyncio.run(run_polling(settings))
        _exit_now()


def _exit_now(code: int = 0) -> None:
    """Exit without joining model threads: one may be loading a model for minutes, and every
    unfinished update is kept in the inbox for the next start."""
    import os

    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


async def _storage(settings: Settings, args: argparse.Namespace) -> str:
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


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m bot`` and the ``condensa`` console script."""
    args = build_parser().parse_args(argv)
    try:
        settings = Settings()
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]).upper() or "settings"
        print(f"condensa: invalid configuration: {where}: {first['msg']}", file=sys.stderr)
        return EXIT_REFUSED
    secrets = [
        s.get_secret_value()
        for s in (
            settings.telegram_bot_token,
            settings.webhook_secret,
            settings.storage_key,
            settings.llm_api_key,
            settings.database_url,
            settings.redis_url,
        )
        if s
    ]
    serving = args.command in (None, "ingress", "worker")
    configure_logging(settings.log_level if serving else "ERROR", secrets)
    if serving:
        try:
            _run_bot(settings, args.command)
        except StorageKeyError as error:
            print(f"condensa: cannot open the stored messages: {error}", file=sys.stderr)
            return EXIT_REFUSED
        except CondensaError as error:
            print(f"condensa: {error}", file=sys.stderr)
            return EXIT_REFUSED
        return 0
    if args.command == "console":
        from playground.local import run_console

        asyncio.run(run_console(settings))
        return 0
    runners = {
        "summarize": _summarize,
        "keywords": _keywords,
        "digest": _digest,
        "eval": _eval_summary,
        "generate": _generate,
        "ask": _generate,
        "adapt": _adapt,
        "storage": _storage,
    }
    runner = runners[args.command]
    if args.command == "eval" and args.eval_command == "keywords":
        runner = _eval_keywords
    if args.command == "eval" and args.eval_command == "digest":
        runner = _eval_digest
    if args.command == "eval" and args.eval_command == "grounding":
        runner = _eval_grounding
    try:
        output = asyncio.run(runner(settings, args))
    except (CondensaError, StorageKeyError) as error:
        print(f"condensa: {error}", file=sys.stderr)
        return EXIT_REFUSED
    if output:
        print(output)
    elif args.command in ("generate", "ask"):
        print()
    return 0
