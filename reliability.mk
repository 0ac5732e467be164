# Reliability and security checks beyond `make test` (see TESTING.md).
# Included from the Makefile.
#
#   make fuzz                      every fuzz target for FUZZTIME each
#   make soak                      the reliability tests and the model test, longer

GO       ?= go
FUZZTIME ?= 30s
# How long the fuzzer may shrink each new input; Go's default of 60s can spend
# a whole short run minimising, with no inputs executed meanwhile.
FUZZMINIMIZETIME ?= 5s
# package:target of every fuzz target.
FUZZ_TARGETS ?= \
	./pkg/secrets:FuzzCanonical \
	./pkg/secrets:FuzzValidName \
	./pkg/envelope:FuzzParseOpen \
	./pkg/secrets:FuzzParseReferences \
	./pkg/resolve:FuzzDecodeTree \
	./pkg/secrets:FuzzHasReference \
	./pkg/secrets:FuzzVerifyGrant \
	./pkg/httpapi:FuzzCreateBody \
	./pkg/httpapi:FuzzPageToken \
	./pkg/secrets:FuzzDecodeRecord

CRASH_ITERATIONS         ?= 50
SOAK_DURATION            ?= 60s
RELIABILITY_MODEL_CHECKS ?= 50

.PHONY: fuzz soak

## fuzz: run every fuzz target for FUZZTIME (30s) and print its execs
fuzz:
	@failed=""; summary=""; \
	for t in $(FUZZ_TARGETS); do \
		pkg=$${t%%:*}; name=$${t##*:}; \
		echo "== $$name ($$pkg, $(FUZZTIME))"; \
		if out=$$($(GO) test -run '^$$' -fuzz "^$$name\$$" -fuzztime $(FUZZTIME) -fuzzminimizetime $(FUZZMINIMIZETIME) $$pkg 2>&1); then \
			execs=$$(echo "$$out" | grep -o 'execs: [0-9]*' | tail -1 | cut -d' ' -f2); \
			echo "$$name: $${execs:-?} execs"; \
			summary="$$summary$$name $$pkg $${execs:-?}\n"; \
		else \
			echo "$$out"; failed="$$failed $$name"; \
			summary="$$summary$$name $$pkg FAILED\n"; \
		fi; \
	done; \
	echo; echo "fuzz summary (target, package, execs in $(FUZZTIME)):"; printf "$$summary" | column -t; \
	if [ -n "$$failed" ]; then echo "fuzz: failed:$$failed"; exit 1; fi

SOAK_LOG ?= $(or $(TMPDIR),/tmp)/mobius-soak.log

soak:
	@echo "soak: CRASH_ITERATIONS=$(CRASH_ITERATIONS) SOAK_DURATION=$(SOAK_DURATION) RELIABILITY_MODEL_CHECKS=$(RELIABILITY_MODEL_CHECKS); full log in $(SOAK_LOG)"
	@status=0; \
	CRASH_ITERATIONS=$(CRASH_ITERATIONS) SOAK_DURATION=$(SOAK_DURATION) RELIABILITY_MODEL_CHECKS=$(RELIABILITY_MODEL_CHECKS) \
		$(GO) test -count=1 -v -timeout 60m ./pkg/internal/reliability/ > $(SOAK_LOG) 2>&1 || status=$$?; \
	MODEL_CHECKS_MOTO=$(RELIABILITY_MODEL_CHECKS) \
		$(GO) test -count=1 -v -timeout 60m -run '^TestModel$$' ./pkg/store/suites/ >> $(SOAK_LOG) 2>&1 || status=$$?; \
	grep -E '^(--- |ok|FAIL)|_test\.go:[0-9]+: [a-zA-Z ,()0-9]+:' $(SOAK_LOG) | grep -v 'INTEGRITY' ; \
	exit $$status
