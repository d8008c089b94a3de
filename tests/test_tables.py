"""The tables of measured results in README and docs are the ones their JSON in docs/results/ gives."""

import importlib.util
import json

import pytest

from tiny import REPO

spec = importlib.util.spec_from_file_location("tables", REPO / "docs" / "tables.py")
tables = importlib.util.module_from_spec(spec)
spec.loader.exec_module(tables)


def test_every_table_in_the_documents_matches_its_json():
    assert tables.stale() == [], "run `python docs/tables.py` after changing docs/results/"


def test_every_table_is_shown_somewhere_and_every_block_names_a_table():
    shown = {m["name"] for path in tables.DOCUMENTS for m in tables.BLOCK.finditer(path.read_text(encoding="utf-8"))}
    assert shown == set(tables.TABLES)


def test_a_table_edited_by_hand_is_found(tmp_path):
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    block = next(tables.BLOCK.finditer(readme))
    edited = tmp_path / "README.md"
    edited.write_text(readme.replace(block["body"], block["body"].replace("|", "| 9.99 |", 3), 1), encoding="utf-8")
    assert tables.stale([edited]) == [f"{edited}: {block['name']}"]


def test_a_new_measurement_changes_the_table_it_feeds(tmp_path, monkeypatch):
    results = tmp_path / "results"
    results.mkdir()
    for path in tables.RESULTS.glob("*.json"):
        (results / path.name).write_text(path.read_text())
    guidance = json.loads((results / "guidance.json").read_text())
    guidance[0]["accuracy"] = 0.5
    (results / "guidance.json").write_text(json.dumps(guidance))
    monkeypatch.setattr(tables, "RESULTS", results)
    assert "| 50.0% |" in tables.guidance()
    assert tables.stale([REPO / "docs" / "ddpm.md"]) == ["docs/ddpm.md: guidance"]


def test_an_unknown_table_name_is_a_clear_error(tmp_path):
    document = tmp_path / "doc.md"
    document.write_text("<!-- table: nonsense -->\n<!-- /table -->\n")
    with pytest.raises(SystemExit, match="has a table block 'nonsense'"):
        tables.stale([document])
