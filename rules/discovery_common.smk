# Functions of the discovery rounds' rules (rules/discovery.smk): which file of which round.

from pipeline.discovery.rounds import round_seed

DISCOVERY = SETTINGS.discovery
# The potentials with a hull: the main one, the consensus ones and the second opinion.
HULL_POTENTIALS = list(
    dict.fromkeys([POTENTIAL, *CONSENSUS, *([SECOND_OPINION] if SECOND_OPINION else [])])
)
# The representations encoded anew each round (rule, output key), from the round's training
# set; a model of another representation keeps its model from round to round.
ROUND_ENCODED = {"wyckoff": ("encode_wyckoff_round", "crystals")}


def round_output(round_number, rule_name, key, **wildcards):
    """Output ``key`` of ``rule_name`` in round ``round_number`` (round 1: that rule's own;
    later: its ``<rule_name>_round`` copy's), wildcards filled in."""
    name = rule_name if round_number == 1 else f"{rule_name}_round"
    if round_number > 1:
        wildcards["round"] = round_number
    return expand(getattr(rules, name).output[key], **wildcards)[0]


def round_hull(round_number, potential):
    """The hull phases of ``potential`` that round ``round_number`` measures against."""
    if round_number == 1:
        return hull_references(potential)
    return expand(rules.confirm.output[f"hull_{potential}"], round=round_number)[0]


def round_known(round_number):
    if round_number == 1:
        return rules.fetch_data.output.known
    return expand(rules.confirm.output.known, round=round_number)[0]


def round_training(round_number):
    if round_number == 1:
        return rules.fetch_data.output.dataset
    return expand(rules.confirm.output.training, round=round_number)[0]


def round_model(round_number, model):
    if round_number == 1:
        return expand(rules.train.output.model, model=model)[0]
    return expand(rules.finetune.output.model, round=round_number, model=model)[0]


def potential_records(round_number, potential):
    """A potential's records of round ``round_number``'s candidates: the main and consensus
    potentials' relaxations, the second opinion's single points."""
    if potential == POTENTIAL or potential in CONSENSUS:
        return round_output(round_number, "gather_relaxed", "relaxed", potential=potential)
    return round_output(round_number, "second_opinion", 0, potential=potential)


def previous_round(wildcards):
    return int(wildcards.round) - 1


def this_round_seed(wildcards):
    return round_seed(SETTINGS.seed, int(wildcards.round))


def confirm_inputs(wildcards):
    """Round r-1's verdict and structures, and the sets round r extends."""
    before = previous_round(wildcards)
    inputs = {
        "candidates": round_output(before, "export", "candidates"),
        "relaxed": round_output(before, "gather_relaxed", "relaxed", potential=POTENTIAL),
        "known": round_known(before),
        "training": round_training(before),
    }
    for potential in HULL_POTENTIALS:
        inputs[f"hull_{potential}"] = round_hull(before, potential)
        inputs[f"records_{potential}"] = potential_records(before, potential)
    return inputs


def confirm_hull_args(wildcards, input, output):
    return " ".join(
        f"--hull {p} {input[f'hull_{p}']} {input[f'records_{p}']} {output[f'hull_{p}']}"
        for p in HULL_POTENTIALS
    )


def budget_inputs(wildcards):
    """Every earlier round's sample reports and confirmation tables."""
    earlier = range(1, int(wildcards.round))
    inputs = {
        "confirmations": [expand(rules.confirm.output.table, round=k + 1)[0] for k in earlier]
    }
    for k in earlier:
        for model in MODELS:
            inputs[f"report_{k}_{model}"] = round_output(k, "sample", "report", model=model)
    return inputs


def sample_report_args(wildcards, input):
    return " ".join(
        f"--sample-report {model} {input[f'report_{k}_{model}']}"
        for k in range(1, int(wildcards.round))
        for model in MODELS
    )


def finetune_inputs(wildcards):
    inputs = {
        "parent": round_model(previous_round(wildcards), wildcards.model),
        "confirmed": rules.confirm.output.confirmed,
    }
    representation = model_registry.representation(wildcards.model)
    if representation in ROUND_ENCODED:
        encoder, key = ROUND_ENCODED[representation]
        inputs["data"] = getattr(rules, encoder).output[key]
    return inputs


def ehull_round_inputs(wildcards):
    """As ehull_inputs, for round r: its candidates, its hulls."""
    r = int(wildcards.round)
    inputs = {
        "relaxed": round_output(r, "gather_relaxed", "relaxed", potential=POTENTIAL),
        "references": round_hull(r, POTENTIAL),
        "mp_entries": rules.fetch_data.output.mp_entries,
        "repeats": expand(rules.gather_repeat_round.output.relaxed, round=r)[0],
    }
    for potential in CONSENSUS:
        inputs[f"relaxed_{potential}"] = potential_records(r, potential)
        inputs[f"references_{potential}"] = round_hull(r, potential)
    if SECOND_OPINION:
        inputs["second_energies"] = potential_records(r, SECOND_OPINION)
        inputs["second_references"] = round_hull(r, SECOND_OPINION)
    return inputs


def discovery_inputs(wildcards):
    """Each round's verdict, structures and counts; the final hulls (round N+1's)."""
    rounds = range(1, DISCOVERY.rounds + 1)
    inputs = {}
    for k in rounds:
        inputs[f"candidates_{k}"] = round_output(k, "export", "candidates")
        inputs[f"relaxed_{k}"] = round_output(k, "gather_relaxed", "relaxed", potential=POTENTIAL)
        inputs[f"status_{k}"] = round_output(k, "gather_relaxed", "status", potential=POTENTIAL)
        inputs[f"validation_{k}"] = round_output(k, "validate", "table")
        inputs[f"confirmation_{k}"] = expand(rules.confirm.output.table, round=k + 1)[0]
        for potential in HULL_POTENTIALS[1:]:
            inputs[f"records_{potential}_{k}"] = potential_records(k, potential)
    for potential in HULL_POTENTIALS:
        inputs[f"hull_{potential}"] = round_hull(DISCOVERY.rounds + 1, potential)
    return inputs


def discovery_args(wildcards, input):
    """The discovery stage's per-round file lists, in round order."""
    rounds = range(1, DISCOVERY.rounds + 1)

    def each(name):
        return " ".join(str(input[f"{name}_{k}"]) for k in rounds)

    args = [
        f"--candidates {each('candidates')} --relaxed {each('relaxed')}",
        f"--relax-status {each('status')} --validation {each('validation')}",
        f"--confirmations {each('confirmation')} --references {input[f'hull_{POTENTIAL}']}",
    ]
    args += [
        f"--other {p} {input[f'hull_{p}']} {each(f'records_{p}')}" for p in HULL_POTENTIALS[1:]
    ]
    return " ".join(args)


def discovery_outputs():
    """What `snakemake` with no target builds of the rounds: nothing with one round."""
    if DISCOVERY.rounds == 1 or not sample_files():
        return []
    return [rules.discovery.output.candidates, rules.discovery.output.curve]
