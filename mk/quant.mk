# Quantization quality (issue 13): perplexity of SmolLM2-135M under each storage type and
# quantizer, with `tslm perplexity` (llama-perplexity's protocol) on a public-domain text.

.PHONY: perplexity quant-eval perplexity-smoke quant-fixtures

## quant-eval (alias perplexity): the README's "Quantization quality" table — builds f16, q8_0,
## q4_0/q4_1 (round-to-nearest and --quantizer search), the K types and the GGUF's own q4_1 from the pinned
## model, runs 20 windows of 512 tokens each (PPL_CHUNKS) and prints the table. Long: 1–2 min per
## model on 2 idle cores, 10 models.
PPL_CHUNKS ?= 20
quant-eval perplexity: deps models
	$(SWIFT) build $(RELEASE) --product tslm
	tools/perplexity_eval.sh $(BIN_RELEASE) $(PPL_CHUNKS)

## perplexity-smoke (in `make test`): 2 windows of 64 tokens on q8_0, --save-logits then
## --kl-divergence against itself (KL 0, same top token everywhere).
perplexity-smoke: deps models
	$(SWIFT) build $(RELEASE) --product tslm
	tools/perplexity_eval.sh --smoke $(BIN_RELEASE)

## quant-fixtures: regenerate the search and K quantizers' fixtures (needs numpy and gguf==0.19.0).
quant-fixtures:
	python3 tools/quant_search_reference.py
	python3 tools/kquant_reference.py

EXTRA_TESTS += perplexity-smoke
