"""Export stage: rank the screened candidates and write DFT-ready VASP inputs for the passes."""
