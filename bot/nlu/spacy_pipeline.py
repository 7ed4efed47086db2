"""Build and load the project's spaCy pipeline (offline: no pretrained package).

A blank English pipeline with spaCy's lookup lemmatizer (tables from
spacy-lookups-data, copied into the pipeline at build time) and an entity
ruler whose patterns come from the tenant's kb/entity_patterns.yml, plus
e-mail addresses. Rasa's SpacyNLP loads the folder by path.
"""
from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path
from typing import Dict, List

import spacy
from ruamel.yaml import YAML
from spacy.language import Language

EMAIL_LABEL = "email"
PIPELINE_NAME = "deskmate_en"


class PipelineMissingError(RuntimeError):
    """The spaCy pipeline has not been built yet."""


def read_entity_patterns(path: Path) -> Dict[str, List[str]]:
    """Label -> phrases, from the tenant's entity pattern file (empty when absent)."""
    if not path.exists():
        return {}
    data = YAML(typ="safe").load(path.read_text(encoding="utf-8")) or {}
    return {str(label): [str(phrase) for phrase in phrases or []] for label, phrases in data.items()}


def _phrase_variants(phrase: str) -> List[str]:
    """The phrase as written, without hyphens, and with hyphens as spaces."""
    variants = [phrase, phrase.replace("-", ""), re.sub(r"\s*-\s*", " ", phrase)]
    return list(dict.fromkeys(variant for variant in variants if variant.strip()))


def ruler_patterns(nlp: Language, patterns: Dict[str, List[str]]) -> List[dict]:
    """Case-insensitive token patterns for every phrase variant, plus e-mail addresses."""
    result: List[dict] = [{"label": EMAIL_LABEL, "pattern": [{"LIKE_EMAIL": True}]}]
    for label, phrases in patterns.items():
        for phrase in phrases:
            for variant in _phrase_variants(phrase):
                tokens = [token.text.lower() for token in nlp.make_doc(variant)]
                result.append({"label": label, "pattern": [{"LOWER": token} for token in tokens]})
    return result


def build_pipeline(patterns_file: Path) -> Language:
    """A blank English pipeline with a lookup lemmatizer and the entity ruler."""
    nlp = spacy.blank("en")
    nlp.add_pipe("lemmatizer", config={"mode": "lookup"})
    ruler = nlp.add_pipe("entity_ruler")
    nlp.initialize()  # loads the lemma tables from spacy-lookups-data
    ruler.add_patterns(ruler_patterns(nlp, read_entity_patterns(patterns_file)))
    nlp.meta["name"] = PIPELINE_NAME
    nlp.meta["version"] = "1.0.0"
    nlp.meta["spacy_version"] = f">={spacy.about.__version__},<3.5.0"
    nlp.meta["description"] = "Deskmate: blank English, lookup lemmatizer, entity ruler"
    return nlp


def save_pipeline(patterns_file: Path, target: Path) -> Path:
    """Build the pipeline and write it to ``target`` (a folder SpacyNLP can load)."""
    nlp = build_pipeline(patterns_file)
    target.parent.mkdir(parents=True, exist_ok=True)
    nlp.to_disk(target)
    return target


@lru_cache(maxsize=4)
def load_pipeline(path: Path) -> Language:
    """The built pipeline, loaded once per process."""
    if not (path / "meta.json").exists():
        raise PipelineMissingError(f"no spaCy pipeline at {path}: run `python -m bot nlp build` (or `make setup`)")
    return spacy.load(path)
