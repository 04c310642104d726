# The two commands of the README. Both create .venv and install everything on first use.
#   make book   build the HTML book (every page executed) -> _build/html/index.html
#   make test   unit tests, nbval on the exercise notebooks, and a warning-free book build
#   make bench  benchmarks (ratios against torch.optim / scipy measured in the same run)

SHELL   := /bin/bash
PYTHON  ?= $(shell command -v python3.11 || command -v python3)
VENV    := .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed-stamp
BOOKLOG := _build/book-build.log

.PHONY: book test bench install clean

install: $(STAMP)

$(STAMP): requirements.txt pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements.txt
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps -e .
	@touch $@

book: $(STAMP)
	@mkdir -p _build
	$(BIN)/python tools/execute_pages.py
	set -o pipefail; $(BIN)/jupyter-book build . --builder html -W -n --keep-going 2>&1 | tee $(BOOKLOG)
	@! grep -E "WARNING|ERROR" $(BOOKLOG) | grep -v "Kernel is running over TCP" || { echo "book build logged warnings (see $(BOOKLOG))"; exit 1; }
	@echo "Book: $(CURDIR)/_build/html/index.html"

test: $(STAMP)
	$(BIN)/python -m pytest

bench: $(STAMP)
	$(BIN)/python bench/run.py

clean:
	rm -rf _build
