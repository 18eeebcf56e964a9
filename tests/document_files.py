"""Small real documents generated on the spot (never committed), benign and hostile."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

PARAGRAPHS = [
    "The city council approved a plan to expand the tram network on Monday.",
    "The plan adds three tram lines and doubles the number of night buses.",
    "Council members said the expansion would cut traffic and pollution in the centre.",
    "The project will cost 450 million euros over the next six years.",
]


def pdf_with_text(pages: int = 3) -> bytes:
    """A multi-page PDF with a text layer (fpdf2)."""
    from fpdf import FPDF

    pdf = FPDF()
    pdf.set_font("helvetica", size=12)
    for number in range(pages):
        pdf.add_page()
        pdf.multi_cell(0, 8, f"Page {number + 1}. " + " ".join(PARAGRAPHS))
    return bytes(pdf.output())


def encrypted_pdf() -> bytes:
    """A PDF that needs a password."""
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(pdf_with_text(1))))
    writer.encrypt(user_password="secret", owner_password="owner")
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def scanned_pdf() -> bytes:
    """A PDF whose pages carry only drawings, like a scan without OCR."""
    from fpdf import FPDF

    pdf = FPDF()
    for _ in range(2):
        pdf.add_page()
        pdf.rect(20, 20, 150, 200, style="F")
    return bytes(pdf.output())


def docx_with_table() -> bytes:
    """A DOCX with a heading, paragraphs and a table (python-docx)."""
    import docx

    document = docx.Document()
    document.add_heading("Tram plan", level=1)
    for paragraph in PARAGRAPHS[:2]:
        document.add_paragraph(paragraph)
    table = document.add_table(rows=2, cols=2)
    table.cell(0, 0).text, table.cell(0, 1).text = "Line", "Cost"
    table.cell(1, 0).text, table.cell(1, 1).text = "T1", "150 million"
    for paragraph in PARAGRAPHS[2:]:
        document.add_paragraph(paragraph)
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


def odt_document() -> bytes:
    """An ODT with a heading and paragraphs (odfpy)."""
    from odf import text
    from odf.opendocument import OpenDocumentText

    document = OpenDocumentText()
    document.text.addElement(text.H(outlinelevel=1, text="Tram plan"))
    for paragraph in PARAGRAPHS:
        document.text.addElement(text.P(text=paragraph))
    out = io.BytesIO()
    document.write(out)
    return out.getvalue()


def html_with_navigation() -> bytes:
    """An article page with menus, cookie banner and footer around the story."""
    story = "".join(f"<p>{p}</p>" for p in PARAGRAPHS)
    return (
        "<!DOCTYPE html><html><head><title>Tram plan</title></head><body>"
        "<nav><ul><li><a href='/'>Home</a></li><li><a href='/sport'>Sport</a></li>"
        "<li><a href='/weather'>Weather</a></li></ul></nav>"
        "<div class='cookie'>We use cookies. Accept all cookies to continue.</div>"
        f"<main><article><h1>Council approves tram plan</h1>{story}</article></main>"
        "<footer>Copyright 2026 Example News. Privacy policy. Terms of use.</footer>"
        "</body></html>"
    ).encode()


def latin1_text() -> bytes:
    """Spanish text in Latin-1."""
    return (
        "El ayuntamiento aprobó el plan. Costará 450 millones de euros. "
        "Los vecinos opinarán en una consulta pública."
    ).encode("latin-1")


def rtf_document() -> bytes:
    return (
        r"{\rtf1\ansi{\fonttbl\f0\fswiss Helvetica;}\f0\pard "
        + r" \par ".join(PARAGRAPHS)
        + r"\par}"
    ).encode()


def epub_document(tmp_path: Path) -> bytes:
    """A two-chapter EPUB (ebooklib writes to a file; it is read back into memory)."""
    from ebooklib import epub

    book = epub.EpubBook()
    book.set_identifier("condensa-test")
    book.set_title("Tram plan")
    book.set_language("en")
    chapters = []
    for number, pair in enumerate((PARAGRAPHS[:2], PARAGRAPHS[2:]), start=1):
        chapter = epub.EpubHtml(title=f"Chapter {number}", file_name=f"c{number}.xhtml")
        chapter.content = f"<h1>Chapter {number}</h1>" + "".join(f"<p>{p}</p>" for p in pair)
        book.add_item(chapter)
        chapters.append(chapter)
    book.toc = chapters
    book.spine = chapters
    book.add_item(epub.EpubNcx())
    book.add_item(epub.EpubNav())
    path = tmp_path / "book.epub"
    epub.write_epub(str(path), book)
    return path.read_bytes()


def docx_zip_bomb() -> bytes:
    """A few hundred KB that claim to expand to 300 MB (a DOCX-shaped zip bomb)."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        with archive.open("word/document.xml", "w", force_zip64=True) as member:
            chunk = b" " * (1024 * 1024)
            for _ in range(300):
                member.write(chunk)
    return out.getvalue()


def pdf_with_cyclic_page_tree() -> bytes:
    """A tiny PDF whose page tree points back at itself (an endless page tree)."""
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [2 0 R 3 0 R] /Count 1000000 >>",
        b"<< /Type /Pages /Parent 2 0 R /Kids [2 0 R 3 0 R] /Count 1000000 >>",
    ]
    return _assemble_pdf(objects)


def pdf_deeply_nested() -> bytes:
    """A PDF whose page content nests arrays 200,000 deep."""
    depth = 200_000
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Foo "
        + b"[" * depth
        + b"]" * depth
        + b" >>",
    ]
    return _assemble_pdf(objects)


def _assemble_pdf(objects: list[bytes]) -> bytes:
    out = io.BytesIO()
    out.write(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(out.tell())
        out.write(b"%d 0 obj\n" % number + body + b"\nendobj\n")
    xref = out.tell()
    out.write(b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1))
    for offset in offsets:
        out.write(b"%010d 00000 n \n" % offset)
    out.write(
        b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    )
    return out.getvalue()
