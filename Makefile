# Deskmate: `make run` starts the bot, `make test` runs every test.
# Both set up a fresh machine first (virtualenv, pinned packages, spaCy pipeline).

VENV    := .venv
PYTHON  := $(VENV)/bin/python
STAMP   := $(VENV)/.installed
SPACY   := var/spacy/deskmate_en/meta.json
WEBCHAT := var/webchat/package/lib/index.js

.PHONY: setup browser run test train check check-kb typecheck screenshots clean

setup: $(STAMP) $(SPACY)

$(STAMP): requirements.txt constraints.txt
	@test -x $(PYTHON) || { py=$$(scripts/find-python3.10) && echo "Creating $(VENV) with $$py" && $$py -m venv $(VENV); }
	$(PYTHON) -m pip install --quiet --upgrade "pip<24" wheel
	@echo "Installing pinned requirements (first time: a few minutes) ..."
	$(PYTHON) -m pip install --quiet --progress-bar off -r requirements.txt -c constraints.txt
	@touch $@

$(SPACY): $(STAMP) kb/entity_patterns.yml bot/nlu/spacy_pipeline.py
	$(PYTHON) -m bot nlp build

# Browser tests: Debian's Chromium and its driver (no tool downloads a browser of
# its own), and the stock rasa-webchat bundle from npm to prove compatibility.
browser: $(WEBCHAT)
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null || { \
	  echo "Installing Debian's chromium and chromium-driver for the browser tests ..."; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null; }

$(WEBCHAT):
	mkdir -p var/webchat
	cd var/webchat && npm pack --silent rasa-webchat@1.0.1 >/dev/null && tar xzf rasa-webchat-1.0.1.tgz

run: setup
	$(PYTHON) -m bot run

train: setup
	$(PYTHON) -m bot train

check-kb: setup
	$(PYTHON) -m bot kb check

# Guard rails: rasa data validate, the kb check, the test stories and the dev
# eval (on a private bot) against the floors in tests/eval/floors.yml; exit 1
# on any failure. Trains first if the model is stale. Retraining runs the same checks.
check: setup
	$(PYTHON) -m bot check

# `make test` ends with the checks of `make check`, so pytest leaves out its
# own copies of them (rasa data validate, the test stories, the dev eval).
CHECKED_BY_MAKE_CHECK := \
	--deselect tests/test_rasa_project.py::test_rasa_data_validate_passes \
	--deselect tests/test_rasa_project.py::test_test_stories_pass_with_the_trained_model \
	--deselect tests/test_dev_eval.py::test_dev_set_stays_above_the_accuracy_floors

# Type checking of bot/ and actions/ (mypy.ini).
typecheck: setup
	$(PYTHON) -m mypy

test: setup browser
	$(PYTHON) -m mypy
	$(PYTHON) -m bot kb check
	$(PYTHON) -m bot train
	$(PYTHON) -m pytest $(CHECKED_BY_MAKE_CHECK)
	$(PYTHON) -m bot check --no-train

# The README's screenshots: the browser tests, writing into docs/ (a test run writes var/screenshots/).
screenshots: setup browser
	$(PYTHON) -m bot train
	DESKMATE_SCREENSHOT_DIR=docs $(PYTHON) -m pytest tests/test_browser.py

clean:
	rm -rf models var .pytest_cache
