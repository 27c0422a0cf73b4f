"""Stage 1, data: load crystals from a source, keep the usable ones, summarise them.

Sources: the bundled Mg-Mn-O set (:mod:`pipeline.data.bundled`), the Materials
Project (:mod:`pipeline.data.materials_project`) and a folder of CIFs
(:mod:`pipeline.data.cif_dir`). Run ``python -m pipeline.data --help``.
"""
