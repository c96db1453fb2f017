"""Writers of the field's formats for a condensed set (DD-Ranking-style tensors, a folder of
PNGs, the files the official DM and DANCE code write); ``interop.load_set`` reads them back."""
from .common import FORMATS
from .export import export

__all__ = ["FORMATS", "export"]
