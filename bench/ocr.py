"""Character error rate and speed of OCR (Tesseract in the confined child) on rendered pages.

Pages: the opening ~120 words of news articles in the shared evaluation sets (CNN/DailyMail in
English, BASSE in Spanish), wrapped and drawn by Pillow in DejaVu Sans or Serif, as a PNG
screenshot each and as one image-only PDF (a scan) per language. Every page goes through the
bot's own path (``SandboxedDocumentReader``: a confined child per file, Tesseract with the
chat's language, or eng+spa when it is unknown), so the seconds are as deployed, child start
included. CER is over characters with whitespace runs made single spaces (jiwer).

    .venv/bin/python bench/ocr.py [--pages 10]

Prints a table and writes bench/results/ocr.json.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import statistics
import sys
import textwrap
import time
from datetime import date
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.transcription import EVAL, SETS, cpu_model, detokenized  # noqa: E402
from services.ingest.documents import ReaderLimits, SandboxedDocumentReader  # noqa: E402
from tests import media_samples as samples  # noqa: E402

FONTS = (
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/truetype/dejavu/DejaVuSerif.ttf",
)


def page_texts(language: str, count: int) -> list[str]:
    texts = []
    with (EVAL / SETS[language]).open(encoding="utf-8") as rows:
        for line in rows:
            words = detokenized(json.loads(line)["text"]).split()[:120]
            texts.append(textwrap.fill(" ".join(words), 70))
            if len(texts) == count:
                break
    return texts


def render(text: str, font_path: str) -> bytes:
    from PIL import Image, ImageDraw, ImageFont

    font = ImageFont.truetype(font_path, 26)
    lines = text.count("\n") + 1
    image = Image.new("L", (1400, 100 + 40 * lines), 255)
    ImageDraw.Draw(image).multiline_text((50, 50), text, fill=0, font=font, spacing=10)
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pages", type=int, default=10, help="pages per language")
    args = parser.parse_args()
    samples.need("tesseract", "pdftoppm")
    reader = SandboxedDocumentReader(ReaderLimits(max_ocr_pages=args.pages))
    rows = []
    for language in ("en", "es"):
        texts = page_texts(language, args.pages)
        pages = [render(text, FONTS[i % 2]) for i, text in enumerate(texts)]
        for hint in (language, None):
            errors, seconds = [], []
            for text, png in zip(texts, pages, strict=True):
                started = time.perf_counter()
                document = await reader.read(png, "page.png", hint)
                seconds.append(time.perf_counter() - started)
                errors.append(samples.cer(text, document.text))
            rows.append(
                {
                    "language": language,
                    "tesseract": hint or "eng+spa",
                    "input": "PNG page",
                    "pages": len(pages),
                    "cer_mean": round(statistics.fmean(errors), 4),
                    "seconds_per_page_median": round(statistics.median(seconds), 2),
                    "seconds_per_page_max": round(max(seconds), 2),
                }
            )
        scan = samples.image_only_pdf(*pages)
        started = time.perf_counter()
        document = await reader.read(scan, "scan.pdf", language)
        took = time.perf_counter() - started
        rows.append(
            {
                "language": language,
                "tesseract": language,
                "input": f"{len(pages)}-page scanned PDF",
                "pages": document.pages,
                "cer_mean": round(samples.cer("\n\n".join(texts), document.text), 4),
                "seconds_per_page_median": round(took / len(pages), 2),
                "seconds_per_page_max": None,
            }
        )
    report = {"date": date.today().isoformat(), "cpu": cpu_model(), "rows": rows}
    print(f"{report['date']} · {report['cpu']}")
    print(f"{'lang':<5}{'tesseract':<10}{'input':<24}{'pages':>6}{'CER':>8}{'s/page':>8}")
    for row in rows:
        print(
            f"{row['language']:<5}{row['tesseract']:<10}{row['input']:<24}{row['pages']:>6}"
            f"{row['cer_mean']:>8.3f}{row['seconds_per_page_median']:>8.2f}"
        )
    out = REPO / "bench" / "results" / "ocr.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    asyncio.run(main())
