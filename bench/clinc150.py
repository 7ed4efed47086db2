"""Deskmate's NLU pipeline measured on CLINC150 (Larson et al., EMNLP-IJCNLP 2019), beside the paper's Table 2.

What is measured: in-scope accuracy (share of ``test``'s 4,500 queries whose predicted intent is
their intent and that are not called out of scope) and out-of-scope recall (share of ``oos_test``'s
1,000 queries called out of scope), in the paper's two settings:

* ``oos-train``: out-of-scope is a 151st intent ``oos`` trained on ``train`` + ``oos_train``; a query
  predicted ``oos`` counts as out of scope (the paper's row: the top intent alone, no threshold).
* ``oos-threshold``: trained on ``train`` alone (no ``oos`` intent); a query is out of scope when the
  top intent's confidence is below a threshold chosen on ``val`` + ``oos_val``. The paper's criterion,
  used for its row, is the threshold with the best joint accuracy on val (in-scope and out-of-scope
  queries together, out-of-scope as one more label; ties go to the lowest threshold). Also printed:
  the threshold with the best in-scope accuracy on val among those with >= 60% val OOS recall.

Both settings also show, from the same parses, the same two thresholds applied on top of the
``oos-train`` model, and Deskmate's shipped FallbackClassifier rule (top confidence below its
``threshold`` or within ``ambiguity_threshold`` of the runner-up -> out of scope) replayed on the
raw DIET ranking. Every threshold is chosen on val only; test is scored once per row.

How: config.yml is read and its NLU pipeline kept, featurizers and DIETClassifier settings as
shipped (the spaCy pipeline ``var/spacy/deskmate_en`` by absolute path), with only the data swapped.
Dropped, because they need Deskmate's own data or do nothing for intents on CLINC:

* the ``importers`` (the KnowledgeBaseImporter reads kb/ into ``faq/<article>`` examples);
* ``ResponseSelector`` (retrieval intent ``faq``: there is no ``faq`` intent in CLINC);
* ``SpacyEntityExtractor`` (extracts Deskmate's own entity labels error_code/plan/email; DIET runs
  with ``entity_recognition: false`` and no featurizer reads entities, so intents are unaffected);
* ``FallbackClassifier`` (its rule is replayed from the raw ranking instead, so the same model gives
  the paper's rows and the shipped rule; in the pipeline it would hide the raw top intent);
* Deskmate's own components (``bot.*``: MessageGuard reads Deskmate's settings and only turns
  unreadable messages into ``nlu_fallback``; none of CLINC's queries is unreadable);
* the dialogue ``policies`` (NLU only).

The splits are written as Rasa NLU YAML into a temporary folder, trained with Rasa's own
``rasa.model_training.train_nlu`` (Rasa's training cache off, so the time is a cold training), and
every val and test query is parsed one at a time by the trained model in process
(``rasa.core.agent.Agent.parse_message``): per-query latency p50/p95 is over the test queries.
Training the stock settings takes over 20 minutes per setting on 2 cores, so ``--subsample F``
(stratified per intent, seeded, on every split) and ``--epochs N`` (DIET's epochs) make a quick run:

    .venv/bin/python bench/clinc150.py --subsample 0.1 --epochs 10          # a check, ~2 min
    nice -n 10 .venv/bin/python bench/clinc150.py --json var/clinc150.json  # the benchmark

The full run is a benchmark, never a test (tests/test_clinc150_bench.py covers the pure parts).
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATA = PROJECT_ROOT.parent / "shared" / "data" / "clinc150" / "data_full.json"
OOS = "oos"
SPLITS = ("train", "val", "test", "oos_train", "oos_val", "oos_test")
SETTINGS = ("oos-train", "oos-threshold")
# The recall floor of the second threshold criterion (the target: >= 60% OOS recall).
RECALL_FLOOR = 0.60

# Table 2 of the paper (Full set): in-scope accuracy / OOS recall, percent.
PAPER_ROWS: Dict[str, Tuple[Tuple[float, float], Tuple[float, float]]] = {
    "FastText": ((89.0, 9.7), (88.6, 28.3)),
    "SVM": ((91.0, 14.5), (88.2, 18.0)),
    "CNN": ((91.2, 18.9), (90.9, 30.9)),
    "DialogFlow": ((91.7, 14.0), (90.8, 26.7)),
    "Rasa (spacy-sklearn, 2019)": ((91.5, 45.3), (90.9, 31.2)),
    "MLP on USE embeddings": ((93.5, 47.4), (93.4, 49.1)),
    "BERT (fine-tuned)": ((96.9, 40.3), (96.2, 52.3)),
}

# Pipeline components left out of the benchmark, and why (see the docstring).
DROPPED_COMPONENTS: Dict[str, str] = {
    "ResponseSelector": "retrieval intent faq (Deskmate's kb/ articles): no such intent in CLINC",
    "SpacyEntityExtractor": "Deskmate's entity labels; entities feed no intent feature",
    "FallbackClassifier": "replayed from the raw ranking (row 'shipped FallbackClassifier')",
}

Pair = Tuple[str, str]
Data = Dict[str, List[Pair]]


class BenchDataError(ValueError):
    """The data file is not CLINC150's layout (missing split, bad pair, text Rasa would misread)."""


# ---------------------------------------------------------------------------------------------
# Data
# ---------------------------------------------------------------------------------------------


def load_clinc(path: Path) -> Data:
    """The six splits of data_full.json: split name -> [(text, intent)]; BenchDataError if malformed."""
    raw = json.loads(path.read_text(encoding="utf-8"))
    data: Data = {}
    for split in SPLITS:
        if split not in raw:
            raise BenchDataError(f"{path}: no split {split!r}")
        pairs: List[Pair] = []
        for item in raw[split]:
            if not (isinstance(item, list) and len(item) == 2 and all(isinstance(x, str) for x in item)):
                raise BenchDataError(f"{path}: {split}: not a [text, intent] pair: {item!r}")
            pairs.append((item[0], item[1]))
        data[split] = pairs
    return data


def subsample(pairs: Sequence[Pair], fraction: float, seed: int) -> List[Pair]:
    """``fraction`` of each intent's pairs (at least one per intent), drawn with ``seed``; order kept.

    Stratified: every intent keeps round(fraction x its count) pairs, so a 10% sample of CLINC's
    train keeps 10 per intent. ``fraction`` >= 1 returns every pair.
    """
    if not 0 < fraction:
        raise ValueError(f"fraction must be > 0, not {fraction}")
    if fraction >= 1:
        return list(pairs)
    by_intent: Dict[str, List[int]] = defaultdict(list)
    for index, (_, intent) in enumerate(pairs):
        by_intent[intent].append(index)
    rng = random.Random(seed)
    keep: List[int] = []
    for intent in sorted(by_intent):
        indices = by_intent[intent]
        keep.extend(rng.sample(indices, max(1, round(fraction * len(indices)))))
    return [pairs[index] for index in sorted(keep)]


def nlu_yaml(pairs: Iterable[Pair]) -> str:
    """Rasa NLU YAML (version 3.1) with one ``intent`` block per intent, examples as a literal block.

    Raises BenchDataError for a text Rasa would not read back as written: one with a line break
    or surrounding white space (the literal block), one starting with ``/`` (Rasa's intent
    shortcut at parse time) or holding Rasa's entity mark-up ``[text](entity)`` / ``[text]{...}``.
    """
    by_intent: Dict[str, List[str]] = defaultdict(list)
    for text, intent in pairs:
        _check_text(text)
        by_intent[intent].append(text)
    lines = ['version: "3.1"', "nlu:"]
    for intent in sorted(by_intent):
        lines.append(f"- intent: {intent}")
        lines.append("  examples: |")
        lines.extend(f"    - {text}" for text in by_intent[intent])
    return "\n".join(lines) + "\n"


def _check_text(text: str) -> None:
    import re

    if not text or text != text.strip() or "\n" in text or "\r" in text:
        raise BenchDataError(f"text with a line break or surrounding white space: {text!r}")
    if text.startswith("/"):
        raise BenchDataError(f"text starting with '/' (Rasa reads it as an intent): {text!r}")
    if re.search(r"\[[^\]]+\](\(|\{)", text):
        raise BenchDataError(f"text with Rasa's entity mark-up: {text!r}")


# ---------------------------------------------------------------------------------------------
# Config
# ---------------------------------------------------------------------------------------------


@dataclass
class BenchConfig:
    """The NLU config written for the benchmark and what was left out of config.yml's."""

    config: Dict[str, Any]
    kept: List[str]
    dropped: List[Tuple[str, str]]
    fallback_threshold: float
    fallback_ambiguity: float


def bench_config(shipped: Dict[str, Any], project_root: Path, epochs: Optional[int]) -> BenchConfig:
    """config.yml's NLU pipeline with only what needs Deskmate's data dropped (see DROPPED_COMPONENTS).

    ``epochs`` overrides DIETClassifier's ``epochs`` (None keeps the shipped value). A relative
    SpacyNLP ``model`` is made absolute against ``project_root``. The FallbackClassifier's
    threshold and ambiguity are returned for the replay (Rasa's defaults 0.3 / 0.1 if absent).
    Raises BenchDataError if the pipeline has no DIETClassifier.
    """
    pipeline: List[Dict[str, Any]] = []
    kept: List[str] = []
    dropped: List[Tuple[str, str]] = []
    fallback_threshold, fallback_ambiguity = 0.3, 0.1
    for component in shipped.get("pipeline") or []:
        name = str(component["name"])
        if name == "FallbackClassifier":
            fallback_threshold = float(component.get("threshold", fallback_threshold))
            fallback_ambiguity = float(component.get("ambiguity_threshold", fallback_ambiguity))
        if name in DROPPED_COMPONENTS:
            dropped.append((name, DROPPED_COMPONENTS[name]))
            continue
        if "." in name:
            dropped.append((name, "Deskmate's own component (reads Deskmate's settings or data)"))
            continue
        component = dict(component)
        if name == "SpacyNLP" and component.get("model") and not Path(component["model"]).is_absolute():
            component["model"] = str(project_root / component["model"])
        if name == "DIETClassifier" and epochs is not None:
            component["epochs"] = epochs
        pipeline.append(component)
        kept.append(name)
    if "DIETClassifier" not in kept:
        raise BenchDataError("config.yml's pipeline has no DIETClassifier")
    if shipped.get("importers"):
        dropped.append(("importers", "the KnowledgeBaseImporter reads kb/ (the data are CLINC's alone)"))
    if shipped.get("policies"):
        dropped.append(("policies", "dialogue policies: NLU only"))
    config = {
        "recipe": shipped.get("recipe", "default.v1"),
        "language": shipped.get("language", "en"),
        "assistant_id": "clinc150-bench",
        "pipeline": pipeline,
    }
    return BenchConfig(config, kept, dropped, fallback_threshold, fallback_ambiguity)


# ---------------------------------------------------------------------------------------------
# Scoring
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Parse:
    """One query's reading: its true label (``oos`` for out of scope) and the raw top-2 of the ranking."""

    label: str
    top: str
    confidence: float
    second: float = 0.0


def predicted(parse: Parse, threshold: float = 0.0, ambiguity: float = 0.0) -> str:
    """The label a rule gives: ``oos`` if the top intent is ``oos``, its confidence is below
    ``threshold`` or within ``ambiguity`` of the runner-up's; else the top intent."""
    if parse.top == OOS or parse.confidence < threshold or parse.confidence - parse.second < ambiguity:
        return OOS
    return parse.top


@dataclass(frozen=True)
class Score:
    """In-scope accuracy and OOS recall (fractions 0..1) and the joint accuracy over both."""

    in_scope_accuracy: float
    oos_recall: float
    joint_accuracy: float
    in_scope: int
    oos: int


def score(parses: Sequence[Parse], threshold: float = 0.0, ambiguity: float = 0.0) -> Score:
    """Score one rule on in-scope and out-of-scope queries (labels ``oos`` are out of scope).

    In-scope accuracy = correct intent and not called ``oos``, over in-scope queries; OOS recall =
    called ``oos``, over out-of-scope queries; joint = every query's label right. A side with no
    queries scores 0.
    """
    right_in = right_out = n_in = n_out = 0
    for parse in parses:
        hit = predicted(parse, threshold, ambiguity) == parse.label
        if parse.label == OOS:
            n_out += 1
            right_out += hit
        else:
            n_in += 1
            right_in += hit
    total = n_in + n_out
    return Score(
        in_scope_accuracy=right_in / n_in if n_in else 0.0,
        oos_recall=right_out / n_out if n_out else 0.0,
        joint_accuracy=(right_in + right_out) / total if total else 0.0,
        in_scope=n_in,
        oos=n_out,
    )


def candidate_thresholds(parses: Sequence[Parse]) -> List[float]:
    """Every threshold that changes a decision on ``parses``: 0 and each distinct top confidence,
    plus one just above the highest (everything out of scope); ascending."""
    confidences = sorted({p.confidence for p in parses})
    top = confidences[-1] if confidences else 0.0
    return sorted({0.0, *confidences, top + 1e-6})


def choose_threshold_joint(parses: Sequence[Parse]) -> float:
    """The paper's criterion: the threshold with the best joint accuracy on ``parses`` (val); ties
    go to the lowest threshold."""
    best, best_accuracy = 0.0, -1.0
    for threshold in _sweep(parses):
        accuracy = threshold[1].joint_accuracy
        if accuracy > best_accuracy:
            best, best_accuracy = threshold[0], accuracy
    return best


def choose_threshold_recall(parses: Sequence[Parse], floor: float = RECALL_FLOOR) -> Optional[float]:
    """The threshold with the best in-scope accuracy among those with OOS recall >= ``floor`` on
    ``parses`` (val); ties go to the lowest threshold; None when no threshold reaches the floor
    with any in-scope query still accepted."""
    best: Optional[float] = None
    best_accuracy = 0.0
    for threshold, result in _sweep(parses):
        if result.oos_recall >= floor and result.in_scope_accuracy > best_accuracy:
            best, best_accuracy = threshold, result.in_scope_accuracy
    return best


def _sweep(parses: Sequence[Parse]) -> List[Tuple[float, Score]]:
    """Score at every candidate threshold, in one pass over the parses sorted by confidence.

    A query is called out of scope by the threshold when its confidence < threshold; as the
    threshold rises past a confidence, that query flips from "top intent" to ``oos``.
    """
    ordered = sorted(parses, key=lambda p: p.confidence)
    n_in = sum(p.label != OOS for p in ordered)
    n_out = len(ordered) - n_in
    # At threshold 0 (nothing below it): each query's label under the top-intent rule.
    right_in = sum(p.label != OOS and p.top == p.label for p in ordered)
    right_out = sum(p.label == OOS and p.top == OOS for p in ordered)
    results: List[Tuple[float, Score]] = []
    position = 0
    for threshold in candidate_thresholds(ordered):
        while position < len(ordered) and ordered[position].confidence < threshold:
            parse = ordered[position]
            if parse.label == OOS:
                right_out += parse.top != OOS  # now called oos: right unless it already was
            else:
                right_in -= parse.top == parse.label  # now called oos: wrong if it was right
            position += 1
        total = n_in + n_out
        results.append(
            (
                threshold,
                Score(
                    in_scope_accuracy=right_in / n_in if n_in else 0.0,
                    oos_recall=right_out / n_out if n_out else 0.0,
                    joint_accuracy=(right_in + right_out) / total if total else 0.0,
                    in_scope=n_in,
                    oos=n_out,
                ),
            )
        )
    return results


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100), linear between closest ranks; 0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


# ---------------------------------------------------------------------------------------------
# Training and parsing (Rasa, imported here only: the pure parts above stay fast to import)
# ---------------------------------------------------------------------------------------------


@dataclass
class Trained:
    """One setting's trained model, how long training took, and every val/test parse."""

    setting: str
    train_examples: int
    train_seconds: float
    train_cpu_seconds: float
    val: List[Parse]
    test: List[Parse]
    latencies_ms: List[float] = field(default_factory=list)


def quiet_rasa() -> None:
    """Rasa's logs at INFO, as ``rasa train`` shows them: without this its structlog prints a debug
    line per parse to stderr, which the per-query latency would include."""
    import logging

    from rasa.utils.common import configure_logging_and_warnings
    from rasa.utils.log_utils import configure_structlog

    configure_logging_and_warnings(logging.INFO)
    configure_structlog(logging.INFO)


def ranking_parse(label: str, parse_data: Dict[str, Any]) -> Parse:
    """A Parse from Rasa's parse result (``intent_ranking``, fallback entries left out)."""
    ranking = [
        (str(item["name"]), float(item["confidence"]))
        for item in parse_data.get("intent_ranking") or []
        if item.get("name") != "nlu_fallback"
    ]
    if not ranking:
        return Parse(label, OOS, 0.0, 0.0)
    return Parse(label, ranking[0][0], ranking[0][1], ranking[1][1] if len(ranking) > 1 else 0.0)


def train_and_parse(setting: str, data: Data, config: BenchConfig, folder: Path) -> Trained:
    """Train ``setting``'s model with Rasa's train_nlu in ``folder`` and parse val and test with it."""
    from rasa.core.agent import Agent
    from rasa.model_training import train_nlu
    from rasa.shared.utils.io import write_yaml

    train = list(data["train"]) + (list(data["oos_train"]) if setting == "oos-train" else [])
    work = folder / setting
    work.mkdir(parents=True)
    (work / "nlu.yml").write_text(nlu_yaml(train), encoding="utf-8")
    write_yaml(config.config, work / "config.yml")
    print(f"[{setting}] training on {len(train)} examples ...", flush=True)
    wall, cpu = time.perf_counter(), time.process_time()
    model = train_nlu(str(work / "config.yml"), str(work / "nlu.yml"), str(work / "models"), fixed_model_name=setting)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    if model is None:
        raise RuntimeError(f"[{setting}] Rasa trained no model (see its messages above)")
    print(f"[{setting}] trained in {wall:.0f} s (CPU {cpu:.0f} s); parsing val and test ...", flush=True)
    agent = Agent.load(model)
    latencies: List[float] = []

    async def parse_split(pairs: Sequence[Pair], timed: bool) -> List[Parse]:
        result = []
        for text, label in pairs:
            start = time.perf_counter()
            parse_data = await agent.parse_message(text)
            if timed:
                latencies.append((time.perf_counter() - start) * 1000)
            result.append(ranking_parse(label, parse_data))
        return result

    async def parse_all() -> Tuple[List[Parse], List[Parse]]:
        await agent.parse_message("warm up")  # the first parse builds the graph's lazy parts
        val = await parse_split(list(data["val"]) + list(data["oos_val"]), timed=False)
        test = await parse_split(list(data["test"]) + list(data["oos_test"]), timed=True)
        return val, test

    val, test = asyncio.run(parse_all())
    return Trained(setting, len(train), wall, cpu, val, test, latencies)


# ---------------------------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------------------------


def rows_for(trained: Trained, config: BenchConfig) -> List[Dict[str, Any]]:
    """Every reported rule for one setting: name, threshold (chosen on val), val and test scores."""
    joint = choose_threshold_joint(trained.val)
    at_recall = choose_threshold_recall(trained.val)
    rules: List[Tuple[str, Optional[float], float]] = []
    if trained.setting == "oos-train":
        rules.append(("top intent (the paper's oos-train)", 0.0, 0.0))
        rules.append(("+ threshold, best val joint accuracy", joint, 0.0))
    else:
        rules.append(("threshold, best val joint accuracy (the paper's oos-threshold)", joint, 0.0))
    rules.append((f"threshold, best val in-scope at >= {RECALL_FLOOR:.0%} val OOS recall", at_recall, 0.0))
    rules.append(
        (
            f"shipped FallbackClassifier ({config.fallback_threshold:g}, ambiguity {config.fallback_ambiguity:g})",
            config.fallback_threshold,
            config.fallback_ambiguity,
        )
    )
    rows: List[Dict[str, Any]] = []
    for name, threshold, ambiguity in rules:
        if threshold is None:
            rows.append({"rule": name, "threshold": None})
            continue
        rows.append(
            {
                "rule": name,
                "threshold": threshold,
                "ambiguity": ambiguity,
                "val": asdict(score(trained.val, threshold, ambiguity)),
                "test": asdict(score(trained.test, threshold, ambiguity)),
            }
        )
    return rows


def print_report(results: List[Dict[str, Any]]) -> None:
    """The measured rows beside the paper's, per setting."""
    for result in results:
        setting = result["setting"]
        print(
            f"\n== {setting}: trained on {result['train_examples']} examples in {result['train_seconds']:.0f} s "
            f"(CPU {result['train_cpu_seconds']:.0f} s); per query p50 {result['latency_ms_p50']:.1f} ms, "
            f"p95 {result['latency_ms_p95']:.1f} ms ({result['test_queries']} test queries)"
        )
        print(f"{'rule':<66} {'thr':>6} {'in-scope':>9} {'OOS rec':>8}   (val: in / OOS / joint)")
        for row in result["rows"]:
            if row["threshold"] is None:
                print(f"{row['rule']:<66} {'-':>6}   no threshold reaches the recall floor on val")
                continue
            test, val = row["test"], row["val"]
            print(
                f"{row['rule']:<66} {row['threshold']:>6.3f} {100 * test['in_scope_accuracy']:>8.1f}% "
                f"{100 * test['oos_recall']:>7.1f}%   ({100 * val['in_scope_accuracy']:.1f} / "
                f"{100 * val['oos_recall']:.1f} / {100 * val['joint_accuracy']:.1f})"
            )
        column = 0 if setting == "oos-train" else 1
        for name, figures in PAPER_ROWS.items():
            accuracy, recall = figures[column]
            print(f"{'paper: ' + name:<66} {'':>6} {accuracy:>8.1f}% {recall:>7.1f}%")


def write_json(args: argparse.Namespace, config: BenchConfig, diet: Dict[str, Any], results: List[Dict[str, Any]]) -> None:
    """The settings, every setting's results so far and the paper's rows, as JSON at ``args.json``."""
    payload = {
        "settings": {
            "data": str(args.data),
            "subsample": args.subsample,
            "seed": args.seed,
            "epochs": diet.get("epochs"),
            "pipeline": config.config["pipeline"],
            "dropped": config.dropped,
            "cores": os.cpu_count(),
        },
        "results": results,
        "paper": {name: {"oos-train": rows[0], "oos-threshold": rows[1]} for name, rows in PAPER_ROWS.items()},
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(payload, indent=2), encoding="utf-8")


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="CLINC150's data_full.json")
    parser.add_argument("--config", type=Path, default=PROJECT_ROOT / "config.yml", help="the project's config.yml")
    parser.add_argument("--settings", choices=("oos-train", "oos-threshold", "both"), default="both")
    parser.add_argument("--subsample", type=float, default=1.0, help="fraction per intent of every split (seeded)")
    parser.add_argument("--seed", type=int, default=1, help="seed of the subsample")
    parser.add_argument("--epochs", type=int, default=None, help="DIET's epochs (default: config.yml's)")
    parser.add_argument(
        "--json", type=Path, default=None, help="also write the results (and every val/test parse) as JSON here"
    )
    args = parser.parse_args(argv)

    from ruamel.yaml import YAML

    shipped = YAML(typ="safe").load(args.config.read_text(encoding="utf-8"))
    config = bench_config(shipped, PROJECT_ROOT, args.epochs)
    data = {split: subsample(pairs, args.subsample, args.seed) for split, pairs in load_clinc(args.data).items()}
    settings = SETTINGS if args.settings == "both" else (args.settings,)
    diet = next(c for c in config.config["pipeline"] if c["name"] == "DIETClassifier")

    print(f"CLINC150 bench: data {args.data}")
    print("  splits: " + ", ".join(f"{split} {len(data[split])}" for split in SPLITS))
    print(f"  subsample {args.subsample:g} per intent (seed {args.seed}); settings {', '.join(settings)}")
    print(f"  pipeline kept from {args.config.name}: {', '.join(config.kept)}")
    print(f"  DIETClassifier: {json.dumps({k: v for k, v in diet.items() if k != 'name'})}")
    for name, why in config.dropped:
        print(f"  dropped {name}: {why}")
    print(f"  machine: {os.cpu_count()} cores, {platform.processor() or platform.machine()}, Python {platform.python_version()}")
    sys.stdout.flush()

    results: List[Dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="clinc150-") as folder:
        # A cold training every time: Rasa's cache would make a second run's time meaningless.
        os.environ["RASA_CACHE_DIRECTORY"] = str(Path(folder) / "cache")
        os.environ["RASA_MAX_CACHE_SIZE"] = "0"
        os.environ.setdefault("RASA_TELEMETRY_ENABLED", "false")
        quiet_rasa()
        for setting in settings:
            trained = train_and_parse(setting, data, config, Path(folder))
            results.append(
                {
                    "setting": setting,
                    "train_examples": trained.train_examples,
                    "train_seconds": trained.train_seconds,
                    "train_cpu_seconds": trained.train_cpu_seconds,
                    "test_queries": len(trained.test),
                    "latency_ms_p50": percentile(trained.latencies_ms, 50),
                    "latency_ms_p95": percentile(trained.latencies_ms, 95),
                    "rows": rows_for(trained, config),
                    # Every parse (label, top intent, its confidence, the runner-up's), to re-score offline.
                    "parses": {
                        "val": [[p.label, p.top, p.confidence, p.second] for p in trained.val],
                        "test": [[p.label, p.top, p.confidence, p.second] for p in trained.test],
                    },
                }
            )
            print_report(results[-1:])
            if args.json:  # after each setting: a long run's first half survives an interruption
                write_json(args, config, diet, results)
    if args.json:
        print(f"\nwrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
