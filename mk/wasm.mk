# mk/wasm.mk: python.wasm (CPython 3.11 for WASI) for the wasm backend.
# Included by the top-level Makefile.
#
# `make python-wasm` builds build/wasm/{python.wasm,pybox.wasm,lib/python311.zip} with
# scripts/build-python-wasm.sh, only when missing. Builds are keyed by the
# script's hash: a changed script rebuilds, and a finished build is kept in
# $(WASM_CACHE) so a fresh clone (or CI) copies it instead of rebuilding.

WASM_DIR    ?= build/wasm
WASM_SCRIPT := scripts/build-python-wasm.sh
WASM_HASH   := $(shell cat $(WASM_SCRIPT) $(wildcard scripts/wasm/*) 2>/dev/null | sha256sum | cut -c1-16)
WASM_STAMP  := $(WASM_DIR)/.built-$(WASM_HASH)
WASM_CACHE  ?= $(if $(XDG_CACHE_HOME),$(XDG_CACHE_HOME),$(HOME)/.cache)/pybox/python-wasm/$(WASM_HASH)

.PHONY: python-wasm python-wasm-clean

python-wasm: $(WASM_STAMP) ## Build python.wasm, pybox.wasm and the stdlib zip into build/wasm (once per script version)

$(WASM_STAMP): $(WASM_SCRIPT) $(wildcard scripts/wasm/*)
	@rm -f $(WASM_DIR)/.built-*
	@if [ -f "$(WASM_CACHE)/python.wasm" ] && [ -f "$(WASM_CACHE)/pybox.wasm" ] && [ -f "$(WASM_CACHE)/lib/python311.zip" ]; then \
		echo "python-wasm: using cached build $(WASM_CACHE)"; \
		rm -rf $(WASM_DIR)/python.wasm $(WASM_DIR)/pybox.wasm $(WASM_DIR)/lib; mkdir -p $(WASM_DIR); \
		cp -a "$(WASM_CACHE)/." $(WASM_DIR)/; \
	else \
		$(WASM_SCRIPT) $(WASM_DIR) && \
		rm -rf "$(WASM_CACHE).tmp" && mkdir -p "$(WASM_CACHE).tmp" && \
		cp -a $(WASM_DIR)/python.wasm $(WASM_DIR)/pybox.wasm $(WASM_DIR)/lib $(WASM_DIR)/BUILD-INFO "$(WASM_CACHE).tmp/" && \
		rm -rf "$(WASM_CACHE)" && mv "$(WASM_CACHE).tmp" "$(WASM_CACHE)"; \
	fi
	@touch $@

python-wasm-clean: ## Remove build/wasm and the python.wasm build tree (not the cache)
	rm -rf $(WASM_DIR) build/wasm-work

# make test and make demo build python.wasm when missing.
TEST_DEPS += python-wasm
DEMO_DEPS += python-wasm
