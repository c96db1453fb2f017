"""Condensed sets in from the field's formats: ``load_set`` reads what ``formats.export``
writes (DD-Ranking-style tensors, a folder of PNGs, the official DM and DANCE files) and our
saved results."""
from ..formats import FORMATS, READABLE
from ..formats.export import export
from .load import detect, load_set

__all__ = ["FORMATS", "READABLE", "detect", "export", "load_set"]
