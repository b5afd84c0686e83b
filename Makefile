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

bench: install
	$(VENV)/bin/python benchmarks/batch_throughput.py
	$(VENV)/bin/python benchmarks/usage_page.py
	$(VENV)/bin/python benchmarks/batch_page.py
	$(VENV)/bin/python benchmarks/page_speed.py
	$(VENV)/bin/python benchmarks/batch_table.py
	$(VENV)/bin/python benchmarks/batch_import.py
	$(VENV)/bin/python benchmarks/review_export.py
	$(VENV)/bin/python benchmarks/render_speed.py
	$(VENV)/bin/python benchmarks/triage_speed.py
	$(VENV)/bin/python benchmarks/triage_accuracy.py

samples: install
	$(VENV)/bin/python scripts/make_samples.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache test-artifacts
