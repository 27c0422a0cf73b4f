# Helpers shared by the rules: paths, command-line fragments, environment.

import dataclasses
import json
import os
import sys
from pathlib import Path

WORKFLOW_DIR = Path(workflow.basedir)

# The model registry tells which encoded file each model trains on; import it from this
# checkout (it is cheap: no torch).
sys.path.insert(0, str(WORKFLOW_DIR))
from pipeline.models import registry as model_registry  # noqa: E402
from pipeline.screen.potential_names import POTENTIALS  # noqa: E402

MODELS = list(config["train"]["models"])

# The stage CLIs (`python -m pipeline.stages.<stage>`) must import the package from this
# checkout, also inside a --use-conda environment that did not install it (Snakemake's own
# prefix, strict bash, kept).
# (Snakemake formats the prefix too: its braces doubled. Unset, PYTHONPATH is this
# checkout twice.)
shell.prefix(
    f'set -euo pipefail; export PYTHONPATH="{WORKFLOW_DIR}:${{{{PYTHONPATH:-{WORKFLOW_DIR}}}}}"; '
)


def workflow_path(path):
    """A config path, relative to the workflow directory unless absolute."""
    return str(path) if os.path.isabs(path) else str(WORKFLOW_DIR / path)


def max_atoms_arg():
    """--max-atoms EL=N ... from encoding.max_atoms, or nothing to derive caps from data."""
    caps = config["encoding"]["max_atoms"]
    if not caps:
        return ""
    return " ".join(["--max-atoms", *(f"{el}={n}" for el, n in caps.items())])


def model_options(section, model):
    """config[section][model] as JSON for a CLI's --options (a change reruns the rule)."""
    return json.dumps(config[section].get(model, {}), sort_keys=True)


SCREEN = SETTINGS.screen
POTENTIAL = SCREEN.potential
CONSENSUS = [p for p in SCREEN.consensus if p != POTENTIAL]
SECOND_OPINION = SCREEN.second_opinion
if SECOND_OPINION == POTENTIAL:
    raise ValueError("config: screen.second_opinion must differ from screen.potential")


wildcard_constraints:
    shard=r"\d+",
    potential="|".join(POTENTIALS),


def potential_cli_args(potential):
    """--potential ... --batch-atoms: which potential runs, where and how batched."""
    model_file = SCREEN.checkpoints.get(potential, "")
    return " ".join(
        [
            f"--potential {potential}",
            f"--checkpoint {model_file}" if model_file else "",
            f"--mode {SCREEN.relax_mode} --device {SCREEN.device}",
            f"--batch-atoms {SCREEN.batch_atoms}" if SCREEN.batch_atoms else "",
        ]
    )


def relax_cli_args(potential, fmax, max_steps):
    """The potential's arguments and a relaxation's stopping rules."""
    return f"{potential_cli_args(potential)} --fmax {fmax} --max-steps {max_steps}"


def relaxed(potential=POTENTIAL):
    """The candidates relaxed with ``potential`` (gather_relaxed's output)."""
    return expand(rules.gather_relaxed.output.relaxed, potential=potential)[0]


def relax_status(potential=POTENTIAL):
    return expand(rules.gather_relaxed.output.status, potential=potential)[0]


def hull_references(potential=POTENTIAL):
    """The hull's phases relaxed with ``potential``."""
    return expand(rules.hull_references.output.relaxed, potential=potential)[0]


def early_stop_args(wildcards, input):
    """The main potential's relaxations stop early when screen.early_stop is enabled
    (pipeline/screen/early_stop.py), on the main potential's hull."""
    settings = dataclasses.asdict(SCREEN.early_stop)
    settings["enabled"] = settings["enabled"] and wildcards.potential == POTENTIAL
    args = f"--early-stop '{json.dumps(settings)}'"
    if settings["enabled"]:
        criteria = Criteria.from_settings(SCREEN).to_json()
        args += f" --references-relaxed {input.references} --criteria '{criteria}'"
        args += f" --oxygen-reference {SCREEN.oxygen_reference}"
    return args


def gpus():
    """GPUs a generative-model job asks the scheduler for: none when train.device is cpu."""
    return 0 if config["train"]["device"] == "cpu" else 1


def loss_curves():
    return expand(rules.train.output.plot, model=MODELS)


def sample_files():
    """The generated structures of every configured model (what screening consumes)."""
    return expand(rules.sample.output.samples, model=MODELS)


def final_outputs():
    """What `snakemake` with no target builds."""
    outputs = [
        rules.fetch_data.output.summary,
        rules.fetch_data.output.plot,
        rules.encode.output.tensors,
        rules.compositions.output.targets,
        *loss_curves(),
        *sample_files(),
    ]
    if sample_files():
        outputs += [
            rules.export.output.candidates,
            rules.evaluate.output.metrics,
            *rules.report.output,
            rules.evaluate.output.plot,
            rules.explorer.output.page,
            rules.explorer.output.database,
            rules.environment.output[0],
        ]
    return outputs


def data_inputs(wildcards):
    """Input files of fetch_data: the bundled set always (its phases are hull references
    for user CIFs too), and the CIF folder's files for source cif_dir."""
    inputs = {
        "dataset": workflow_path(config["data"]["bundled"]["dataset"]),
        "references": workflow_path(config["data"]["bundled"]["references"]),
    }
    if config["data"]["source"] == "cif_dir":
        if not config["data"].get("cif_dir"):
            raise ValueError("config: data.source is 'cif_dir' but data.cif_dir is not set")
        inputs["cifs"] = sorted(Path(workflow_path(config["data"]["cif_dir"])).glob("*.cif"))
    return inputs


def band_gap_args():
    """--predictor/--gap-level/--pbe-to-hse from screen.band_gap."""
    gap = SCREEN.band_gap
    mapping = gap.pbe_to_hse
    pbe_to_hse = f"--pbe-to-hse {mapping.slope} {mapping.intercept}" if mapping else ""
    return f"--predictor {gap.predictor} --gap-level {gap.level} {pbe_to_hse}"


def ehull_inputs(wildcards):
    """Relaxed candidates and hull phases of the main potential, the consensus ones and the
    second opinion."""
    inputs = {
        "relaxed": relaxed(),
        "references": hull_references(),
        "mp_entries": rules.fetch_data.output.mp_entries,
        "repeats": rules.gather_repeat.output.relaxed,
    }
    for potential in CONSENSUS:
        inputs[f"relaxed_{potential}"] = relaxed(potential)
        inputs[f"references_{potential}"] = hull_references(potential)
    if SECOND_OPINION:
        inputs["second_energies"] = expand(
            rules.second_opinion.output[0], potential=SECOND_OPINION
        )[0]
        inputs["second_references"] = hull_references(SECOND_OPINION)
    return inputs


def other_potentials_args(wildcards, input):
    args = " ".join(
        f"--consensus {p} {input[f'relaxed_{p}']} {input[f'references_{p}']}" for p in CONSENSUS
    )
    if SECOND_OPINION:
        args += (
            f" --second-opinion {SECOND_OPINION} {input.second_energies}"
            f" {input.second_references}"
        )
    return args


def dft_check_outputs():
    """What `snakemake` builds for the DFT check (dft.check): its table."""
    return [rules.dft_check.output.table] if SETTINGS.dft.check and sample_files() else []


def dft_verdict(wildcards):
    """The DFT check's verdict table (dft.check), which the report and the explorer join by id;
    none when the check is off."""
    return [rules.dft_check.output.table] if SETTINGS.dft.check else []


def dft_verdict_arg(wildcards, input):
    """``--dft-check <dft_check.csv>`` when the check is on."""
    return f"--dft-check {input.dft_check}" if input.dft_check else ""


def dft_plot_arg(wildcards, output):
    """``--out-dft <ml_vs_dft.png>`` when the check is on (the report's DFT plot)."""
    return f"--out-dft {output.ml_vs_dft}" if output.ml_vs_dft else ""


def dft_shipped_arg():
    """The shipped read-only calculations (dft.shipped), if any."""
    shipped = SETTINGS.dft.shipped
    return f"--shipped {workflow_path(shipped)}" if shipped else ""
