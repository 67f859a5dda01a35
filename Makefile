test:
	bash scripts/test.sh

demo:
	bash scripts/demo.sh

.PHONY: test demo
