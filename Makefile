# DualSR for QGIS. `make demo` and `make test` work on a fresh Debian 12 machine (they run setup).
SHELL := /bin/bash
PY := .venv/bin/python
PLUGIN_DIR := build/plugins
SITE = $(shell $(PY) -c "import torch, pathlib; print(pathlib.Path(torch.__file__).resolve().parents[1])")
QGIS_ENV = QT_QPA_PLATFORM=offscreen QGIS_PLUGINPATH=$(CURDIR)/$(PLUGIN_DIR) \
	QGIS_CUSTOM_CONFIG_PATH=$(CURDIR)/build/qgis-profile PYTHONPATH=$(SITE)
DATA ?= $(abspath ../shared/data)
PROFILE ?= $(HOME)/.local/share/QGIS/QGIS3/profiles/default

.PHONY: setup demo test test-core test-plugin test-cli test-package test-desktop test-slow test-gpu test-ltr lint fixtures install package \
	bench bench-quality weights clean

setup:
	scripts/setup.sh

$(PLUGIN_DIR)/dualsr:
	mkdir -p $(PLUGIN_DIR) && ln -sfn $(CURDIR) $(PLUGIN_DIR)/dualsr

demo: setup $(PLUGIN_DIR)/dualsr
	$(QGIS_ENV) qgis_process.bin plugins enable dualsr >/dev/null 2>&1 || true  # non-zero when already enabled
	$(QGIS_ENV) $(PY) scripts/demo.py

test: setup test-core test-plugin test-cli test-package test-desktop

test-core:
	$(PY) -m pytest tests/core -q

test-plugin:
	QT_QPA_PLATFORM=offscreen $(PY) -m pytest tests/algorithms tests/provider tests/installer -q

test-cli:
	QT_QPA_PLATFORM=offscreen $(PY) -m pytest tests/cli -q

test-package:  # builds the zip, installs it into a clean profile, runs it through qgis_process
	QT_QPA_PLATFORM=offscreen $(PY) -m pytest tests/package -q

test-desktop:  # QGIS desktop under Xvfb (skipped without xvfb-run); screenshot in build/desktop/
	$(PY) -m pytest tests/desktop -q

test-slow: setup
	QT_QPA_PLATFORM=offscreen $(PY) -m pytest tests -q -m slow

test-gpu: setup
	QT_QPA_PLATFORM=offscreen $(PY) -m pytest tests -q -m gpu

test-ltr:  # `make test` on QGIS 3.40 LTR: a Debian 13 chroot built once under build/ltr-root
	@[ "$$(id -u)" -eq 0 ] || { echo "make test-ltr needs root (debootstrap, chroot, mount): sudo make test-ltr" >&2; exit 2; }
	scripts/test_ltr.sh

lint:
	$(PY) -m ruff --version >/dev/null 2>&1 || .venv/bin/pip install -q ruff
	$(PY) -m ruff check --select F,E,W,B --ignore B905 --line-length 120 .
	$(PY) -m pytest tests/core/test_import_boundary.py -q

fixtures: $(PLUGIN_DIR)/dualsr
	PYTHONPATH=$(CURDIR)/$(PLUGIN_DIR):$(SITE) QT_QPA_PLATFORM=offscreen $(PY) tests/data/make_fixtures.py

install: setup
	mkdir -p "$(PROFILE)/python/plugins"
	ln -sfn $(CURDIR) "$(PROFILE)/python/plugins/dualsr"
	QT_QPA_PLATFORM=offscreen QGIS_CUSTOM_CONFIG_PATH=$(dir $(patsubst %/,%,$(dir $(PROFILE)))) PYTHONPATH=$(SITE) \
		qgis_process.bin plugins enable dualsr
	@echo "Linked $(CURDIR) as $(PROFILE)/python/plugins/dualsr and enabled it."

DIST ?= dist
PACKAGE_EXCLUDE := tests scripts .ci .gitignore .gitattributes Makefile pytest.ini build dist docs/_build
package:  # the zip for "Install from ZIP": every committed file (HEAD) except tests, scripts, CI and build files
	mkdir -p $(DIST)
	rm -f $(DIST)/dualsr.zip
	git archive --format=zip --prefix=dualsr/ -o $(DIST)/dualsr.zip HEAD -- . \
		$(foreach p,$(PACKAGE_EXCLUDE),':(exclude)$(p)') ':(exclude,glob)**/tests/**' ':(exclude,glob)**/__pycache__/**'
	@echo "$(DIST)/dualsr.zip: $$(du -k $(DIST)/dualsr.zip | cut -f1) KB, the committed files of HEAD without tests"

bench: setup $(PLUGIN_DIR)/dualsr
	$(QGIS_ENV) qgis_process.bin plugins enable dualsr >/dev/null 2>&1 || true  # non-zero when already enabled
	$(QGIS_ENV) $(PY) scripts/bench.py $(BENCH_ARGS)

bench-quality: setup
	$(PY) scripts/bench_quality.py --data "$(DATA)"

weights: setup
	$(PY) scripts/train_weights.py --data "$(DATA)"

clean:  # keeps build/weights and build/table: training checkpoints that resume
	rm -rf build/plugins build/qgis-profile dist demo_output bench_output .pytest_cache
	find . -name __pycache__ -prune -exec rm -rf {} +
