test:
	bash scripts/test.sh

demo:
	bash scripts/demo.sh

bench:
	bash scripts/setup.sh && .venv/bin/python bench/run.py

.PHONY: test demo bench
