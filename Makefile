# One command per habit. Every target works on a fresh machine (it installs what it needs).
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
export ANSIBLE_CONFIG := $(CURDIR)/ansible.cfg
export PATH := $(CURDIR)/$(VENV)/bin:$(CURDIR)/.stack/bin:$(PATH)
STACK_ENV = set -a; source .stack/env; set +a

.PHONY: setup client up down status deps-images demo deliver test lint sanity unit integration molecule lab lab-down bench requirements clean

setup:                      ## host packages, pinned venv, collection link
	hack/setup.sh

client:                     ## client-only install into .slipway/ (no root, Docker or Go): what a CI agent needs
	hack/client-install.sh .slipway

up: setup                   ## start (or confirm) the local stack, with its real node
	$(PY) hack/stack.py up --skip-packages --real-node

down:                       ## stop the local stack
	python3 hack/stack.py down

status:
	python3 hack/stack.py status

# Not part of up/demo, which do not need them: once per machine, before the first generated service starts.
deps-images: up             ## the images generated services build on and run beside (slipway/python, postgres, redis)
	@echo "deps-images: slipway/python:bookworm, slipway/postgres:15, slipway/redis:7 (a few minutes each the first time; seconds when built)"
	$(STACK_ENV); hack/deps-images.sh

# the stack's gateway (docs/gateway.md): its routes pick requests by their Host header
GATEWAY_PORT ?= 18090
demo: up                    ## the main job: build, test and deliver the example shop to the local context
	$(STACK_ENV); ansible-playbook -i inventories/local playbooks/site.yml
	@echo "The shop's frontend through the gateway: curl -H 'Host: shop.local' http://127.0.0.1:$(GATEWAY_PORT)/ (its API: /cgi-bin/api/products)"
	@# the gateway serves a route a moment after it reports it accepted: a few retries
	@curl -fsS --max-time 10 --retry 10 --retry-delay 1 --retry-all-errors -H 'Host: shop.local' http://127.0.0.1:$(GATEWAY_PORT)/cgi-bin/api/products && echo

# A showroom of this checkout's branch (docs/showrooms.md): the whole shop in namespaces of its own, with a URL
SHOWROOM ?= $(shell git rev-parse --abbrev-ref HEAD)
.PHONY: showroom showrooms showroom-retire
showroom: up                ## deploy the branch as a showroom: make showroom [SHOWROOM=feature-x]
	$(STACK_ENV); ansible-playbook -i inventories/showroom playbooks/showroom.yml -e slipway_showroom='$(SHOWROOM)'

showrooms: up               ## list the showrooms (branch, who, systems, URL, age)
	$(STACK_ENV); ansible-playbook -i inventories/showroom playbooks/showrooms.yml

showroom-retire: up         ## retire a showroom: make showroom-retire SHOWROOM=feature-x
	$(STACK_ENV); ansible-playbook -i inventories/showroom playbooks/showroom_retire.yml -e slipway_showroom='$(SHOWROOM)'

test: up lint sanity unit integration molecule   ## everything CI runs

lint: setup                 ## ruff + ansible-lint (production profile)
	ruff check .
	@# its own ANSIBLE_HOME: a copy of the collection some tool left in ~/.ansible/collections would shadow this one
	ANSIBLE_HOME=$(CURDIR)/.stack/ansible-lint-home ansible-lint --offline --profile production

sanity: setup               ## ansible-test sanity on a copy at ansible_collections/slipway/platform
	hack/sanity.sh

unit: setup
	$(PY) -m pytest tests/unit -q

integration: up                 ## stack tests; those that kill a component run last, after the others passed
	@date +"make: %T integration (not disruptive) starts"
	$(STACK_ENV); $(PY) -m pytest tests/integration -q --durations=30 -m "not disruptive" && \
	  date +"make: %T integration (disruptive) starts" && \
	  $(PY) -m pytest tests/integration -q --durations=15 -m disruptive

# service_template's scenario runs inside the integration suite (test_service_template.py), on the stack's engine.
MOLECULE_SCENARIOS ?= node_prep container_runtime kube_artifacts cluster_pki cluster
molecule: up                ## each role's molecule scenario (node_prep, container_runtime on lab machines of their own)
	$(STACK_ENV); for s in $(MOLECULE_SCENARIOS); do date +"make: %T molecule $$s starts"; molecule test -s $$s || exit 1; done

lab: up                     ## the provisioning lab: Debian machines over SSH (hack/lab.py; docs/provisioning.md)
	$(PY) hack/lab.py up

lab-down:                   ## remove the lab's machines, volumes and network
	$(PY) hack/lab.py down

bench: up                   ## benchmarks: ratios against kubectl, kubernetes.core.k8s, docker build
	$(STACK_ENV); for b in bench/*.py; do $(PY) $$b || exit 1; done

requirements:               ## re-pin requirements.txt from requirements.in
	$(PY) -m pip install -q -r requirements.in && $(PY) -m pip freeze | sed '1i # Pinned Python tools for Slipway (generated from requirements.in by `make requirements`; Python 3.11).' > requirements.txt
