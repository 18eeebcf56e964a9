"""The command line: ``python -m bot`` / ``condensa`` with no arguments runs the bot; with a
subcommand it works on a file or stdin and prints the result on stdout.

Contract other tools rely on: exit 0 with the result on stdout; a refusal exits 2 with one plain
line on stderr, never a traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys

from pydantic import ValidationError

from bot import tools
from bot.logging_setup import configure_logging
from bot.settings import Settings
from services.core.errors import CondensaError
from services.core.types import (
    Length,
)
from services.storage.crypto import StorageKeyError

logger = logging.getLogger(__name__)
EXIT_REFUSED = 2


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``condensa``."""
    parser = argparse.ArgumentParser(
        prog="condensa",
        description="Condensa: summaries and key phrases of long text. "
        "With no subcommand, runs the Telegram bot (or a local chat when no token is set).",
    )
    sub = parser.add_subparsers(dest="command")
    summarize = sub.add_parser(
        "summarize", help="summarize a document, photo, scan or recording (or - for stdin)"
    )
    summarize.add_argument("input", help="a file (text, PDF, photo, voice note…), or - for stdin")
    summarize.add_argument("--method", help="summary method (default: the configured one)")
    summarize.add_argument("--length", choices=[x.value for x in Length], default="medium")
    summarize.add_argument("--sentences", type=int, help="exact number of sentences")
    summarize.add_argument("--lang", help="language code of the text (default: detect)")
    keywords = sub.add_parser("keywords", help="key phrases of a text file (or - for stdin)")
    keywords.add_argument("input", help="a text file, or - for stdin")
    keywords.add_argument("--top", type=int, default=10, help="how many key phrases")
    keywords.add_argument("--lang", help="language code of the text (default: detect)")
    transcribe = sub.add_parser("transcribe", help="the transcript of a voice note or audio file")
    transcribe.add_argument("input", help="an audio or video file (OGG, MP3, M4A, WAV…), or -")
    transcribe.add_argument("--lang", help="spoken language code (default: detect)")
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
    eval_digest.add_argument(
        "--catchup",
        action="store_true",
        help="score catch-ups instead: a member chosen at random per conversation; how often "
        "every reply to them is listed, and the length",
    )
    eval_digest.add_argument("--seed", type=int, default=0, help="--catchup: member choice")
    eval_grounding = eval_sub.add_parser(
        "grounding",
        help="balanced accuracy of a consistency checker on document/summary/label JSONL",
    )
    eval_grounding.add_argument(
        "--data", required=True, help='JSONL with "document", "summary", "label" (1 = consistent)'
    )
    eval_grounding.add_argument(
        "--checker",
        choices=("learned", "offline", "llm"),
        default="learned",
        help="learned: the bot's check (alignment rules and the trained head); offline: the "
        "rules alone; llm: the model judges each sentence (the model server with "
        "LLM_BASE_URL, else the local model)",
    )
    eval_grounding.add_argument(
        "--cross-validate",
        action="store_true",
        help="learned: judge each domain with a head trained on the other domains of --data",
    )
    eval_grounding.add_argument(
        "--save-head", help="learned: train a head on all of --data and write it here (JSON)"
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
        "summarize": tools.run_summarize,
        "keywords": tools.run_keywords,
        "transcribe": tools.run_transcribe,
        "digest": tools.run_digest,
        "eval": tools.run_eval_summary,
        "generate": tools.run_generate,
        "ask": tools.run_generate,
        "adapt": tools.run_adapt,
        "storage": tools.run_storage,
    }
    runner = runners[args.command]
    if args.command == "eval" and args.eval_command == "keywords":
        runner = tools.run_eval_keywords
    if args.command == "eval" and args.eval_command == "digest":
        runner = tools.run_eval_digest
    if args.command == "eval" and args.eval_command == "grounding":
        runner = tools.run_eval_grounding
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
