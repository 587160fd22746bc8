# mk/gvisor.mk: the gvisor backend's test dependency. Included by the
# top-level Makefile. Debian 12's runsc package (gVisor 20221219) provides
# /usr/bin/runsc; internal/gvisor's tests fail without it under
# PYBOX_REQUIRE_ISOLATION=1.
DEB_TEST += runsc

.PHONY: bench-gvisor
bench-gvisor: deps-test ## Benchmark the gvisor backend against runsc do, native and python3.
	$(GO) test -run - -bench . -benchtime 20x ./bench/gvisor
