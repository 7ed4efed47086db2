"""The support leads' tools: what the bot missed, grouped by topic, and the training-data edits a lead decides.

- ``misses``: the visitor messages the bot missed, found in the store;
- ``grouping``: those messages grouped by similarity (the KB search's features);
- ``decisions``: carrying out a lead's decision (edit kb/ or data/nlu/, then record it);
- ``training_edits``, ``kb_edits``, ``nlu_edits``: one added line in a YAML file, or nothing.

Retraining and its checks are bot/training/.
"""
