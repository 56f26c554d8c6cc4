"""Tagging the catalog (``tagging``) and the tag tables it writes (``store``)."""
