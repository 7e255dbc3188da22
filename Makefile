# Thin wrapper over meson/ninja and the scripts; the scripts are the source of truth.
.PHONY: all run test bench clean
all:
	scripts/build build
run:
	scripts/run
test:
	scripts/test
bench:
	bench/vmm_boot.sh
clean:
	rm -rf build build-test
