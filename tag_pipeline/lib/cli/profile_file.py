"""A raw catalog export read through a catalog profile, for ``tag --profile`` and
``eval --profile``.

The file is read exactly as ``catalog_job`` reads a landing file of that profile (its format,
delimiter, header or column names, column map, text cleaning, feature columns and tag rules),
into a private in-memory DuckDB that spills to a temporary folder: nothing of the project is
written. Products come out in the columns the models read (``product_id``, ``title``,
``description``, ``image_path`` and the feature columns by name), the catalog's own tags in
``labels``; lines the reader could not use and rows cleaning rejected are ``bad_rows`` with
their line and reason (a row superseded by a newer version of its product in the same file
too).
"""

from __future__ import annotations

import dataclasses
import tempfile
from collections.abc import Iterator
from pathlib import Path

import polars as pl

from tag_pipeline.lib.catalog.profile import CatalogProfile, ProfileError
from tag_pipeline.lib.cli.files import BadRow, InputFileError
from tag_pipeline.lib.tags.store import SQL_ROOT


class ProfileFile:
    """One export file of ``profile``, loaded by the catalog chain (see the module doc).

    Raises:
        InputFileError: the file does not exist, or the profile does not fit it (the
            profile's message: the key and column at fault).
    """

    def __init__(self, profile: CatalogProfile, path: Path) -> None:
        import duckdb

        from tag_pipeline.lib.catalog.chain import run_catalog_chain
        from tag_pipeline.lib.sql import SqlModelError

        if not path.is_file():
            raise InputFileError(f"input file {path} does not exist")
        self.path = path
        # the profile, reading this one file: images still resolve under its image root
        self.profile = dataclasses.replace(profile, root=path.parent.resolve(),
                                           files=(path.name,))
        self.feature_names = tuple(f.name for f in profile.features)
        self._spill = tempfile.TemporaryDirectory(prefix="tag-pipeline-read-")
        self._con = duckdb.connect(":memory:", config={"temp_directory": self._spill.name})
        try:
            run_catalog_chain(self._con, self.profile, SQL_ROOT, check_images=False)
        except (ProfileError, SqlModelError, duckdb.Error) as exc:
            self.close()
            raise InputFileError(f"input file {path} read with profile {profile.name!r}: "
                                 f"{exc}") from exc
        except BaseException:
            self.close()
            raise
        con = self._con
        self.rows = con.execute("SELECT count(*) FROM cleaned_products").fetchone()[0]
        optional = [name for name, given in (
            ("description", profile.description_column),
            ("image_path", profile.image_column or profile.image_template)) if given]
        self.columns = ["product_id", "title", *optional, *self.feature_names]
        self.bad_rows = [BadRow(int(line), reason, detail or "", raw) for line, reason, detail,
                         raw in con.execute(
            """
            SELECT source_line, error_type, error_message, raw_line FROM raw_product_rejects
            UNION ALL
            SELECT source_line, reject_reason, reject_detail, NULL FROM stg_products
            WHERE row_status = 'rejected'
            UNION ALL
            SELECT s.source_line, 'superseded',
                   'product ' || s.product_id || ' has a newer version on line '
                   || c.source_line || ', which is the one tagged', NULL
            FROM stg_products AS s JOIN cleaned_products AS c USING (product_id)
            WHERE s.row_status = 'superseded'
            ORDER BY 1
            """).fetchall()]

    def batches(self, batch_size: int, columns: tuple[str, ...] | None = None
                ) -> Iterator[pl.DataFrame]:
        """The products in file order, ``batch_size`` at a time, with their line in
        ``_line`` (``columns``: the optional columns wanted; default all)."""
        from tag_pipeline.lib.sql import quote_ident

        if batch_size < 1:
            raise InputFileError(f"batch size must be at least 1, got {batch_size}")
        wanted = [c for c in self.columns[2:] if columns is None or c in columns]
        select = ["source_line AS _line", "product_id", "title"]
        params: list[str] = []
        for c in wanted:
            if c in self.feature_names:
                feature = next(f for f in self.profile.features if f.name == c)
                select.append(f"tag_fields[?] AS {quote_ident(c)}")
                params.append(feature.field_key)
            else:
                select.append({"image_path": "image_ref AS image_path"}.get(c, c))
        reader = self._con.execute(
            f"SELECT {', '.join(select)} FROM cleaned_products ORDER BY source_line",
            params).fetch_record_batch(batch_size)
        for record_batch in reader:
            if record_batch.num_rows:
                yield pl.from_arrow(record_batch)

    def labels(self) -> pl.DataFrame:
        """The catalog's own tags of the products (product_id, tag_type, facet, tag)."""
        return self._con.execute(
            "SELECT product_id, tag_type, facet, tag FROM product_labels").pl()

    def close(self) -> None:
        self._con.close()
        self._spill.cleanup()

    def __enter__(self) -> ProfileFile:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()
