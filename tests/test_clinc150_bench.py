"""bench/clinc150.py's pure parts on tiny synthetic input: the data Rasa reads, the stratified
subsample, the benchmark's config, the metrics and the threshold choice. No training (the full run is
a benchmark: bench/README.md, "CLINC150")."""
from __future__ import annotations

import importlib.util
import json
import random
import sys
from pathlib import Path
from types import ModuleType
from typing import Any, List

import pytest
from rasa.shared.nlu.training_data.formats.rasa_yaml import RasaYAMLReader
from ruamel.yaml import YAML

from bot.settings import PROJECT_ROOT


def _load_bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("clinc150_bench", PROJECT_ROOT / "bench" / "clinc150.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


bench = _load_bench()
Parse = bench.Parse

# Texts as CLINC writes them, with the characters YAML or Rasa's mark-up could misread.
AWKWARD = [
    ("is there a travel alert for [country]", "travel_alert"),
    ("remind me in (x) hours", "reminder"),
    ('how can i say "cancel my order" in french', "translate"),
    ("i need to know chase banks routing #", "routing"),
    ("book a table at sam's at 6:30 pm: two people", "restaurant_reservation"),
    ("what is 30% off 279 & tax", "calculator"),
    ("- a dash first", "reminder"),
    ("yes: no", "oos"),
]


def test_nlu_yaml_is_read_back_by_rasa_as_written() -> None:
    data = RasaYAMLReader().reads(bench.nlu_yaml(AWKWARD))
    read = sorted((m.get("text"), m.get("intent")) for m in data.intent_examples)
    assert read == sorted(AWKWARD)
    assert all(not m.get("entities") for m in data.intent_examples)


@pytest.mark.parametrize("text", ["[visa](card) for travel", "/greet", " padded", "two\nlines", ""])
def test_nlu_yaml_refuses_text_rasa_would_misread(text: str) -> None:
    with pytest.raises(bench.BenchDataError):
        bench.nlu_yaml([(text, "x")])


def test_load_clinc_reads_the_six_splits_and_refuses_another_layout(tmp_path: Path) -> None:
    splits = {split: [["hello there", "oos" if split.startswith("oos") else "greet"]] for split in bench.SPLITS}
    path = tmp_path / "data.json"
    path.write_text(json.dumps(splits), encoding="utf-8")
    assert bench.load_clinc(path)["oos_test"] == [("hello there", "oos")]
    del splits["oos_val"]
    path.write_text(json.dumps(splits), encoding="utf-8")
    with pytest.raises(bench.BenchDataError, match="oos_val"):
        bench.load_clinc(path)


def test_subsample_is_stratified_seeded_and_keeps_order() -> None:
    pairs = [(f"{intent} {i}", intent) for i in range(20) for intent in ("a", "b", "c")]
    pairs += [("rare one", "rare")]
    sample = bench.subsample(pairs, 0.25, seed=1)
    counts = {intent: sum(1 for _, label in sample if label == intent) for intent in ("a", "b", "c", "rare")}
    assert counts == {"a": 5, "b": 5, "c": 5, "rare": 1}
    assert sample == [pair for pair in pairs if pair in sample]  # the source order
    assert bench.subsample(pairs, 0.25, seed=1) == sample
    assert bench.subsample(pairs, 0.25, seed=2) != sample
    assert bench.subsample(pairs, 1.0, seed=1) == pairs


def test_bench_config_keeps_the_shipped_nlu_settings_and_drops_deskmates_own_parts() -> None:
    shipped = YAML(typ="safe").load((PROJECT_ROOT / "config.yml").read_text(encoding="utf-8"))
    result = bench.bench_config(shipped, PROJECT_ROOT, epochs=7)
    names = [c["name"] for c in result.config["pipeline"]]
    assert "ResponseSelector" not in names and "FallbackClassifier" not in names
    assert not [name for name in names if name.startswith("bot.")]
    assert "importers" not in result.config and "policies" not in result.config
    # Every featurizer and the classifier exactly as shipped, in order; only DIET's epochs replaced.
    shipped_kept = [c for c in shipped["pipeline"] if c["name"] in set(names)]
    assert len(shipped_kept) == len(result.config["pipeline"])
    for ours, theirs in zip(result.config["pipeline"], shipped_kept):
        if ours["name"] == "DIETClassifier":
            assert ours == {**theirs, "epochs": 7}
        elif ours["name"] == "SpacyNLP":
            assert Path(ours["model"]) == PROJECT_ROOT / theirs["model"]
        else:
            assert ours == theirs
    fallback = next(c for c in shipped["pipeline"] if c["name"] == "FallbackClassifier")
    assert (result.fallback_threshold, result.fallback_ambiguity) == (
        fallback["threshold"],
        fallback["ambiguity_threshold"],
    )
    assert bench.bench_config(shipped, PROJECT_ROOT, epochs=None).config["pipeline"][-1] == next(
        c for c in shipped["pipeline"] if c["name"] == "DIETClassifier"
    )


def test_score_counts_in_scope_accuracy_and_oos_recall() -> None:
    parses = [
        Parse("a", "a", 0.9, 0.05),  # right
        Parse("a", "b", 0.8),  # wrong intent
        Parse("b", "b", 0.3),  # right, but below a 0.5 threshold
        Parse("b", "oos", 0.7),  # in scope called out of scope
        Parse("oos", "oos", 0.9),  # caught by the oos intent
        Parse("oos", "a", 0.2),  # caught only by a threshold
        Parse("oos", "b", 0.95, 0.9),  # caught only by the ambiguity gap
    ]
    plain = bench.score(parses)
    assert (plain.in_scope_accuracy, plain.oos_recall) == (2 / 4, 1 / 3)
    assert plain.joint_accuracy == pytest.approx(3 / 7)
    gated = bench.score(parses, threshold=0.5, ambiguity=0.1)
    assert (gated.in_scope_accuracy, gated.oos_recall) == (1 / 4, 3 / 3)


def test_the_joint_threshold_is_the_best_on_val_and_the_recall_threshold_meets_its_floor() -> None:
    # In scope: right and confident, or wrong and unsure; out of scope: mostly unsure.
    parses = [Parse("a", "a", c) for c in (0.9, 0.8, 0.7, 0.6)] + [Parse("a", "b", c) for c in (0.3, 0.25)]
    parses += [Parse("oos", "a", c) for c in (0.2, 0.35, 0.65)]
    joint = bench.choose_threshold_joint(parses)
    assert joint == 0.6  # keeps every right answer and catches 2 of the 3 out-of-scope queries
    assert bench.score(parses, joint).joint_accuracy == 6 / 9  # tied with 0.7, which loses the 0.6 answer
    # 100% recall costs the 0.6 answer: the best in-scope accuracy with every oos query caught.
    assert bench.choose_threshold_recall(parses, floor=1.0) == 0.7
    assert bench.choose_threshold_recall([Parse("a", "a", 0.5)], floor=0.6) is None


def test_the_sweep_agrees_with_scoring_each_threshold_alone() -> None:
    rng = random.Random(3)
    labels = ["a", "b", "c", "oos"]
    parses: List[Any] = [
        Parse(rng.choice(labels), rng.choice(labels), round(rng.random(), 2)) for _ in range(300)
    ]
    for threshold, result in bench._sweep(parses):
        assert result == bench.score(parses, threshold), threshold
    best = max(bench.score(parses, t).joint_accuracy for t in bench.candidate_thresholds(parses))
    assert bench.score(parses, bench.choose_threshold_joint(parses)).joint_accuracy == best


def test_ranking_parse_reads_the_raw_ranking_without_the_fallback_entry() -> None:
    parse_data = {
        "intent_ranking": [
            {"name": "nlu_fallback", "confidence": 0.0},
            {"name": "timer", "confidence": 0.6},
            {"name": "alarm", "confidence": 0.3},
        ]
    }
    assert bench.ranking_parse("timer", parse_data) == Parse("timer", "timer", 0.6, 0.3)
    assert bench.ranking_parse("oos", {"intent_ranking": []}) == Parse("oos", "oos", 0.0, 0.0)


def test_percentile() -> None:
    assert bench.percentile([4.0, 1.0, 3.0, 2.0], 50) == 2.5
    assert bench.percentile([1.0, 2.0], 100) == 2.0
    assert bench.percentile([], 95) == 0.0
