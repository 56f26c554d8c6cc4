"""The project's closed vocabularies, defined once.

The code that writes these values and the Great Expectations suites that check them both read
the constants here, so a check always tests what the code writes. Plain Python: no imports.
"""

from __future__ import annotations

# The four kinds of tag every product gets (profile rules, label spaces, tag tables).
TAG_TYPES = ("category", "attribute", "scene", "style")
# Where a tag in product_tags / tag_history came from.
TAG_SOURCES = ("catalog", "model", "refiner", "feedback", "sales")
# Where a training label in product_labels came from.
LABEL_SOURCES = ("catalog", "lexicon", "feedback", "sales", "model", "refiner")
# What a shopper or merchandiser may do to a tag in the feedback events.
FEEDBACK_ACTIONS = ("accept", "reject", "add", "withdraw")
# The verdict on a product's image (lib/images.py, cleaned_products.image_status).
IMAGE_STATUSES = ("ok", "none", "missing", "corrupt", "too_small", "outside_root", "unsupported")
# Landing file formats a profile may name (``source.format``), besides ``auto``.
FILE_FORMATS = ("csv", "jsonl", "parquet")
# A product row's fate in the row accounting.
ROW_STATUSES = ("cleaned", "rejected", "superseded")
