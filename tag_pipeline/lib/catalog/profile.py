"""Catalog profiles: a small YAML file that tells the pipeline how to read one catalog.

A profile names the source files (a glob under a root folder), the columns that carry the
product id, title, description, image, price and update time, and the columns that carry
tags, each with its tag type and shape. Shapes:

- ``plain``: the column value is one tag.
- ``multi``: several tags in one column, split on ``separator``.
- ``path``: a hierarchical category path split on ``separator``; each level is a tag whose
  parent is the level above.
  A value may be wrapped as a JSON array of one or several paths (``["A >> B", "A >> C"]``):
  each path gives its tags. ``max_depth`` keeps the top levels only; ``max_single_product_share``
  (0..1) drops a level, and every level below it, when more than that share of its distinct
  values belong to a single product (a product-name leaf). Facets are ``level_names[i]``, and
  ``<name>_l<i>`` (1-based) for levels past them.
- ``levels``: the same hierarchy spread over several ``columns`` (top level first).
- ``key_value``: ``key: value`` pairs split on ``pair_separator`` / ``kv_separator``; the
  values of the chosen ``keys`` become tags, faceted by key.
- ``attributes``: structured attributes in one column: a JSON object (``{"Fabric":
  "Cotton"}``), a list of ``{key, value}`` objects, or either wrapped in a one-key object
  (``{"product_specification": [...]}``), in JSON or Ruby's ``=>`` hash syntax. Keys are
  normalised (case, spacing and punctuation: ``Ideal For`` -> ``ideal_for``) and mapped by
  ``key_synonyms``; ``keys`` (optional, normalised too) keeps only those; ``value_separator``
  splits multi-valued values (``Women, Girls``); ``values`` maps values (compared without
  case). Facets are ``<name>.<key>``.
- ``lexicon``: tags mined from the title and description with a term list per tag
  (``Slim Fit: [slim fit, 修身]``).

Structured columns the models read as inputs are listed under ``features:`` (``column``,
optional ``name`` (default: the column) and ``kind``: ``categorical`` (default) or ``numeric``,
e.g. a price; see ``models.catalog_features``). The recommended training settings of the
catalog go under ``training:`` (``TaggerConfig`` names; ``model_job`` uses them unless its
run config says otherwise).

Every error names the profile, the key and, where there is one, the column at fault.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from tag_pipeline.lib.models.catalog_features import FEATURE_KINDS, FeatureColumn
from tag_pipeline.lib.vocabulary import FILE_FORMATS, TAG_TYPES

SHAPES = ("plain", "multi", "path", "levels", "key_value", "attributes", "lexicon")
_EXTENSIONS = {".csv": "csv", ".tsv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl",
               ".parquet": "parquet", ".pq": "parquet"}
# Compressed text files are read by extension too: ``products.csv.gz``.
COMPRESSED = (".gz",)
# Separator used internally to carry a ``levels`` hierarchy as a path (ASCII unit separator).
LEVEL_SEPARATOR = "\x1f"
_PLACEHOLDER = re.compile(r"\{(\w+)\}")
_IMAGE_TEMPLATE_FIELDS = {"id"}


class ProfileError(ValueError):
    """A catalog profile is invalid, or does not match the files it describes."""


@dataclass(frozen=True)
class TagSpec:
    """How one column (or group of columns) becomes tags of one tag type."""

    name: str
    tag_type: str
    shape: str
    columns: tuple[str, ...] = ()
    separator: str | None = None
    pair_separator: str | None = None
    kv_separator: str | None = None
    keys: tuple[str, ...] = ()
    level_names: tuple[str, ...] = ()
    lexicon: dict[str, tuple[str, ...]] = field(default_factory=dict)
    value_map: dict[str, str] = field(default_factory=dict)
    max_depth: int | None = None
    max_single_product_share: float | None = None
    value_separator: str | None = None
    key_synonyms: dict[str, str] = field(default_factory=dict)

    @property
    def field_key(self) -> str:
        """Key under which the raw value is kept in ``raw_products.tag_fields``."""
        return self.name


@dataclass(frozen=True)
class CleaningSettings:
    """Per-catalog thresholds used by the cleaning models."""

    max_title_chars: int = 2000
    max_id_chars: int = 200
    min_image_px: int = 32


@dataclass(frozen=True)
class CatalogProfile:
    """A parsed, validated catalog profile."""

    name: str
    source_path: Path
    root: Path
    files: tuple[str, ...]
    format: str
    id_column: str | None
    title_column: str
    description_column: str | None
    image_column: str | None
    image_template: str | None
    image_root: Path
    price_column: str | None
    updated_at_column: str | None
    tags: tuple[TagSpec, ...]
    # None: ',' except for '.tsv' files, which are tab-separated (see ``delimiter_of``)
    csv_delimiter: str | None = None
    # False: the CSV files have no header line; ``column_names`` names their columns
    csv_header: bool = True
    column_names: tuple[str, ...] = ()
    generator: str | None = None
    cleaning: CleaningSettings = CleaningSettings()
    description: str = ""
    features: tuple[FeatureColumn, ...] = ()
    training: dict[str, Any] = field(default_factory=dict)

    @property
    def id_from_line(self) -> bool:
        """True when the catalog has no id column and ids are '<file stem>:<line>'."""
        return self.id_column is None

    def source_columns(self) -> list[str]:
        """Every source column the profile reads, in a stable order."""
        cols = [c for c in (self.id_column, self.title_column) if c]
        for c in (self.description_column, self.image_column, self.price_column,
                  self.updated_at_column):
            if c:
                cols.append(c)
        for spec in self.tags:
            cols.extend(spec.columns)
        cols.extend(f.column for f in self.features if f.column)
        return list(dict.fromkeys(cols))

    def column_origin(self, column: str) -> str:
        """The profile key that names ``column`` (for error messages)."""
        for key, value in (("columns.id", self.id_column), ("columns.title", self.title_column),
                           ("columns.description", self.description_column),
                           ("columns.image", self.image_column),
                           ("columns.price", self.price_column),
                           ("columns.updated_at", self.updated_at_column)):
            if value == column:
                return key
        for i, spec in enumerate(self.tags):
            if column in spec.columns:
                return f"tags[{i}] ({spec.name})"
        for i, feature in enumerate(self.features):
            if feature.column == column:
                return f"features[{i}] ({feature.name})"
        return "columns"

    def matching_files(self) -> list[Path]:
        """Files under the root matching the profile's globs, sorted by name."""
        if not self.root.is_dir():
            raise ProfileError(
                f"profile {self.name!r}: key 'root' points to {self.root}, which is not a folder"
            )
        found: set[Path] = set()
        for pattern in self.files:
            found.update(p for p in self.root.glob(pattern) if p.is_file())
        return sorted(found)

    def format_of(self, path: Path) -> str:
        """The format of one source file: the profile's, or from the extension (a ``.gz``
        after it is read through gzip)."""
        if self.format != "auto":
            return self.format
        suffix = data_suffix(path)
        fmt = _EXTENSIONS.get(suffix)
        if fmt is None:
            raise ProfileError(
                f"profile {self.name!r}: key 'source.format' is 'auto' but file {path} has an "
                f"unknown extension {suffix!r}; expected one of {sorted(_EXTENSIONS)}, "
                f"optionally followed by {', '.join(COMPRESSED)}"
            )
        return fmt

    def delimiter_of(self, path: Path) -> str:
        """The CSV delimiter of one file: the profile's ``source.delimiter``, else a tab for
        ``.tsv`` files and a comma for the others."""
        if self.csv_delimiter is not None:
            return self.csv_delimiter
        return "\t" if data_suffix(path) == ".tsv" else ","


def data_suffix(path: Path) -> str:
    """The extension that names a file's format, past a compression suffix:
    ``products.tsv.gz`` -> ``.tsv``."""
    suffixes = [x.lower() for x in path.suffixes]
    if suffixes and suffixes[-1] in COMPRESSED:
        suffixes = suffixes[:-1]
    return suffixes[-1] if suffixes else ""


def _expand(value: str, placeholders: dict[str, str], profile: str, key: str) -> str:
    def repl(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in placeholders:
            raise ProfileError(
                f"profile {profile!r}: key {key!r} uses unknown placeholder {{{name}}}; "
                f"known: {sorted(placeholders)}"
            )
        return placeholders[name]

    return _PLACEHOLDER.sub(repl, value)


def _require(mapping: dict[str, Any], key: str, profile: str, where: str) -> Any:
    if key not in mapping or mapping[key] in (None, ""):
        raise ProfileError(f"profile {profile!r}: key '{where}{key}' is required")
    return mapping[key]


def _separator(spec: dict[str, Any], key: str, profile: str, where: str) -> str:
    sep = spec.get(key)
    if not isinstance(sep, str) or sep == "":
        raise ProfileError(
            f"profile {profile!r}: key '{where}{key}' must be a non-empty string separator, "
            f"got {sep!r}"
        )
    return sep


def _parse_tag(raw: Any, i: int, profile: str) -> TagSpec:
    where = f"tags[{i}]."
    if not isinstance(raw, dict):
        raise ProfileError(f"profile {profile!r}: key 'tags[{i}]' must be a mapping")
    tag_type = _require(raw, "type", profile, where)
    if tag_type not in TAG_TYPES:
        raise ProfileError(
            f"profile {profile!r}: key '{where}type' is {tag_type!r}; expected one of {TAG_TYPES}"
        )
    shape = raw.get("shape", "plain")
    if shape not in SHAPES:
        raise ProfileError(
            f"profile {profile!r}: key '{where}shape' is {shape!r}; expected one of {SHAPES}"
        )
    if shape == "lexicon":
        lexicon_raw = _require(raw, "lexicon", profile, where)
        if not isinstance(lexicon_raw, dict):
            raise ProfileError(f"profile {profile!r}: key '{where}lexicon' must be a mapping")
        lexicon: dict[str, tuple[str, ...]] = {}
        for tag, terms in lexicon_raw.items():
            terms_list = [terms] if isinstance(terms, str) else terms
            if not terms_list or not all(isinstance(t, str) and t.strip() for t in terms_list):
                raise ProfileError(
                    f"profile {profile!r}: key '{where}lexicon.{tag}' must be a list of terms"
                )
            lexicon[str(tag)] = tuple(t.strip() for t in terms_list)
        name = raw.get("name", tag_type)
        return TagSpec(name=name, tag_type=tag_type, shape=shape, lexicon=lexicon)

    if shape == "levels":
        columns = _require(raw, "columns", profile, where)
        if not isinstance(columns, list) or len(columns) < 2:
            raise ProfileError(
                f"profile {profile!r}: key '{where}columns' must list at least two columns"
            )
        columns_t = tuple(str(c) for c in columns)
        level_names = tuple(raw.get("level_names", columns_t))
        name = raw.get("name", f"{tag_type}_levels")
        return TagSpec(name=name, tag_type=tag_type, shape=shape, columns=columns_t,
                       separator=LEVEL_SEPARATOR, level_names=level_names)

    column = str(_require(raw, "column", profile, where))
    name = str(raw.get("name", column))
    if shape == "plain":
        value_map = raw.get("values") or {}
        if not isinstance(value_map, dict):
            raise ProfileError(f"profile {profile!r}: key '{where}values' must be a mapping")
        return TagSpec(name=name, tag_type=tag_type, shape=shape, columns=(column,),
                       value_map={str(k): str(v) for k, v in value_map.items()})
    if shape == "multi":
        sep = _separator(raw, "separator", profile, where)
        return TagSpec(name=name, tag_type=tag_type, shape=shape, columns=(column,),
                       separator=sep)
    if shape == "path":
        sep = _separator(raw, "separator", profile, where)
        level_names = tuple(str(n) for n in raw.get("level_names", []))
        max_depth = raw.get("max_depth")
        if max_depth is not None and (not isinstance(max_depth, int) or isinstance(
                max_depth, bool) or max_depth < 1):
            raise ProfileError(f"profile {profile!r}: key '{where}max_depth' must be a "
                               f"positive integer (the levels to keep), got {max_depth!r}")
        share = raw.get("max_single_product_share")
        if share is not None and (isinstance(share, bool) or not isinstance(share, (int, float))
                                  or not 0 <= share < 1):
            raise ProfileError(f"profile {profile!r}: key '{where}max_single_product_share' "
                               f"must be a number from 0 to below 1, got {share!r}")
        return TagSpec(name=name, tag_type=tag_type, shape=shape, columns=(column,),
                       separator=sep, level_names=level_names, max_depth=max_depth,
                       max_single_product_share=None if share is None else float(share))
    if shape == "attributes":
        return _parse_attributes(raw, name, tag_type, column, profile, where)
    # key_value
    pair_sep = _separator(raw, "pair_separator", profile, where)
    kv_sep = _separator(raw, "kv_separator", profile, where)
    if pair_sep.strip() == kv_sep.strip():
        raise ProfileError(
            f"profile {profile!r}: keys '{where}pair_separator' and '{where}kv_separator' "
            f"must differ, both are {pair_sep!r}"
        )
    keys = raw.get("keys")
    if not isinstance(keys, list) or not keys:
        raise ProfileError(
            f"profile {profile!r}: key '{where}keys' must list the attribute keys to keep"
        )
    return TagSpec(name=name, tag_type=tag_type, shape=shape, columns=(column,),
                   pair_separator=pair_sep, kv_separator=kv_sep,
                   keys=tuple(str(k) for k in keys))


def normalise_key(key: str) -> str:
    """An attribute key as a facet name: lower case, each run of characters other than
    letters and digits one ``_``: ``Ideal For`` and ``ideal-for`` -> ``ideal_for``. The SQL
    label model folds keys the same way (``attribute_key``)."""
    return re.sub(r"(?:[^\w]|_)+", "_", unicodedata.normalize("NFKC", key).lower()).strip("_")


def _string_map(raw: Any, profile: str, key: str) -> dict[str, str]:
    if raw is None:
        return {}
    if not isinstance(raw, dict) or not all(isinstance(v, (str, int, float)) for v in raw.values()):
        raise ProfileError(f"profile {profile!r}: key {key!r} must map each value to a string")
    return {str(k): str(v) for k, v in raw.items()}


def _parse_attributes(raw: dict[str, Any], name: str, tag_type: str, column: str,
                      profile: str, where: str) -> TagSpec:
    allowed = {"name", "type", "shape", "column", "keys", "key_synonyms", "value_separator",
               "values"}
    unknown = sorted(set(raw) - allowed)
    if unknown:
        raise ProfileError(f"profile {profile!r}: key '{where[:-1]}' has unknown key(s) "
                           f"{unknown}; an attributes entry takes {sorted(allowed)}")
    keys = raw.get("keys") or []
    if not isinstance(keys, list) or not all(isinstance(k, str) and k.strip() for k in keys):
        raise ProfileError(f"profile {profile!r}: key '{where}keys' must list attribute keys "
                           "(or be left out to keep every key)")
    synonyms = {normalise_key(k): normalise_key(v) for k, v in
                _string_map(raw.get("key_synonyms"), profile, f"{where}key_synonyms").items()}
    value_sep = raw.get("value_separator")
    if value_sep is not None:
        value_sep = _separator(raw, "value_separator", profile, where)
    values = {k.strip().lower(): v for k, v in
              _string_map(raw.get("values"), profile, f"{where}values").items()}
    normalised = tuple(dict.fromkeys(synonyms.get(normalise_key(k), normalise_key(k))
                                     for k in keys))
    return TagSpec(name=name, tag_type=tag_type, shape="attributes", columns=(column,),
                   keys=normalised, key_synonyms=synonyms, value_separator=value_sep,
                   value_map=values)


def _id_column(columns: dict[str, Any], profile: str) -> str | None:
    raw = _require(columns, "id", profile, "columns.")
    if isinstance(raw, dict):
        if raw.get("generated") != "line":
            raise ProfileError(
                f"profile {profile!r}: key 'columns.id' must be a column name or "
                f"{{generated: line}}, got {raw!r}"
            )
        return None
    return str(raw)


def parse_profile(data: dict[str, Any], source_path: Path,
                  placeholders: dict[str, str]) -> CatalogProfile:
    """Validate a profile mapping (as read from YAML) into a :class:`CatalogProfile`.

    Args:
        data: the YAML document.
        source_path: the file it came from (relative roots are resolved against its folder).
        placeholders: values for ``{landing}``, ``{shared_data}`` ... in ``root``.
    """
    if not isinstance(data, dict):
        raise ProfileError(f"profile file {source_path}: top level must be a mapping")
    name = str(data.get("name") or source_path.stem)
    root_raw = str(_require(data, "root", name, ""))
    root = Path(_expand(root_raw, placeholders, name, "root")).expanduser()
    if not root.is_absolute():
        root = (source_path.parent / root).resolve()

    source = _require(data, "source", name, "")
    if not isinstance(source, dict):
        raise ProfileError(f"profile {name!r}: key 'source' must be a mapping")
    files_raw = _require(source, "files", name, "source.")
    files = (files_raw,) if isinstance(files_raw, str) else tuple(str(f) for f in files_raw)
    for pattern in files:
        if Path(pattern).is_absolute() or ".." in Path(pattern).parts:
            raise ProfileError(
                f"profile {name!r}: key 'source.files' pattern {pattern!r} must stay inside root"
            )
    fmt = source.get("format", "auto")
    if fmt not in (*FILE_FORMATS, "auto"):
        raise ProfileError(
            f"profile {name!r}: key 'source.format' is {fmt!r}; expected auto or one of "
            f"{FILE_FORMATS}"
        )
    delimiter = source.get("delimiter")
    if delimiter is not None and (not isinstance(delimiter, str) or len(delimiter) != 1):
        raise ProfileError(
            f"profile {name!r}: key 'source.delimiter' must be one character (\"\\t\" for a "
            f"tab), got {delimiter!r}"
        )
    header = source.get("header", True)
    if not isinstance(header, bool):
        raise ProfileError(f"profile {name!r}: key 'source.header' must be true (the first "
                           f"line names the columns) or false, got {header!r}")
    column_names = source.get("column_names") or []
    if not isinstance(column_names, list) or not all(
            isinstance(c, str) and c.strip() for c in column_names):
        raise ProfileError(f"profile {name!r}: key 'source.column_names' must list the "
                           "files' column names, in file order")
    if not header and not column_names:
        raise ProfileError(f"profile {name!r}: key 'source.header' is false, so key "
                           "'source.column_names' must list the files' column names in order")
    if header and column_names:
        raise ProfileError(f"profile {name!r}: key 'source.column_names' is only read when "
                           "'source.header' is false (the files' first line names the columns)")
    lowered = [c.strip().lower() for c in column_names]
    twice = sorted({c for c in lowered if lowered.count(c) > 1})
    if twice:
        raise ProfileError(f"profile {name!r}: key 'source.column_names' names {twice} twice "
                           "(compared without case)")

    columns = _require(data, "columns", name, "")
    if not isinstance(columns, dict):
        raise ProfileError(f"profile {name!r}: key 'columns' must be a mapping")
    image = columns.get("image")
    image_column = image_template = None
    if isinstance(image, dict):
        image_template = str(_require(image, "template", name, "columns.image."))
        unknown = set(_PLACEHOLDER.findall(image_template)) - _IMAGE_TEMPLATE_FIELDS
        if unknown:
            raise ProfileError(
                f"profile {name!r}: key 'columns.image.template' uses unknown fields "
                f"{sorted(unknown)}; only {{id}} is supported"
            )
    elif image:
        image_column = str(image)
    image_root_raw = str(columns.get("image_root", "."))
    image_root = (root / image_root_raw).resolve()

    tags_raw = data.get("tags") or []
    if not isinstance(tags_raw, list):
        raise ProfileError(f"profile {name!r}: key 'tags' must be a list")
    tags = tuple(_parse_tag(t, i, name) for i, t in enumerate(tags_raw))
    names = [t.name for t in tags]
    dupes = {n for n in names if names.count(n) > 1}
    if dupes:
        raise ProfileError(f"profile {name!r}: key 'tags' has duplicate names {sorted(dupes)}")

    features = _parse_features(data.get("features"), name)
    training = data.get("training") or {}
    if not isinstance(training, dict) or not all(isinstance(k, str) for k in training):
        raise ProfileError(f"profile {name!r}: key 'training' must be a mapping of tagger "
                           "settings (TaggerConfig names)")

    cleaning_raw = data.get("cleaning") or {}
    try:
        cleaning = CleaningSettings(**cleaning_raw)
    except TypeError as exc:
        raise ProfileError(f"profile {name!r}: key 'cleaning': {exc}") from exc
    for key, value in vars(cleaning).items():
        if not isinstance(value, int) or value < 1:
            raise ProfileError(
                f"profile {name!r}: key 'cleaning.{key}' must be a positive integer, "
                f"got {value!r}"
            )

    return CatalogProfile(
        name=name,
        source_path=source_path,
        root=root,
        files=files,
        format=fmt,
        id_column=_id_column(columns, name),
        title_column=str(_require(columns, "title", name, "columns.")),
        description_column=columns.get("description"),
        image_column=image_column,
        image_template=image_template,
        image_root=image_root,
        price_column=columns.get("price"),
        updated_at_column=columns.get("updated_at"),
        tags=tags,
        csv_delimiter=delimiter,
        csv_header=header,
        column_names=tuple(c.strip() for c in column_names),
        generator=source.get("generator"),
        cleaning=cleaning,
        description=str(data.get("description", "")),
        features=features,
        training=dict(training),
    )


def _parse_features(raw: Any, profile: str) -> tuple[FeatureColumn, ...]:
    """The ``features`` list: ``{column, name?, kind?}`` per structured input column."""
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise ProfileError(f"profile {profile!r}: key 'features' must be a list of "
                           "{column, name, kind} mappings")
    out = []
    for i, entry in enumerate(raw):
        where = f"features[{i}]"
        if isinstance(entry, str):
            entry = {"column": entry}
        if not isinstance(entry, dict) or not isinstance(entry.get("column"), str):
            raise ProfileError(f"profile {profile!r}: key '{where}' needs a 'column' (the "
                               "source column's name)")
        unknown = sorted(set(entry) - {"column", "name", "kind"})
        if unknown:
            raise ProfileError(f"profile {profile!r}: key '{where}' has unknown key(s) "
                               f"{unknown}; allowed are column, name, kind")
        kind = entry.get("kind", "categorical")
        if kind not in FEATURE_KINDS:
            raise ProfileError(f"profile {profile!r}: key '{where}.kind' is {kind!r}; "
                               f"expected one of {FEATURE_KINDS}")
        feature_name = str(entry.get("name", entry["column"]))
        try:
            out.append(FeatureColumn(name=feature_name, kind=kind, column=entry["column"]))
        except ValueError as exc:
            raise ProfileError(f"profile {profile!r}: key '{where}.name': {exc}") from exc
    names = [f.name for f in out]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ProfileError(f"profile {profile!r}: key 'features' has duplicate names {dupes}")
    return tuple(out)


def shipped_profiles_dir() -> Path:
    """The folder of the profiles that ship with the package."""
    return Path(__file__).resolve().parents[2] / "profiles"


def load_profile(name_or_path: str, placeholders: dict[str, str]) -> CatalogProfile:
    """Load a profile by shipped name (``demo``, ``myntra``, ``cn_reviews``) or YAML path."""
    candidate = Path(name_or_path)
    if candidate.suffix in (".yaml", ".yml"):
        path = candidate
    else:
        path = shipped_profiles_dir() / f"{name_or_path}.yaml"
    if not path.is_file():
        shipped = sorted(p.stem for p in shipped_profiles_dir().glob("*.yaml"))
        raise ProfileError(
            f"profile {name_or_path!r}: no profile file at {path} (shipped profiles: {shipped})"
        )
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ProfileError(f"profile file {path}: not valid YAML: {exc}") from exc
    return parse_profile(data, path.resolve(), placeholders)


def model_vars(profile: CatalogProfile) -> dict[str, int | float | str]:
    """The ``var()`` values the SQL models read for this profile."""
    return {**vars(profile.cleaning), "image_from_template": int(bool(profile.image_template))}
