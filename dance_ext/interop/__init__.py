"""Condensed sets in and out of the field's formats: ``export`` writes a CondenseResult as
DD-Ranking-style tensors, a folder of PNGs, or the files the official DM and DANCE code
write; ``load_set`` reads them (and our saved results) back."""
from .common import FORMATS
from .export import export
from .load import READABLE, detect, load_set

__all__ = ["FORMATS", "READABLE", "detect", "export", "load_set"]
