# BasicMotions demo: training, baselines and the quantization table (the demo itself and its
# q8_0 evaluation are `make demo` / `make demo-eval` in the top-level Makefile).

DEMO_TYPES    := f32 q8_0 q4_k_m q4_1 q4_0
BASELINES_PY  := .cache/baselines-venv/bin/python

.PHONY: demo-eval-all demo-train demo-train-flamingo demo-baselines demo-italypower demo-train-italypower

IPD_DIR := demo/italypower

## demo-eval-all: held-out accuracy and macro-F1 of both demo models (SoftPrompt, Flamingo) converted
## at f32, q8_0, q4_k_m, q4_1, q4_0 (the README's quantization table).
demo-eval-all: deps release
	tools/fetch_smollm2.sh
	@mkdir -p .cache/out
	@for variant in sp flamingo; do \
	  dir=$(DEMO_DIR); [ $$variant = flamingo ] && dir=$(DEMO_FL_DIR); \
	  for t in $(DEMO_TYPES); do \
	    $(BIN_RELEASE) convert $$dir/model_checkpoint.pt --base $(SMOLLM2) --preset $(DEMO_PRESET) \
	      --prompt $(DEMO_DIR)/prompt.json -o .cache/out/basicmotions-$$variant-$$t.tslm --type $$t -q || exit 1; \
	    echo "=== $$variant $$t"; \
	    $(BIN_RELEASE) eval -m .cache/out/basicmotions-$$variant-$$t.tslm --dir $(DEMO_DIR)/test \
	      --prompt $(DEMO_DIR)/prompt.json -n 160 | tail -2 || exit 1; \
	  done; \
	done

## demo-train: retrain the SoftPrompt demo from scratch (CPU, 1 thread, about 40 minutes on a
## shared 2-core machine) and re-export demo/basicmotions; seeded (tools/train_basicmotions.py).
demo-train:
	tools/fetch_smollm2.sh
	OMP_NUM_THREADS=1 python3 tools/train_basicmotions.py

## demo-train-flamingo: retrain the Flamingo demo from scratch (CPU, 2 threads) and re-export
## demo/basicmotions/flamingo; seeded (tools/train_basicmotions_flamingo.py).
demo-train-flamingo:
	tools/fetch_smollm2.sh
	python3 tools/train_basicmotions_flamingo.py

## demo-baselines: MiniRocket + ridge (aeon, own venv), features + logistic regression and the
## zero-shot backbone on the same split -> demo/basicmotions/baselines.json.
demo-baselines:
	tools/fetch_smollm2.sh
	@test -x $(BASELINES_PY) || { python3 -m venv .cache/baselines-venv && \
	  $(BASELINES_PY) -m pip install --quiet -r tools/requirements-baselines.txt; }
	OMP_NUM_THREADS=1 NUMBA_NUM_THREADS=1 python3 tools/demo_baselines.py

## demo-italypower: the second dataset: the OpenTSLM-SoftPrompt ItalyPowerDemand model
## (demo/italypower), converted at f32 and q8_0 and evaluated on the 1029 held-out days.
demo-italypower: deps release
	tools/fetch_smollm2.sh
	@mkdir -p .cache/out
	@for t in f32 q8_0; do \
	  $(BIN_RELEASE) convert $(IPD_DIR)/model_checkpoint.pt --base $(SMOLLM2) --preset custom \
	    --prompt $(IPD_DIR)/prompt.json -o .cache/out/italypower-$$t.tslm --type $$t -q || exit 1; \
	  echo "=== italypower $$t"; \
	  $(BIN_RELEASE) eval -m .cache/out/italypower-$$t.tslm --dir $(IPD_DIR)/test \
	    --prompt $(IPD_DIR)/prompt.json -n 8 | tail -2 || exit 1; \
	done

## demo-train-italypower: retrain it (CPU, 1 thread, seeded; tools/train_ucr.py) and re-export.
demo-train-italypower:
	tools/fetch_smollm2.sh
	OMP_NUM_THREADS=1 python3 tools/train_ucr.py --dataset italypower
