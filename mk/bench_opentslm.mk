# OpenTSLM against the PyTorch reference (issue 12): time to first token, decode speed and RSS of
# tslm and of the official computation in PyTorch fp32 on the same checkpoints and prompts.

.PHONY: bench-opentslm-torch

OT_TORCH_CASES   ?= sp-har,sp-ecg,flamingo-har
OT_TORCH_TYPES   ?= q8_0
OT_TORCH_REPS    ?= 3
OT_TORCH_THREADS ?= 2

## bench-opentslm-torch: TTFT, decode steps/s and peak RSS of tslm (OT_TORCH_TYPES, default q8_0)
## and of the PyTorch reference (fp32, tools/opentslm_reference.py, SmolLM2 from the GGUF) on the
## HAR prompt (3 x 128 samples, 329 SP positions) and the ECG prompt (12 x 1000, 3,577 positions),
## SoftPrompt and Flamingo (OT_TORCH_CASES), interleaved runs (OT_TORCH_REPS), medians, ratios
## against the issue's targets (TTFT ≥ 3×, decode ≥ 5×). Random-init checkpoints in the official
## layouts, shared with bench-opentslm (.cache/bench-opentslm). The table goes to stdout and
## .cache/bench-opentslm-torch.md; about 8 min at q8_0 on 2 cores (the ECG rows take most of it).
bench-opentslm-torch: deps models release
	python3 -m pip install -q -r tools/requirements.txt
	python3 tools/bench_opentslm_torch.py --tslm $(BIN_RELEASE) --cases $(OT_TORCH_CASES) \
	  --types $(OT_TORCH_TYPES) --reps $(OT_TORCH_REPS) --threads $(OT_TORCH_THREADS)
