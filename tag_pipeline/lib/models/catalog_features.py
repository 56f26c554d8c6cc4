"""Structured catalog columns as model inputs: categorical and numeric feature columns.

A profile names them under ``features:`` (``catalog.profile.FeatureSpec``); ingestion keeps
each product's raw value in ``tag_fields`` under the key ``feature:<name>``. Every model reads
them the same way, as words appended to the product's text (``text.product_texts``):

- a categorical column becomes one word ``<name>_<value>`` (lower-cased, non-word characters
  as ``_``), e.g. myntra's ``year`` 2011.0 -> ``year_2011``;
- a numeric column (a price) becomes a bin word ``<name>_<currency>_b<k>`` with
  ``k = floor(2 * log2(amount))`` (bins a factor of about 1.41 wide, so a price and its
  neighbours share a word whatever the catalog's price range); the currency is the leading or
  trailing code or symbol of the raw value (``USD 12.50``, ``¥99``), left out when there is
  none (``price_b7``), so prices of different currencies never share a bin. A value that is
  no number gives no word.

The TF-IDF backend sees each word as one token; the CNN + BiLSTM's WordPiece tokenizer splits
it into pieces it learned from the training texts. Serving reads the raw values from columns
named like the features (``year``, ``price``), as a catalog export has them.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass

import polars as pl

CATEGORICAL = "categorical"
NUMERIC = "numeric"
FEATURE_KINDS = (CATEGORICAL, NUMERIC)
FIELD_PREFIX = "feature:"
# The column of the words of every feature, as product_texts reads it.
FEATURE_TEXT_COLUMN = "feature_text"
_NON_WORD = re.compile(r"[^0-9a-z\u00c0-\uffff]+")
_AMOUNT = re.compile(r"[-+]?\d+(?:[.,]\d+)*")
_FLOAT_INT = re.compile(r"^(-?\d+)\.0+$")


@dataclass(frozen=True)
class FeatureColumn:
    """One feature column: its name (the serving column), kind and source column."""

    name: str
    kind: str = CATEGORICAL
    column: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in FEATURE_KINDS:
            raise ValueError(f"feature {self.name!r}: kind {self.kind!r} is not one of "
                             f"{FEATURE_KINDS}")
        if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_]*", self.name):
            raise ValueError(f"feature name {self.name!r} must be letters, digits and '_', "
                             "starting with a letter")

    @property
    def field_key(self) -> str:
        """Key of the raw value in ``raw_products.tag_fields``."""
        return FIELD_PREFIX + self.name

    def to_dict(self) -> dict[str, str | None]:
        """As JSON-ready dict (see ``from_dict``)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> FeatureColumn:
        """Rebuild one written by ``to_dict``."""
        return cls(name=str(data["name"]), kind=str(data.get("kind", CATEGORICAL)),
                   column=None if data.get("column") is None else str(data["column"]))


def columns_to_json(columns: Sequence[FeatureColumn]) -> list[dict[str, str | None]]:
    """The feature columns as a JSON-ready list."""
    return [c.to_dict() for c in columns]


def columns_from_json(data: Iterable[Mapping[str, object]] | None) -> tuple[FeatureColumn, ...]:
    """Feature columns from ``columns_to_json`` output (None or [] -> none)."""
    return tuple(FeatureColumn.from_dict(d) for d in (data or []))


def _word(value: str) -> str:
    value = _FLOAT_INT.sub(r"\1", value.strip())
    return _NON_WORD.sub("_", value.lower()).strip("_")


def _price_word(name: str, raw: str) -> str | None:
    text = raw.strip()
    match = _AMOUNT.search(text)
    if match is None:
        return None
    digits = match.group(0)
    # the last separator is the decimal point unless it is a lone one before 3 digits
    # (1,299.00 / 1.299,00 / 12.5 are decimals; 1,299 is a thousands separator)
    last = max(digits.rfind("."), digits.rfind(","))
    lone_thousands = (last >= 0 and len(digits) - last - 1 == 3
                      and len(set(re.findall(r"[.,]", digits))) == 1)
    if last >= 0 and not lone_thousands:
        digits = re.sub(r"[.,]", "", digits[:last]) + "." + digits[last + 1:]
    else:
        digits = re.sub(r"[.,]", "", digits)
    try:
        amount = float(digits)
    except ValueError:
        return None
    if not math.isfinite(amount) or amount <= 0:
        return None
    currency = _word(text[:match.start()] + " " + text[match.end():]) or ""
    currency = {"$": "usd", "€": "eur", "£": "gbp", "¥": "cny", "￥": "cny", "₹": "inr"}.get(
        text[:match.start()].strip(), currency)
    prefix = f"{name}_{currency}" if currency else name
    return f"{prefix}_b{math.floor(2 * math.log2(amount))}"


def feature_word(column: FeatureColumn, raw: str | None) -> str | None:
    """The word one raw value gives (None for a missing or unusable value)."""
    if raw is None or not str(raw).strip():
        return None
    if column.kind == NUMERIC:
        return _price_word(column.name, str(raw))
    word = _word(str(raw))
    return f"{column.name}_{word}" if word else None


def feature_texts(values: Mapping[str, Sequence[str | None]], columns: Sequence[FeatureColumn],
                  n: int) -> list[str]:
    """The feature words of ``n`` products, space separated ('' when a product has none).

    Args:
        values: Raw values per feature name (a missing name: every product lacks it).
        columns: The feature columns, in model order.
        n: Number of products.
    """
    out = [[] for _ in range(n)]
    for column in columns:
        raw = values.get(column.name)
        if raw is None:
            continue
        if len(raw) != n:
            raise ValueError(f"feature {column.name!r}: {len(raw)} values for {n} products")
        for i, value in enumerate(raw):
            word = feature_word(column, value)
            if word:
                out[i].append(word)
    return [" ".join(words) for words in out]


def with_feature_text(frame: pl.DataFrame, columns: Sequence[FeatureColumn]) -> pl.DataFrame:
    """``frame`` with ``FEATURE_TEXT_COLUMN`` built from its columns named like the features
    (or, for warehouse rows, from the ``tag_fields`` map's ``feature:<name>`` entries)."""
    values: dict[str, list[str | None]] = {}
    fields = _fields(frame) if "tag_fields" in frame.columns else None
    for column in columns:
        if column.name in frame.columns:
            values[column.name] = [None if v is None else str(v)
                                   for v in frame[column.name].cast(pl.Utf8).to_list()]
        elif fields is not None:
            values[column.name] = [row.get(column.field_key) for row in fields]
    return frame.with_columns(pl.Series(FEATURE_TEXT_COLUMN,
                                        feature_texts(values, columns, frame.height),
                                        dtype=pl.Utf8))


def _fields(frame: pl.DataFrame) -> list[dict[str, str]]:
    """The ``tag_fields`` map of each row as a dict (DuckDB maps arrive as key/value lists)."""
    out = []
    for entry in frame["tag_fields"].to_list():
        if entry is None:
            out.append({})
        elif isinstance(entry, dict):
            out.append({str(k): v for k, v in entry.items()})
        else:
            out.append({str(kv["key"]): kv["value"] for kv in entry})
    return out
