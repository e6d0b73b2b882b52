# The two commands of the README: `make reports` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
AS_OF  ?= 2026-11-23
JOBS   ?= 2
SAMPLE := data/sample

.PHONY: reports test install install-test sample clean benchmarks

# The venv is rebuilt only when pyproject.toml changes, so a second `make reports` takes seconds.
$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e .
	$(PY) -m ipykernel install --sys-prefix --name python3 >/dev/null
	touch $@

$(VENV)/.installed-test: $(VENV)/.installed
	$(PY) -m pip install --quiet -e '.[test,dask]'
	touch $@

install: $(VENV)/.installed
install-test: $(VENV)/.installed-test

# The demo team is generated deterministically (same seed, same bytes), never edited by hand.
$(SAMPLE)/.done: $(VENV)/.installed coachnb/demo.py
	$(PY) -m coachnb demo-data --out $(SAMPLE)
	touch $@

sample: $(SAMPLE)/.done

reports: $(SAMPLE)/.done
	$(PY) -m coachnb run $(SAMPLE) --as-of $(AS_OF) --out reports --jobs $(JOBS) --audience both --resume
	@echo "Open reports/$(AS_OF)/index.html in a browser: the team overview links every rep's report."

test: $(VENV)/.installed-test $(SAMPLE)/.done
	bash .ci/ensure-chromium
	$(PY) -m pytest

benchmarks: $(VENV)/.installed
	$(PY) benchmarks/load.py
	$(PY) benchmarks/calibration.py
	$(PY) benchmarks/batch.py

clean:
	rm -rf $(VENV) $(SAMPLE) reports/*/
