test:
	bash scripts/test.sh

demo:
	bash scripts/demo.sh

bench:
	bash scripts/setup.sh && .venv/bin/python bench/run.py

# What enabling the extension costs hg commands that send no mail.
bench-import:
	bash scripts/setup.sh && .venv/bin/python bench/import_cost.py

# Into .work/dist/ (setup.sh builds them): the wheel, the sdist, and the
# wheel unpacked as a folder and a zip for installs without pip
# (scripts/dist.py; the README's "Without pip").
dist:
	bash scripts/setup.sh && ls -l .work/dist

# The generated trust-parity test at length (docs/security.md records a run).
parity-long:
	bash scripts/setup.sh && SECURESMTP_PARITY_CASES=$${SECURESMTP_PARITY_CASES:-100000} \
		.venv/bin/python -m pytest -p no:cacheprovider -q tests/test_parity_generated.py

# The Windows x86_64 wheel, cross-built into .work/dist/, and the core's
# Rust tests under Wine (scripts/windows.sh; needs .venv from setup.sh).
windows:
	bash scripts/setup.sh && bash scripts/windows.sh

.PHONY: test demo bench bench-import dist parity-long windows
