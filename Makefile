# Developers:
#   make book    build the HTML book (every page executed) -> _build/html/index.html
#   make test    everything CI runs: unit tests, nbval on the exercise notebooks, the book build
#                with zero warnings, the browser test over every page, the students' environment
#   make unit    the package and grader tests alone (no book build, browser, Binder or the graded
#                batches of hostile submissions): < 1 min on an idle 2-core machine
#   make lint    ruff and mypy (part of make test)
#   make bench   benchmarks (ratios against torch.optim / scipy measured in the same run)
#   make pdf     the book as a PDF (XeLaTeX, CJK font) -> _build/latex/book.pdf
#   make release regenerate the student notebooks exercises/*.ipynb from exercises/source/
# Students:
#   make lab     JupyterLab on the exercises, in the same small environment Binder builds
# The developer targets create .venv and install requirements.txt on first use; `make lab`
# creates .venv-lab from binder/ (no book or test tooling).

SHELL   := /bin/bash
PYTHON  ?= $(shell command -v python3.11 || command -v python3)
VENV    := .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed-stamp
LABVENV := .venv-lab
LABSTAMP:= $(LABVENV)/.installed-stamp
ROOT_USER := $(shell [ "$$(id -u)" = 0 ] && echo yes)

.PHONY: book test unit lint bench pdf lab release install browser-deps tex-deps clean

install: $(STAMP)

$(STAMP): requirements.txt pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements.txt
	@touch $@

# Debian's Chromium and its driver for tests/test_browser.py, and bubblewrap for the grader's
# unprivileged isolation test (installed when running as root; otherwise those tests are skipped
# with a message saying what to install).
browser-deps:
	@if [ -n "$(ROOT_USER)" ] && ! { command -v chromium && command -v chromedriver && command -v bwrap; } >/dev/null; then \
	  echo "installing Debian's chromium, chromium-driver and bubblewrap for the tests"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver bubblewrap >/dev/null; \
	fi

# tools/build_book.py: execute the pages on every core, then jupyter-book build -W -n --keep-going;
# fails on any warning (log in _build/book-build.log)
book: $(STAMP)
	$(BIN)/python tools/build_book.py

test: $(STAMP) browser-deps lint
	$(BIN)/python -m pytest --durations=15

# ruff over the package and the tests, mypy over the package (settings in pyproject.toml)
lint: $(STAMP)
	$(BIN)/ruff check src tests
	$(BIN)/mypy

unit: $(STAMP)
	$(BIN)/python -m pytest tests -m "not integration" -q -n auto  # pytest-xdist: one worker per core

bench: $(STAMP)
	$(BIN)/python bench/run.py

release: $(STAMP)
	$(BIN)/dlopt-grade release exercises/source/*.ipynb --out exercises

# XeLaTeX with Debian's TeX Live and Noto CJK (the glossary prints its Chinese terms).
tex-deps:
	@if [ -n "$(ROOT_USER)" ] && ! command -v xelatex >/dev/null; then \
	  echo "installing Debian's TeX Live (XeLaTeX, CJK) for the PDF"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
	    texlive-xetex texlive-lang-chinese texlive-latex-extra texlive-fonts-recommended \
	    texlive-plain-generic texlive-latex-recommended fonts-noto-cjk fonts-freefont-otf xindy latexmk >/dev/null; \
	fi

pdf: $(STAMP) tex-deps
	$(BIN)/python tools/execute_pages.py
	$(BIN)/jupyter-book build . --builder pdflatex
	@test -f _build/latex/book.pdf || { echo "no PDF was written (see _build/latex/book.log)"; exit 1; }
	$(BIN)/jupyter-book build . --builder html  # the download menu now offers the PDF
	@echo "PDF: $(CURDIR)/_build/latex/book.pdf (also in the HTML book's download menu)"

lab: $(LABSTAMP)
	$(LABVENV)/bin/jupyter lab --ServerApp.root_dir=$(CURDIR) --ServerApp.default_url=/lab/tree/exercises

$(LABSTAMP): binder/requirements.txt binder/postBuild pyproject.toml
	rm -rf $(LABVENV)
	$(PYTHON) tools/binder_env.py build $(LABVENV)
	@touch $@

clean:
	rm -rf _build
