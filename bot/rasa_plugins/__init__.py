"""Code that runs inside the Rasa server and `rasa train`, named by path in config.yml and credentials.yml.

- ``kb_importer``: reads kb/ as the retrieval intent ``faq/<id>`` (training data);
- ``message_guard``: NLU component turning unreadable messages into ``nlu_fallback``;
- ``channel``: the gateway's ``deskmate`` input channel (one reply per bot message).

Renaming a module here changes config.yml's component paths and so the model's
fingerprint: the next `make run` trains once.
"""
