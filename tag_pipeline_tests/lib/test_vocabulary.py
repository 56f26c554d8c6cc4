"""The closed vocabularies live once, in lib/vocabulary.py, and the GX suites check exactly them."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tag_pipeline.lib import vocabulary
from tag_pipeline.lib.expectations.suites import SUITES
from tag_pipeline.lib.images import ImageVerdict

PACKAGE = Path(vocabulary.__file__).resolve().parents[1]
VOCABULARIES = {name: getattr(vocabulary, name) for name in dir(vocabulary) if name.isupper()}


def _literal_sets(path: Path) -> list[tuple[int, frozenset]]:
    """(line, values) of every tuple/list/set literal of two or more strings in a module."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Tuple | ast.List | ast.Set) and len(node.elts) >= 2 and all(
                isinstance(e, ast.Constant) and isinstance(e.value, str) for e in node.elts):
            found.append((node.lineno, frozenset(e.value for e in node.elts)))
    return found


def test_no_module_writes_a_vocabulary_out_again():
    copies = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path.name == "vocabulary.py":
            continue
        for line, values in _literal_sets(path):
            for name, words in VOCABULARIES.items():
                if values == frozenset(words):
                    copies.append(f"{path.relative_to(PACKAGE.parent)}:{line} repeats {name}")
    assert not copies, "import these from tag_pipeline.lib.vocabulary: " + "; ".join(copies)


def test_the_suites_check_the_vocabularies_the_code_writes():
    checked: dict[str, set[frozenset]] = {}
    for suite in SUITES.values():
        for spec in suite():
            if spec.type == "ExpectColumnValuesToBeInSet":
                checked.setdefault(spec.kwargs["column"], set()).add(
                    frozenset(spec.kwargs["value_set"]))
    assert checked["tag_type"] == {frozenset(vocabulary.TAG_TYPES)}
    assert checked["action"] == {frozenset(vocabulary.FEEDBACK_ACTIONS)}
    assert checked["image_status"] == {frozenset(vocabulary.IMAGE_STATUSES)}
    assert frozenset(vocabulary.TAG_SOURCES) in checked["source"]
    assert frozenset(vocabulary.LABEL_SOURCES) in checked["source"]
    assert checked["file_format"] == {frozenset(vocabulary.FILE_FORMATS)}
    assert checked["row_status"] == {frozenset(vocabulary.ROW_STATUSES)}


def test_an_image_verdict_outside_the_vocabulary_is_refused():
    assert ImageVerdict("ok", 1, 1, "").status == "ok"
    with pytest.raises(ValueError, match="'broken' is not one of .*lib.vocabulary"):
        ImageVerdict("broken", None, None, "")
