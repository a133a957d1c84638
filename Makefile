# Everything the project needs is installed by these targets into .venv.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
# `make run PORT=8080`: where gunicorn listens (gunicorn.conf.py reads GUNICORN_BIND), and what the
# banner names. A GUNICORN_BIND in the environment wins over both.
PORT ?= 8000
GUNICORN_BIND ?= 127.0.0.1:$(PORT)
export GUNICORN_BIND

# Translation catalogs are compiled here from the .po files under locale/, never committed.
CATALOGS := $(patsubst %.po,%.mo,$(wildcard locale/*/LC_MESSAGES/django.po))

.PHONY: run run-backend test lint format clean messages

# The Node.js example backend's packages, exactly as its lockfile pins them.
NODE_BACKEND := examples/backend-node
$(NODE_BACKEND)/node_modules/.installed: $(NODE_BACKEND)/package.json $(NODE_BACKEND)/package-lock.json
	npm ci --prefix $(NODE_BACKEND) --no-audit --no-fund --loglevel=error
	touch $@

$(VENV)/.run: requirements.txt
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11) and "Python 3.11+ is needed")'
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt
	touch $@

$(VENV)/.dev: $(VENV)/.run requirements-dev.txt
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@

.env: | $(VENV)/.run
	$(PY) -m securegather.devenv > .env
	@echo "Wrote .env with a fresh development key and Twilio auth token."

locale/%/LC_MESSAGES/django.mo: locale/%/LC_MESSAGES/django.po $(VENV)/.run
	$(VENV)/bin/pybabel compile --domain django --input-file $< --output-file $@ --statistics

messages: $(CATALOGS)

# `make run BACKEND=1`: resolve through the example backend (`make run-backend`, in another
# terminal) instead of the accounts table; the key pair and signing secret go to .backend/.
BACKEND ?=
RUN_ENV := $(if $(BACKEND),set -a && . ./.backend/env && set +a &&,)

run: $(VENV)/.run .env $(CATALOGS) $(if $(BACKEND),.backend/env)
	$(PY) manage.py migrate --noinput
	$(if $(BACKEND),,$(PY) manage.py seed_demo)
	$(PY) manage.py collectstatic --noinput --verbosity 0
	@echo
	@echo "SecureGather on http://$(GUNICORN_BIND)  (webhook: POST /voice/)"
	@echo "Simulate a call, in another terminal:"
	@echo "  $(PY) manage.py simulate_call --card 1234 --pin 4321 --url http://$(GUNICORN_BIND)"
	@echo
	$(RUN_ENV) $(VENV)/bin/gunicorn -c gunicorn.conf.py securegather.wsgi

# The example backend (examples/backend/), holding the demo account, on BACKEND_PORT; with
# NODE=1 the Node.js one (examples/backend-node/). Its key is of the hybrid suite (X-Wing).
BACKEND_PORT ?= 8800
NODE ?=
.backend/env: | $(VENV)/.run .env
	mkdir -p .backend && chmod 700 .backend
	{ echo "SECUREGATHER_RESOLVER=accounts.resolvers.HttpResolver"; \
	  echo "SECUREGATHER_BACKEND_URL=http://127.0.0.1:$(BACKEND_PORT)/resolve"; \
	  echo "SECUREGATHER_BACKEND_KEM=MLKEM768_X25519"; \
	  echo "SECUREGATHER_BACKEND_PUBLIC_KEYS=$$($(PY) manage.py backend_keypair --kem MLKEM768_X25519 --id dev --out .backend/backend-dev.pem)"; \
	  echo "SECUREGATHER_BACKEND_SECRET=$$($(PY) -c 'import secrets; print(secrets.token_urlsafe(32))')"; \
	} > .backend/env.new && mv .backend/env.new $@

run-backend: $(VENV)/.run .backend/env $(if $(NODE),$(NODE_BACKEND)/node_modules/.installed)
	set -a && . ./.backend/env && set +a && \
	$(if $(NODE),node $(NODE_BACKEND)/server.mjs,$(PY) examples/backend/server.py) \
	  --port $(BACKEND_PORT) --private-key .backend/backend-dev.pem

test: $(VENV)/.dev $(CATALOGS) $(NODE_BACKEND)/node_modules/.installed
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	npm test --prefix $(NODE_BACKEND) --silent -- --test-reporter=dot
	$(PY) -m pytest

format: $(VENV)/.dev
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

clean:
	rm -rf $(VENV) .backend $(NODE_BACKEND)/node_modules staticfiles .pytest_cache .ruff_cache .mypy_cache .hypothesis $(CATALOGS)
