"""`estm demo --fast`: the whole mission on the scores corpus, its report, its reuse on a rerun, and the commands it enables."""

import json
import re

import numpy as np
import pandas as pd
import pytest

from estm_core import audio, model_file, store
from estm_core.demo import MODELS


def test_the_report_shows_every_figure_and_links_existing_files(demo_store):
    html = (demo_store / "report.html").read_text()
    links = re.findall(r'src="([^"]+)"', html)
    # the confusion matrix, the transfer, the codebook, the generated clips, and every model's curves
    assert sum(link.endswith(".png") for link in links) == 4 + len(MODELS)
    # the transfer example (content, reference, the cue method's and ESTM-2's outputs, target), a clip per quadrant
    assert sum(link.endswith(".wav") for link in links) == 5 + 4
    for link in links:
        assert (demo_store / link).is_file(), link
    markdown = (demo_store / "report.md").read_text()
    for link in re.findall(r"\]\(([^)]+)\)", markdown):
        assert (demo_store / link).is_file(), link
    for name in MODELS:
        assert name in html and name in markdown
    assert "paper MSE_C" in html and "0.14-0.36" in html  # the transfer table sits beside the paper's numbers
    assert "the scores corpus" in html and "share in major" in html and "brightness (Hz)" in html
    # captions say what was chosen: the example pair's roles as played, the number of files in the classify table
    done = json.loads((demo_store / "demo.json").read_text())["done"]
    roles = [role for role in done["judged"]["example"] if role != "figure"]
    assert re.search(r"One held-out pair \([^)]+\): " + re.escape(", ".join(roles)) + "</figcaption>", html)
    shown, held_out = min(8, len(done["classified"])), len(done["classified"])
    assert (f"on {shown} of the {held_out} held-out files" if shown < held_out else
            f"on the {held_out} held-out files") in markdown


def test_a_report_renders_each_block_in_html_and_markdown(tmp_path):
    from estm_core.report import write_report

    (tmp_path / "media").mkdir()
    figure = tmp_path / "media" / "a.png"
    figure.write_bytes(b"png")
    document = [("h1", "Title"), ("p", "plain **bold** `code` <tag>"),
                ("table", pd.DataFrame({"name": ["x"], "value": [0.123456], "big": [1234.5], "none": [float("nan")]})),
                ("img", figure, "a <caption>"), ("audio", [("clip", tmp_path / "media" / "b.wav")])]
    html, markdown = write_report(document, tmp_path / "report", title="t")
    assert (html.name, markdown.name) == ("report.html", "report.md")
    text = markdown.read_text()
    assert "# Title" in text and "| name | value | big | none |" in text and "| x | 0.123 | 1234 |  |" in text
    assert "![a <caption>](media/a.png)" in text and "[clip](media/b.wav)" in text
    page = html.read_text()
    assert "<b>bold</b> <code>code</code> &lt;tag&gt;" in page and 'src="media/a.png"' in page
    assert "<figcaption>a &lt;caption&gt;</figcaption>" in page and "<td>0.123</td><td>1234</td><td></td>" in page


def test_every_model_is_in_the_store_and_evaluated(demo_store):
    for name, (family, _) in MODELS.items():
        assert model_file.read_info(store.find_model(family, name)).family == family
    state = json.loads((demo_store / "demo.json").read_text())["done"]
    for summary in state["transfer"].values():
        assert np.isfinite([summary["mse_c"], summary["pea"], summary["cd_x1e5"], summary["lsd_target_db"]]).all()
        assert summary["judge"] == "demo-judge" and summary["style_labeller"] == "demo-mer"
    judged = state["judged"]  # both methods beside the baselines and the ceiling, with both judges
    systems = judged["corpora"]["development"]["systems"]
    assert list(systems) == ["copy-content", "copy-reference", "cue method", "demo-estm2", "target"]
    assert judged["judges"]["mer"] == "demo-judge" and judged["style_labellers"] == ["demo-mer"]
    assert systems["target"]["mel_distance_db"] == 0 and set(systems["target"]["judges"]) == {"mer", "cue_judge"}
    generation = state["generation"]  # the three WaveNets beside the training audio, by both judges
    assert list(generation["systems"]) == ["training audio", "demo-wavenet-none", "demo-wavenet-label",
                                           "demo-wavenet"]
    assert [generation["systems"][name]["asked_by"] for name in ("demo-wavenet-none", "demo-wavenet-label",
                                                                "demo-wavenet")] == ["nothing", "label", "curves"]
    assert generation["judge"] == "demo-judge" and generation["labels"] == ["Q1", "Q2", "Q3", "Q4"]
    for figures in generation["systems"].values():
        assert 0 <= figures["overall"]["cue_judge"]["accuracy"]["share"] <= 1
        assert figures["overall"]["judge"]["accuracy"]["items"] == 4 * generation["per_label"]
    for result in state["recognition"].values():
        assert 0 <= result["accuracy"] <= 1 and result["count"] > 0
    assert len(state["classified"]) == state["segments"]["test"]  # one 10.08 s segment per held-out file


def test_a_rerun_reuses_every_stage(demo_store, estm):
    models = sorted(store.models_dir().rglob("demo-*.safetensors"))
    before = {path: path.stat().st_mtime_ns for path in models}
    stages = json.loads((demo_store / "demo.json").read_text())["seconds"]
    result = estm("demo", "--fast", "-o", demo_store, "--json", "--quiet")
    assert result.code == 0, result.err
    summary = json.loads(result.out)
    assert summary["report"] == str(demo_store / "report.html") and summary["plan"] == "fast"
    assert {path: path.stat().st_mtime_ns for path in models} == before
    assert json.loads((demo_store / "demo.json").read_text())["seconds"] == stages


def test_the_commands_a_user_tries_next_need_no_options(demo_store, estm, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    pairs = pd.read_csv(demo_store / "corpus" / "pairs.csv")
    content, rate = audio.load(demo_store / "corpus" / pairs["Q3"][0])
    emotion, _ = audio.load(demo_store / "corpus" / pairs["Q1"][1])
    audio.save("content.wav", content, rate)
    audio.save("emotion.wav", emotion, rate)
    audio.save("song.mp3", emotion, rate)

    result = estm("transfer", "content.wav", "emotion.wav", "-o", "out.wav", "--json", "-q")  # the cue method
    assert result.code == 0, result.err
    tempo = json.loads(result.out)["moves"]["tempo_ratio"]
    assert audio.probe("out.wav").duration == pytest.approx(len(content) / rate / tempo, abs=0.01)
    result = estm("transfer", "content.wav", "emotion.wav", "-o", "learned.wav", "--model", "demo-estm2")
    assert result.code == 0, result.err
    assert audio.probe("learned.wav").duration == pytest.approx(len(content) / rate, abs=0.01)
    result = estm("classify", "song.mp3", "--json")
    assert result.code == 0, result.err
    assert json.loads(result.out.splitlines()[0])["mer"] in ("Q1", "Q2", "Q3", "Q4")
    result = estm("generate", "--emotion", "Q1", "--seconds", "0.25")
    assert result.code == 0, result.err
    assert audio.probe("Q1.wav").duration == pytest.approx(0.25, abs=0.01)


def test_an_output_that_is_a_file_gets_one_line(estm, tmp_path):
    (tmp_path / "report.txt").write_text("mine")
    result = estm("demo", "--fast", "-o", tmp_path / "report.txt")
    assert result.code == 1 and "not a folder" in result.err and len(result.err.strip().splitlines()) == 1
    assert (tmp_path / "report.txt").read_text() == "mine"
