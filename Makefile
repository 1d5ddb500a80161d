# The two commands of the README: `make demo` and `make test`. Both create/update .venv first.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# The CPU build of torch 2.13.0 lies on this machine's disk; pinning it keeps pip from pulling a CUDA build.
TORCH_PIN := torch==2.13.0

.PHONY: install demo test test-slow bench clean

install: $(STAMP)

$(STAMP): pyproject.toml Makefile
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q "$(TORCH_PIN)"
	$(PY) -m pip install -q -e ".[test]" "$(TORCH_PIN)"
	touch $(STAMP)

demo: install
	$(VENV)/bin/optimlab demo

test: install
	$(PY) -m pytest

test-slow: install
	$(PY) -m pytest -m slow

clean:
	rm -rf $(VENV) build *.egg-info
