"""The candidate explorer: a static page set to look at the screened crystals, and an ASE
database of them.

``table``: one row per relaxed structure with every column the screen's tables carry;
``nearest``: the known structure each candidate is shown beside; ``ternary``: the hull's
geometry for the interactive plot; ``database``: ``results/candidates.db`` (``ase.db``);
``page``: writes ``results/explorer/`` (HTML/JS/CSS templates, vendored viewer and plot
libraries, the data as a ``.js`` file, POSCAR/CIF downloads).
"""
