# fleetguard.devices: build, test and CI targets.   `make help` lists them; `make test` is what CI runs.
#
# Every target makes what it needs itself (venvs, collection trees), so any target works from a fresh
# clone in a folder of any name, with an empty HOME. Venvs are re-created when their requirements file
# changes (stamp files). Helper scripts live in tools/.

SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help
.DELETE_ON_ERROR:
MAKEFLAGS += --no-builtin-rules --no-print-directory

ROOT := $(CURDIR)
NAMESPACE := fleetguard
NAME := devices
COLLECTION := $(NAMESPACE).$(NAME)

# --- interpreters ---------------------------------------------------------------------------------
# Python 3.11 is the main leg (ansible-core 2.19, ansible-lint, ansible-test sanity). Python 3.12 runs
# unit and integration tests again with the newest ansible-core; without one that leg is skipped,
# loudly. Override either: make test PYTHON312=/path/to/python3.12 (empty disables the leg).
ifeq ($(origin PYTHON311),undefined)
PYTHON311 := $(shell tools/find-python 3.11)
endif
ifeq ($(origin PYTHON312),undefined)
PYTHON312 := $(shell tools/find-python 3.12)
endif
export PYTHON311 PYTHON312

# --- paths -----------------------------------------------------------------------------------------
VENV := .venv
VENV312 := .venv312
VENV_IMPORTER := .venv-importer
# A symlink to the repository root: pytest, ansible-playbook and ansible-doc see the live code.
COLLECTIONS_DIR := build/collections
LINK_TREE := $(COLLECTIONS_DIR)/ansible_collections/$(NAMESPACE)/$(NAME)
# A real copy for ansible-test, which refuses symlinked collection roots and walks the whole tree.
SANITY_TREE := build/sanity/ansible_collections/$(NAMESPACE)/$(NAME)
DIST_DIR := build/dist
EE_DIR := build/ee
CHROMIUM := /usr/bin/chromium

# Extra arguments: make sanity SANITY_ARGS='--test pep8'   make units PYTEST_ARGS='-n auto -k feishu'
SANITY_ARGS ?=
PYTEST_ARGS ?=
LINT_ARGS ?=

# Environment for every tool run: this venv's tools first, the collection from the symlinked tree
# (ANSIBLE_COLLECTIONS_PATH replaces the default ~/.ansible/collections:/usr/share/ansible/collections).
RUN_ENV = PATH="$(ROOT)/$(1)/bin:$$PATH" ANSIBLE_COLLECTIONS_PATH="$(ROOT)/$(COLLECTIONS_DIR)"
RUN := env $(call RUN_ENV,$(VENV))
RUN312 := env $(call RUN_ENV,$(VENV312))

# pip here also looks at local wheel folders and prints a harmless warning per missing one: hide those.
PIP_INSTALL = $(1)/bin/python -m pip install --disable-pip-version-check -q
PIP_FILTER := { grep -v -e 'is ignored: it is neither a file nor a directory' || true; }

# The order `make test` runs in; it stops at the first failure.
TEST_STEPS := venvs tree changelog-lint lint docs docs-lint sanity units core-floor integration benchmark-smoke molecule importer ee

.PHONY: eda
.PHONY: help test demo benchmark benchmark-smoke venvs venv venv312 venv-importer tree tree-link tree-sanity sanity lint docs units \
        integration importer build changelog-lint clean clean-venvs distclean molecule chromium ee

help:
	@echo "make test            everything below, in order, stopping at the first failure, with timings"
	@echo "make venv            $(VENV) (Python 3.11) from requirements-dev.txt"
	@echo "make venv312         $(VENV312) (Python 3.12) from requirements-dev-py312.txt, if a 3.12 exists"
	@echo "make venv-importer   $(VENV_IMPORTER) from requirements-importer.txt (galaxy-importer)"
	@echo "make tree            $(LINK_TREE) -> repo root, and a fresh copy at $(SANITY_TREE)"
	@echo "make changelog-lint  antsibull-changelog lint + lint-changelog-yaml"
	@echo "make lint            ansible-lint --profile production (config: .ansible-lint); shellcheck on tools/, .ci/run"
	@echo "make docs            ansible-doc on every plugin and role argument spec"
	@echo "make sanity          ansible-test sanity --python 3.11 in the copied tree"
	@echo "make units           pytest tests/unit tests/sandbox with 3.11, then 3.12"
	@echo "make integration     pytest tests/integration with 3.11, then 3.12"
	@echo "make importer        ansible-galaxy collection build + galaxy-importer on the tarball"
	@echo "make build           the galaxy tarball only, in $(DIST_DIR)/"
	@echo "make molecule        molecule test for every role scenario in extensions/molecule (sandbox on localhost)"
	@echo "make chromium        install Debian's chromium (headless, for the audit and stale_devices report tests) if it is missing"
	@echo "make ee              ansible-builder create: the execution environment's build context in $(EE_DIR)/"
	@echo "make eda             ansible-rulebook (requirements-eda.txt) into $(VENV) and $(VENV312); checks for a Java 17 runtime"
	@echo "make demo            the sandbox story: audit, quarantine (check, apply, re-run), audit again, release, stale devices"
	@echo "make benchmark       the collection vs an ansible.builtin.uri loop vs the APIs' bounds (full size, 15-20 min;"
	@echo "                     writes benchmarks/results/latest.{json,txt,png})"
	@echo "make benchmark-smoke the benchmark at smoke size: call counts as designed (part of make test)"
	@echo "make clean           remove build output; clean-venvs: the venvs; distclean: both"
	@echo "Python 3.11: $(or $(PYTHON311),NOT FOUND)   Python 3.12: $(or $(PYTHON312),not found: 3.12 leg skipped)"

test:
	@MAKE="$(MAKE)" tools/run-steps $(TEST_STEPS)

# --- virtual environments ---------------------------------------------------------------------------
venvs:
	@$(MAKE) -j3 --output-sync=target venv venv312 venv-importer

venv: $(VENV)/.stamp
$(VENV)/.stamp: requirements-dev.txt
	@test -n "$(PYTHON311)" || { echo "*** No Python 3.11 found: set PYTHON311=/path/to/python3.11" >&2; exit 1; }
	rm -rf $(VENV)
	$(PYTHON311) -m venv $(VENV)
	$(call PIP_INSTALL,$(VENV)) -r requirements-dev.txt 2>&1 | $(PIP_FILTER)
	@touch $@
	@echo "$(VENV): $$($(VENV)/bin/python --version), ansible-core $$($(VENV)/bin/python -c 'import ansible; print(ansible.__version__)')"

ifeq ($(PYTHON312),)
venv312:
	@echo "*** WARNING: no Python 3.12 found: the Python 3.12 test leg is SKIPPED (set PYTHON312=/path/to/python3.12)"
else
venv312: $(VENV312)/.stamp
endif
$(VENV312)/.stamp: requirements-dev-py312.txt
	rm -rf $(VENV312)
	$(PYTHON312) -m venv $(VENV312)
	$(call PIP_INSTALL,$(VENV312)) -r requirements-dev-py312.txt 2>&1 | $(PIP_FILTER)
	@touch $@
	@echo "$(VENV312): $$($(VENV312)/bin/python --version), ansible-core $$($(VENV312)/bin/python -c 'import ansible; print(ansible.__version__)')"

venv-importer: $(VENV_IMPORTER)/.stamp
$(VENV_IMPORTER)/.stamp: requirements-importer.txt
	@test -n "$(PYTHON311)" || { echo "*** No Python 3.11 found: set PYTHON311=/path/to/python3.11" >&2; exit 1; }
	rm -rf $(VENV_IMPORTER)
	$(PYTHON311) -m venv $(VENV_IMPORTER)
	$(call PIP_INSTALL,$(VENV_IMPORTER)) -r requirements-importer.txt 2>&1 | $(PIP_FILTER)
	@touch $@

# --- Event-Driven Ansible ---------------------------------------------------------------------------
# ansible-rulebook runs the event sources of extensions/eda in the integration tests and the demo. It is added to
# the test venvs beside their own pins (requirements-eda.txt was checked to resolve there without changing them),
# with a stamp file of its own: a new requirements-eda.txt re-runs the install, and the venvs are never removed
# for it. Its rule engine needs a Java 17 runtime (tools/find-java): none is a failure, never a skip.
eda: venv venv312 $(VENV)/.stamp-eda
	@if [ -f $(VENV312)/.stamp ] && [ -n "$(PYTHON312)" ]; then $(MAKE) $(VENV312)/.stamp-eda; fi
	@java_home=$$(tools/find-java 17) || { echo "*** ansible-rulebook needs a Java 17 runtime: apt-get install openjdk-17-jre-headless" >&2; exit 1; }; \
	  echo "eda: ansible-rulebook $$($(VENV)/bin/python -c 'import importlib.metadata as m; print(m.version("ansible-rulebook"))'), JAVA_HOME=$$java_home"

$(VENV)/.stamp-eda: requirements-eda.txt $(VENV)/.stamp
	$(call PIP_INSTALL,$(VENV)) -r requirements-eda.txt 2>&1 | $(PIP_FILTER)
	@touch $@

$(VENV312)/.stamp-eda: requirements-eda.txt $(VENV312)/.stamp
	$(call PIP_INSTALL,$(VENV312)) -r requirements-eda.txt 2>&1 | $(PIP_FILTER)
	@touch $@

# --- collection trees -------------------------------------------------------------------------------
tree: tree-link tree-sanity

tree-link:
	@mkdir -p $(dir $(LINK_TREE))
	@ln -sfn ../../../.. $(LINK_TREE)
	@test -f $(LINK_TREE)/galaxy.yml || { echo "*** $(LINK_TREE) does not resolve to the repository root" >&2; exit 1; }
	@echo "tree: $(LINK_TREE) -> $$(readlink $(LINK_TREE))"

tree-sanity:
	@tools/sanity-tree $(SANITY_TREE)

# --- checks -----------------------------------------------------------------------------------------
changelog-lint: venv
	$(RUN) antsibull-changelog lint
	$(RUN) antsibull-changelog lint-changelog-yaml changelogs/changelog.yaml

# ruff (ruff.toml): pyflakes, pycodestyle, bugbear and a McCabe complexity gate of 10 over all Python here.
lint: venv tree-link
	$(RUN) ruff check --no-cache .
	$(RUN) ansible-lint --profile production $(LINT_ARGS)
	$(RUN) shellcheck $$(grep -l -E '^#!(/usr/bin/env bash|/bin/bash|/bin/sh)' tools/* .ci/run)

docs: venv tree-link
	$(RUN) tools/check-docs

# ansible-test runs in the copied tree with a HOME of its own under build/: its per-test venvs
# (~/.ansible/test/venv, reused while their requirements stay the same), its pip bootstrap cache and
# pip's cache stay there, and the user's ~/.ansible is never read or written. The pip bootstrap it would
# download is replaced by tools/get_pip_shim.py; tools/install-get-pip-shim puts it into that HOME, with
# a copy of the user's pip configuration (ansible-test passes pip nothing but HOME and PATH).
ANSIBLE_TEST_HOME := $(ROOT)/build/ansible-test-home
# $(call ANSIBLE_TEST,VENV): ansible-test of that venv, run in $(SANITY_TREE) with that HOME.
ANSIBLE_TEST = cd $(SANITY_TREE) && env HOME="$(ANSIBLE_TEST_HOME)" PATH="$(ROOT)/$(1)/bin:$$PATH" ansible-test

sanity: venv tree-sanity
	@tools/install-get-pip-shim $(VENV)/bin/python $(ANSIBLE_TEST_HOME)
	$(call ANSIBLE_TEST,$(VENV)) sanity --python 3.11 $(SANITY_ARGS) 2>&1 | tee $(ROOT)/build/sanity.log
	@! grep -q 'All targets skipped' build/sanity.log || \
	  { echo "*** ansible-test saw no files in $(SANITY_TREE): a silent pass is refused" >&2; exit 1; }

# pytest on the live tree (tests/unit, and tests/sandbox: the emulators' own tests) with 3.11, and tests/sandbox
# with 3.12; then `ansible-test units --venv` in the copied tree with 3.11 and 3.12, as a Galaxy user would run it:
# ansible-test builds a venv (under the copy's tests/output) from its own unit-test requirements and
# tests/unit/requirements.txt and runs tests/unit in module, module_utils and controller contexts (about 20 s per
# Python). So tests/unit runs under each Python twice, not three times.
UNITS_ARGS ?=
# The 3.11 run measures which lines of plugins/ the unit tests execute (modules run by ansible-playbook in the
# integration tests are not counted) and fails under the floor, set from the figure when it was introduced (97 %).
COVERAGE_FLOOR ?= 95
COVERAGE_ARGS = --cov=ansible_collections.fleetguard.devices.plugins --cov-report=term:skip-covered \
                --cov-fail-under=$(COVERAGE_FLOOR)
units: venv venv312 tree-link tree-sanity
	$(RUN) tools/pytest-run py3.11 $(VENV)/bin/python tests/unit tests/sandbox -- $(COVERAGE_ARGS) $(PYTEST_ARGS)
	@if [ -f $(VENV312)/.stamp ] && [ -n "$(PYTHON312)" ]; then \
	  $(RUN312) tools/pytest-run py3.12 $(VENV312)/bin/python tests/sandbox -- $(PYTEST_ARGS); \
	else echo "*** WARNING: no $(VENV312): unit tests under Python 3.12 SKIPPED"; fi
	@tools/install-get-pip-shim $(VENV)/bin/python $(ANSIBLE_TEST_HOME)
	$(call ANSIBLE_TEST,$(VENV)) units --venv --python 3.11 $(UNITS_ARGS) 2>&1 | tee $(ROOT)/build/units-py3.11.log
	@! grep -q 'All targets skipped' build/units-py3.11.log || \
	  { echo "*** ansible-test found no unit tests in $(SANITY_TREE): a silent pass is refused" >&2; exit 1; }
	@if [ -f $(VENV312)/.stamp ] && [ -n "$(PYTHON312)" ]; then \
	  tools/install-get-pip-shim $(VENV312)/bin/python $(ANSIBLE_TEST_HOME); \
	  echo '$(call ANSIBLE_TEST,$(VENV312)) units --venv --python 3.12 $(UNITS_ARGS)'; \
	  ( $(call ANSIBLE_TEST,$(VENV312)) units --venv --python 3.12 $(UNITS_ARGS) ) 2>&1 | tee build/units-py3.12.log; \
	  ! grep -q 'All targets skipped' build/units-py3.12.log || \
	    { echo "*** ansible-test found no unit tests in $(SANITY_TREE): a silent pass is refused" >&2; exit 1; }; \
	else echo "*** WARNING: no $(VENV312): ansible-test units under Python 3.12 SKIPPED"; fi

# Integration tests spend most of their time in ansible-playbook start-up and in waiting on the
# emulators' rate limits: three workers on two cores (each test has its own emulators on free ports) overlap
# those waits. Tests marked `once` run on the 3.11 leg only (tests/integration/conftest.py).
INTEGRATION_WORKERS ?= 3
# The 15 slowest tests are listed after each leg: where CI's time goes.
integration: venv venv312 eda tree-link
	$(RUN) tools/pytest-run py3.11 $(VENV)/bin/python tests/integration -- -n $(INTEGRATION_WORKERS) --durations=15 $(PYTEST_ARGS)
	@if [ -f $(VENV312)/.stamp ] && [ -n "$(PYTHON312)" ]; then \
	  $(RUN312) tools/pytest-run py3.12 $(VENV312)/bin/python tests/integration -- -n $(INTEGRATION_WORKERS) --durations=15 $(PYTEST_ARGS); \
	else echo "*** WARNING: no $(VENV312): integration tests under Python 3.12 SKIPPED"; fi

build: venv
	rm -rf $(DIST_DIR)
	$(RUN) ansible-galaxy collection build --force --output-path $(DIST_DIR)

importer: build venv-importer
	tools/run-importer $(VENV_IMPORTER) $(DIST_DIR)/$(NAMESPACE)-$(NAME)-$$(sed -n 's/^version: *//p' galaxy.yml | tr -d "\"'").tar.gz build/importer

# --- documentation lint (antsibull-docs) --------------------------------------------------------------
# antsibull-docs lint-collection-docs --plugin-docs: every plugin's, module's and role's documentation
# rendered as the Ansible documentation site does, its schema and markup checked, and every reference to
# this collection's content and to ansible.builtin (M(), P(), O(), RV(), …) resolved. Its own venv
# (.venv-docs, from requirements-dev-docs.txt): antsibull-docs brings Sphinx and friends.
VENV_DOCS := .venv-docs
.PHONY: venv-docs docs-lint
venv-docs: $(VENV_DOCS)/.stamp
$(VENV_DOCS)/.stamp: requirements-dev-docs.txt
	@test -n "$(PYTHON311)" || { echo "*** No Python 3.11 found: set PYTHON311=/path/to/python3.11" >&2; exit 1; }
	rm -rf $(VENV_DOCS)
	$(PYTHON311) -m venv $(VENV_DOCS)
	$(call PIP_INSTALL,$(VENV_DOCS)) -r requirements-dev-docs.txt 2>&1 | $(PIP_FILTER)
	@touch $@

docs-lint: venv-docs tree-link
	cd $(LINK_TREE) && env $(call RUN_ENV,$(VENV_DOCS)) antsibull-docs lint-collection-docs \
	  --plugin-docs --validate-collection-refs dependent .
	@echo "docs-lint: antsibull-docs $$($(VENV_DOCS)/bin/python -c 'import importlib.metadata as m; print(m.version("antsibull-docs"))'): no finding"

# --- the floor of the supported ansible-core range ------------------------------------------------------
# meta/runtime.yml declares requires_ansible ">=2.19.0". The 3.11 leg (.venv) runs everything with the
# latest 2.19 patch (ansible-test sanity before 2.19.14 rejects the `secret` documentation key the inventory
# plugins use); this runs ansible-doc on every plugin and role and the unit tests again with 2.19.0 itself
# (about 30 s, 15 s more when it makes its venv). The integration tests too:
# make core-floor CORE_FLOOR_TESTS="tests/unit tests/integration" (about 2.5 min more).
VENV_CORE_FLOOR := .venv-core-floor
CORE_FLOOR_TESTS ?= tests/unit
.PHONY: venv-core-floor core-floor
venv-core-floor: $(VENV_CORE_FLOOR)/.stamp
$(VENV_CORE_FLOOR)/.stamp: requirements-dev-core-floor.txt
	@test -n "$(PYTHON311)" || { echo "*** No Python 3.11 found: set PYTHON311=/path/to/python3.11" >&2; exit 1; }
	rm -rf $(VENV_CORE_FLOOR)
	$(PYTHON311) -m venv $(VENV_CORE_FLOOR)
	$(call PIP_INSTALL,$(VENV_CORE_FLOOR)) -r requirements-dev-core-floor.txt 2>&1 | $(PIP_FILTER)
	@touch $@

core-floor: venv-core-floor tree-link
	env $(call RUN_ENV,$(VENV_CORE_FLOOR)) tools/check-docs
	env $(call RUN_ENV,$(VENV_CORE_FLOOR)) tools/pytest-run core-2.19.0 $(VENV_CORE_FLOOR)/bin/python $(CORE_FLOOR_TESTS) -- \
	  -n $(INTEGRATION_WORKERS) $(PYTEST_ARGS)

# --- cleaning ---------------------------------------------------------------------------------------
clean:
	rm -rf build dist .ansible tests/output .pytest_cache importer_result.json
	find . -path ./.git -prune -o -path './.venv*' -prune -o -name __pycache__ -type d -prune -exec rm -rf {} +

clean-venvs:
	rm -rf $(VENV) $(VENV312) $(VENV_IMPORTER)

distclean: clean clean-venvs

# --- roles: molecule scenarios, execution environment --------------------------------------------------
# Each scenario (extensions/molecule/<role>) starts its own sandbox in create and stops it in destroy;
# the audit and stale_devices scenarios render their HTML reports in headless Chromium, installed here when missing.
MOLECULE_ARGS ?= --all

molecule: venv tree-link chromium
	$(RUN) ANSIBLE_NOCOLOR=1 PY_COLORS=0 molecule test $(MOLECULE_ARGS)

chromium:
	@if [ -x $(CHROMIUM) ]; then echo "chromium: $$($(CHROMIUM) --version 2>/dev/null)"; else \
	  echo "chromium: $(CHROMIUM) missing, installing Debian's chromium"; \
	  if [ "$$(id -u)" = 0 ]; then sudo=; else sudo=sudo; fi; \
	  $$sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y -qq chromium >/dev/null \
	    && echo "chromium: $$($(CHROMIUM) --version 2>/dev/null)"; fi

# `create` only writes the build context (Containerfile and files); `ansible-builder build` needs a
# container engine, which CI does not have.
# tools/check-ee-versions keeps the image's Python and ansible-core, the test legs and requires_ansible in
# step, and requirements.txt free of pins and caps.
ee: build
	rm -rf $(EE_DIR)
	$(RUN) $(VENV)/bin/python tools/check-ee-versions
	$(RUN) ansible-builder create -f execution-environment.yml -c $(EE_DIR) --output-filename Containerfile
	@test -s $(EE_DIR)/Containerfile && ls $(EE_DIR)/_build/collections/$(NAMESPACE)-$(NAME)-*.tar.gz >/dev/null
	@grep -q '^ARG EE_BASE_IMAGE=.*python-312' $(EE_DIR)/Containerfile || \
	  { echo "*** $(EE_DIR)/Containerfile does not build on the Python 3.12 base image" >&2; exit 1; }

# --- demo -------------------------------------------------------------------------------------------
# (owned by the demo's author; keep the targets above untouched when adding it)

demo: venv eda tree-link
	@tools/demo

# Not part of `make test`: timings do not belong in tests. Full size (15-20 minutes), against the emulators
# with the APIs' published limits and 30 ms latency: the collection in one task, per inventory host (forks 10)
# and in two concurrent job slices, against an ansible.builtin.uri loop and the APIs' bounds. Writes
# benchmarks/results/latest.{json,txt,png}, which are committed (see benchmarks/run.py and docs/performance.md);
# BENCHMARK_ARGS='--records 200 --out /tmp/bench' runs it smaller, elsewhere.
BENCHMARK_ARGS ?=
benchmark: venv tree-link
	$(call PIP_INSTALL,$(VENV)) -r benchmarks/requirements.txt 2>&1 | $(PIP_FILTER)
	$(RUN) $(VENV)/bin/python benchmarks/run.py $(BENCHMARK_ARGS)

# In `make test`: the benchmark at smoke size proves it runs and that call counts match the design
# (e.g. an audit of 200 records = 1 token + 3 list calls; two slices write each device exactly once);
# it asserts no timing and writes no results.
benchmark-smoke: venv tree-link
	$(RUN) $(VENV)/bin/python benchmarks/run.py --smoke
