# Two entry points (see README): `make run` and `make test`; `make check` is the quick inner loop
# (ruff and the fast tests). All create .venv as needed.
VENV ?= .venv
PORT ?= 8501

.PHONY: run test check install lint bench samples clean

run: install
	$(VENV)/bin/streamlit run app.py --server.port $(PORT)

test:
	bash scripts/bootstrap.sh --with-browser
	bash scripts/test.sh

# Ruff, then every test that needs no browser, no AppTest page run and no extra process or
# long server run (the markers are in pyproject.toml); PostgreSQL cases are skipped.
check: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/python -m pytest -q -m "not browser and not slow and not app"

install:
	bash scripts/bootstrap.sh

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

# Every benchmark runs, even after one misses its target; the target fails at the end if any did.
BENCHMARKS = batch_throughput usage_page batch_page page_speed batch_table batch_import \
	review_export render_speed triage_speed triage_accuracy

bench: install
	@missed=""; for name in $(BENCHMARKS); do \
		echo "== benchmarks/$$name.py"; \
		$(VENV)/bin/python benchmarks/$$name.py || missed="$$missed $$name"; \
	done; \
	if [ -n "$$missed" ]; then echo "missed a target:$$missed"; exit 1; fi

samples: install
	$(VENV)/bin/python scripts/make_samples.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache test-artifacts
