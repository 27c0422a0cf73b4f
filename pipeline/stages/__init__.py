"""The stage CLIs, one module a stage: ``python -m pipeline.stages.<stage> --help``.

Each is called by one rule in ``rules/``; it reads its inputs, calls the library modules of
the package and writes its outputs. A library module never imports a stage module.
"""
