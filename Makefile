# make run: install the runtime dependencies into .venv and start every Procfile process (gateway on 127.0.0.1:5100)
# make test: install everything (pip packages with the test extras, Debian's Lua 5.1 packages) and run every test
VENV ?= .venv
PY := $(VENV)/bin/python
RUN_STAMP := $(VENV)/.installed-run
STAMP := $(VENV)/.installed
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)

.PHONY: install install-run system-deps run test bench bench-compare plugin lint clean

# runtime only: what `make run` needs (no test extras)
$(RUN_STAMP): pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e .
	touch $(RUN_STAMP)

$(STAMP): $(RUN_STAMP)
	$(PY) -m pip install --quiet -e '.[test]'
	touch $(STAMP)

install-run: $(RUN_STAMP)

install: $(STAMP)

# the Procfile is written from the package's process table (services/procfile.py)
Procfile: services/procfile.py
	python3 -m services.procfile Procfile

system-deps:
	sh tools/install-system-deps.sh

# honcho names itself in BRIDGE_PARENT_PID (the shell's pid, which exec hands on), so a killed honcho
# leaves no process behind (services/parentwatch.py)
run: install-run Procfile
	$(VENV)/bin/lrbridge checkconfig
	BRIDGE_PARENT_PID=$$$$ exec honcho start -f Procfile

test: install system-deps
	$(PY) -m pytest -q

# make bench: the benchmark table (docs/PERFORMANCE.md); make bench-compare: the same beside nginx + nchan
BENCH_STAMP := $(VENV)/.bench-installed

$(BENCH_STAMP): $(STAMP)
	$(PY) -m pip install --quiet -e '.[test,bench]'
	touch $(BENCH_STAMP)

bench: $(BENCH_STAMP)
	$(PY) -m benchmarks

bench-compare: $(BENCH_STAMP)
	sh benchmarks/install-nchan.sh
	$(PY) -m benchmarks --compare

clean:
	rm -rf $(VENV) dist build *.egg-info logs

# make plugin: dist/LightroomBridge-<version>.lrplugin.zip for Lightroom's Plug-in Manager (docs/PLUGIN.md)
plugin:
	python3 -m services.plugin_package dist

.PHONY: lint-lua
lint-lua:
	luacheck --config plugin/.luacheckrc plugin
	luacheck --config tests/lua/.luacheckrc tests/lua

# make soak: SOAK_SECONDS (default 600) of traffic over every transport, a fault every 20-40 s, every message
# checked (docs/DURABILITY.md, "The soak test"); SOAK_SEED=N replays a fault schedule; SOAK_ARGS more options
SOAK_SECONDS ?= 600
.PHONY: soak
soak: install
	$(PY) -m benchmarks.soak --seconds $(SOAK_SECONDS) $(if $(SOAK_SEED),--seed $(SOAK_SEED)) $(SOAK_ARGS)
