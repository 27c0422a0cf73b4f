"""Training data sources and their checks: the bundled Mg-Mn-O set (:mod:`.bundled`), the
Materials Project (:mod:`.materials_project`), a folder of CIFs (:mod:`.cif_dir`); what is
usable (:mod:`.filtering`) and the summary of a dataset (:mod:`.summary`), read by the data
stage. Then the training set's augmentation (:mod:`.augmentation`, the augment stage) and
CGCNN's labels of its structures (:mod:`.cgcnn_labels`).
"""
