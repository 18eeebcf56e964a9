"""Evaluation: data loading with line numbers, ROUGE per language, bootstrap, the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bot.cli import main
from services.evaluation.data import BadDataFile, load_summary_examples
from services.evaluation.rouge import SpanishTokenizer, bootstrap, make_scorer, score_pair
from tests.conftest import ENGLISH_ARTICLE


def write(tmp_path: Path, lines: list[str]) -> Path:
    path = tmp_path / "data.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        (['{"text": "a", "summary": "b"}', "not json"], "data.jsonl:2: not valid JSON"),
        (['{"text": "a"}'], "data.jsonl:1: missing or empty field 'summary'"),
        (['{"text": "", "summary": "b"}'], "data.jsonl:1: missing or empty field 'text'"),
        (["[1, 2]"], "data.jsonl:1: expected a JSON object"),
        ([""], "no examples"),
    ],
)
def test_bad_data_files_name_the_line(tmp_path: Path, lines: list[str], message: str) -> None:
    with pytest.raises(BadDataFile, match=message):
        load_summary_examples(write(tmp_path, lines))


def test_rouge_known_values() -> None:
    scorer = make_scorer("en")
    assert score_pair(scorer, "The cat sat.", "The cat sat.", "en")["rouge1"] == pytest.approx(100)
    scores = score_pair(scorer, "the cat ran", "the cat sat", "en")
    assert scores["rouge1"] == pytest.approx(200 / 3)
    assert scores["rouge2"] == pytest.approx(50)


def test_spanish_tokenizer_keeps_accents_and_stems() -> None:
    assert SpanishTokenizer().tokenize("España celebró las elecciones") == [
        "españ",
        "celebr",
        "las",
        "eleccion",
    ]
    scorer = make_scorer("es")
    assert (
        score_pair(scorer, "Las elecciones en España.", "Elección en España.", "es")["rouge1"] > 50
    )


def test_bootstrap_interval_contains_the_mean_and_is_deterministic() -> None:
    values = [float(v) for v in range(100)]
    first, second = bootstrap(values), bootstrap(values)
    assert first == second
    assert first.mean == pytest.approx(49.5)
    assert first.low < first.mean < first.high
    assert first.high - first.low < 15


def test_eval_summary_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    sentences = ENGLISH_ARTICLE.split(". ")
    records = [
        {"id": f"d{i}", "text": ENGLISH_ARTICLE, "summary": ". ".join(sentences[:3]) + "."}
        for i in range(3)
    ]
    data = write(tmp_path, [json.dumps(r) for r in records])
    predictions = tmp_path / "predictions.jsonl"
    code = main(
        [
            "eval",
            "summary",
            "--data",
            str(data),
            "--method",
            "lead",
            "--json",
            "--predictions-out",
            str(predictions),
        ]
    )
    assert code == 0
    report = json.loads(capsys.readouterr().out)
    assert report["documents"] == 3 and report["method"] == "lead"
    assert report["rouge"]["rouge1"]["mean"] == pytest.approx(100)
    assert report["faithfulness"]["mean"] == pytest.approx(100), (
        "extracted sentences are supported"
    )
    rows = [json.loads(line) for line in predictions.read_text().splitlines()]
    assert [r["id"] for r in rows] == ["d0", "d1", "d2"]
    assert rows[0]["summary"].startswith("The city council approved")


def test_eval_summary_refuses_a_bad_file_with_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = write(tmp_path, ['{"text": "x", "summary": "y"}', "{oops"])
    assert main(["eval", "summary", "--data", str(data)]) == 2
    err = capsys.readouterr().err
    assert "data.jsonl:2" in err and err.count("\n") == 1


def test_keyphrase_scores_on_a_hand_made_example() -> None:
    from services.evaluation.keyphrases import PhraseNormalizer, keyphrase_scores, present_gold

    normalize = PhraseNormalizer("en")
    gold = ["neural networks", "learning", "support vector machine"]
    predicted = ["Neural Network", "neural networks", "deep learning", "learning", "svm", "x"]
    # "Neural Network" and "neural networks" are one phrase after stemming: counted once.
    precision, recall, f1 = keyphrase_scores(predicted, gold, 5, normalize)
    assert (precision, recall) == (pytest.approx(2 / 5), pytest.approx(2 / 3))
    assert f1 == pytest.approx(2 * 0.4 * (2 / 3) / (0.4 + 2 / 3))
    assert keyphrase_scores(predicted, gold, 1, normalize)[:2] == (1.0, pytest.approx(1 / 3))
    text = "Neural networks and learning methods."
    assert present_gold(gold, text, normalize) == ["neural networks", "learning"]
    spanish = PhraseNormalizer("es")
    assert spanish("Redes Neuronales") == spanish("red neuronal")


def test_eval_keywords_command_reads_and_reports(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    records = [
        {
            "id": "k1",
            "lang": "en",
            "text": ENGLISH_ARTICLE,
            "keyphrases": ["tram lines", "public transport", "parking tax"],
        }
    ]
    data = write(tmp_path, [json.dumps(r) for r in records])
    out = tmp_path / "kp.jsonl"
    assert (
        main(["eval", "keywords", "--data", str(data), "--json", "--predictions-out", str(out)])
        == 0
    )
    report = json.loads(capsys.readouterr().out)
    assert report["documents"] == 1
    assert set(report["scores"]) == {"f1@5", "f1@10", "present_f1@5", "present_f1@10"}
    row = json.loads(out.read_text())
    assert row["id"] == "k1" and len(row["keyphrases"]) == 10
    bad = write(tmp_path, ['{"text": "x", "keyphrases": []}'])
    assert main(["eval", "keywords", "--data", str(bad)]) == 2
    assert "data.jsonl:1: 'keyphrases' must be a non-empty list" in capsys.readouterr().err
