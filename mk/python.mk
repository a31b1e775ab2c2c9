# Python package (python/): ctypes bindings over libtslm.so, installed into a venv and tested with
# pytest against the tslm CLI (same answers, ids, logits and forecasts). `python-test` runs at the
# end of `make test`; `ray-test` (batch runs on a local Ray cluster, a long run) does not.

PYPKG_VENV     := .cache/python-venv
PYPKG_PY       := $(PYPKG_VENV)/bin/python
PYPKG_MODELS   := .cache/out
PYPKG_DEMO     := $(PYPKG_MODELS)/basicmotions-q8_0.tslm
PYPKG_LSTM     := $(PYPKG_MODELS)/airline-lstm.tslm
PYPKG_TEXT     := $(PYPKG_MODELS)/smollm2-q8_0.tslm
PYPKG_CHATTIME := $(PYPKG_MODELS)/chattime-tiny.tslm
PYPKG_CT_GGUF  := Tests/TSLMRuntimeTests/Fixtures/chattime/model.q8_0.gguf
# pytest runs from the repository root, so `import tslm` is the installed package, not python/tslm.
PYPKG_TEST_ENV := TSLM_CLI=$(CURDIR)/$(BIN_RELEASE) TSLM_TEST_MODELS=$(CURDIR)/$(PYPKG_MODELS) TSLM_REPO=$(CURDIR)
PYPKG_PYTEST   := $(PYPKG_TEST_ENV) $(PYPKG_PY) -m pytest -p no:cacheprovider

.PHONY: python-prep python-install python-models python-test ray-test

EXTRA_TESTS += python-test

## python-prep: libtslm.so and the release CLI, the models the tests use, the package installed.
python-prep: deps
	$(MAKE) --no-print-directory lib
	$(SWIFT) build $(RELEASE) --product tslm
	tools/fetch_smollm2.sh
	$(MAKE) --no-print-directory python-models
	$(MAKE) --no-print-directory python-install

## python-models: the demo models (as `make demo` / `make demo-forecast` convert them), SmolLM2
## as a text model and the tiny ChatTime test fixture, converted again when the CLI or an input is
## newer.
python-models: $(PYPKG_DEMO) $(PYPKG_LSTM) $(PYPKG_TEXT) $(PYPKG_CHATTIME)

$(PYPKG_DEMO): $(BIN_RELEASE) demo/basicmotions/model_checkpoint.pt demo/basicmotions/prompt.json $(SMOLLM2)
	@mkdir -p $(PYPKG_MODELS)
	$(BIN_RELEASE) convert demo/basicmotions/model_checkpoint.pt --base $(SMOLLM2) --preset $(DEMO_PRESET) \
	  --prompt demo/basicmotions/prompt.json -o $@ --type q8_0 -q

$(PYPKG_LSTM): $(BIN_RELEASE) demo/forecast/model.pt demo/forecast/forecast.json
	@mkdir -p $(PYPKG_MODELS)
	$(BIN_RELEASE) convert demo/forecast/model.pt --forecast-config demo/forecast/forecast.json \
	  --name "Airline LSTM" -o $@ -q

$(PYPKG_TEXT): $(BIN_RELEASE) $(SMOLLM2)
	@mkdir -p $(PYPKG_MODELS)
	$(BIN_RELEASE) convert $(SMOLLM2) -o $@ --type q8_0 -q

$(PYPKG_CHATTIME): $(BIN_RELEASE) $(PYPKG_CT_GGUF)
	@mkdir -p $(PYPKG_MODELS)
	$(BIN_RELEASE) convert $(PYPKG_CT_GGUF) -o $@ -q

## python-install: `pip install ./python` into .cache/python-venv (it sees the system's packages;
## numpy and pytest as pinned in python/requirements-test.txt). The package copies
## .build/release/libtslmc.so next to itself as libtslm.so.
python-install:
	@test -x $(PYPKG_PY) || python3 -m venv --without-pip --system-site-packages $(PYPKG_VENV)
	$(PYPKG_PY) -m pip install -q --disable-pip-version-check -r python/requirements-test.txt
	$(PYPKG_PY) -m pip install -q --disable-pip-version-check --no-deps --no-build-isolation --force-reinstall ./python
	@rm -rf python/build python/tslm.egg-info

## python-test: the Python package's tests (pytest, python/tests; the Ray test skips without ray).
python-test: python-prep
	$(PYPKG_PYTEST) -q python/tests --ignore=python/tests/test_ray.py

## ray-test: explain 200 recordings and forecast 2,000 windows on a local Ray cluster with 1 and 2
## workers, outputs equal to a sequential loop; prints the throughput (minutes on 2 cores).
ray-test: python-prep
	$(PYPKG_PY) -m pip install -q --disable-pip-version-check -r python/requirements-ray.txt
	$(PYPKG_PYTEST) -s -q -W ignore::DeprecationWarning python/tests/test_ray.py
