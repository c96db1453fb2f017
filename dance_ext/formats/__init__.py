"""The field's file formats for a condensed set: DD-Ranking-style tensors, a folder of PNGs,
the files the official DM and DANCE code write. The writers are ``formats.export``; the
reader is ``interop.load_set``. This module holds only the names, so the CLI lists them
without importing torch."""
FORMATS = ("tensors", "imagefolder", "dm", "dance")
READABLE = ("result", *FORMATS)  # "result": a folder written by CondenseResult.save
