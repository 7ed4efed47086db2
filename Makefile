# Deskmate: `make run` starts the bot, `make test` runs every test.
# Both set up a fresh machine first (virtualenv, pinned packages, spaCy pipeline).

VENV    := .venv
PYTHON  := $(VENV)/bin/python
STAMP   := $(VENV)/.installed
SPACY   := var/spacy/deskmate_en/meta.json

.PHONY: setup run test train check-kb clean

setup: $(STAMP) $(SPACY)

$(STAMP): requirements.txt constraints.txt
	@test -x $(PYTHON) || { py=$$(scripts/find-python3.10) && echo "Creating $(VENV) with $$py" && $$py -m venv $(VENV); }
	$(PYTHON) -m pip install --quiet --upgrade "pip<24" wheel
	@echo "Installing pinned requirements (first time: a few minutes) ..."
	$(PYTHON) -m pip install --quiet --progress-bar off -r requirements.txt -c constraints.txt
	@touch $@

$(SPACY): $(STAMP) kb/entity_patterns.yml bot/nlu/spacy_pipeline.py
	$(PYTHON) -m bot nlp build

run: setup
	$(PYTHON) -m bot run

train: setup
	$(PYTHON) -m bot train

check-kb: setup
	$(PYTHON) -m bot kb check

test: setup
	$(PYTHON) -m bot kb check
	$(PYTHON) -m bot train
	$(PYTHON) -m pytest

clean:
	rm -rf models var .pytest_cache
