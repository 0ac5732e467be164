# Performance targets, included by the Makefile. See docs/PERFORMANCE.md.
#   make bench                      every Go benchmark, BENCH_COUNT runs each (benchstat input)
#   make bench BENCH=BenchmarkAPI   one benchmark; BENCH_OUT names the output file
#   make benchstat OLD=a.txt NEW=b.txt
#   make bench-size                 10 vs 100,000 secrets, compared by benchstat -col /size
#   make coldstart                  each Lambda function's cold start under aws-lambda-rie (COLDSTART_N rounds)

BENCH       ?= .
BENCH_COUNT ?= 6
BENCH_TIME  ?= 1s
BENCH_OUT   ?= bench.txt

COLDSTART_N ?= 100

# benchstat runs from the tools module (tools/go.mod pins it), so file
# arguments are given as absolute paths.
BENCHSTAT = $(GO) -C tools tool benchstat

.PHONY: bench bench-size benchstat coldstart

## bench: Go benchmarks of the API on bolt and DynamoDB (minidyn), -benchmem, into $(BENCH_OUT)
bench:
	$(GO) test -run '^$$' -bench '$(BENCH)' -benchmem -count $(BENCH_COUNT) -benchtime $(BENCH_TIME) -timeout 60m ./pkg/internal/bench | tee $(BENCH_OUT)

## bench-size: the store-size benchmark, compared across sizes
bench-size:
	$(GO) test -run '^$$' -bench 'BenchmarkSize' -benchmem -count $(BENCH_COUNT) -benchtime $(BENCH_TIME) -timeout 60m ./pkg/internal/bench | tee bench-size.txt
	$(BENCHSTAT) -col /size $(CURDIR)/bench-size.txt

## benchstat: compare two benchmark outputs: make benchstat OLD=old.txt NEW=new.txt
benchstat:
	@test -n "$(OLD)" -a -n "$(NEW)" || { echo "usage: make benchstat OLD=old.txt NEW=new.txt"; exit 2; }
	$(BENCHSTAT) $(abspath $(OLD)) $(abspath $(NEW))

## coldstart: build the functions, start each under aws-lambda-rie COLDSTART_N times, report median/p90 into coldstart.txt
coldstart:
	$(GO) test -count=1 -run '^TestColdStart$$' -timeout 30m ./pkg/internal/coldstart -args -coldstart.n=$(COLDSTART_N) -coldstart.report=$(CURDIR)/coldstart.txt
	@cat coldstart.txt
