# The two commands of the quick start (`make run`, `make test`) set themselves up on a
# fresh machine: they create .venv and install the project when needed.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
HOST ?= 127.0.0.1
MLFLOW_PORT ?= 5000
VIZ_PORT ?= 4141
export KEDRO_DISABLE_TELEMETRY := true
export MLFLOW_DISABLE_TELEMETRY := true
export DO_NOT_TRACK := 1
# OpenMP threads that sleep instead of spinning: on a busy 2-core machine spinning threads
# made 2-thread torch steps 5-50x slower.
export OMP_WAIT_POLICY ?= PASSIVE

SERVE_PORT ?= 5001
MODEL ?= sleep

.PHONY: register serve run run-all test test-fast setup viz viz-build viz-static mlflow-ui screenshots bench bench-pipelines lint gpu-check airflow-setup airflow-dag sweep seeds

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	# torch first, pinned: pip then takes the local build instead of resolving a newer one.
	$(BIN)/pip install --disable-pip-version-check -q "torch==2.14.1" "torchvision==0.29.1"
	$(BIN)/pip install --disable-pip-version-check -q -e ".[test,viz]"
	touch $(STAMP)

setup: $(STAMP)

## Run every pipeline on the embedded default data (scikit-learn digits).
run: $(STAMP)
	$(BIN)/kedro run $(ARGS)

## Every pipeline in sequence (digits, ctc, signal_features, afm, timeseries, denoising), then a
## summary of key figures and wall times against the budgets, also in
## data/08_reporting/run_all_summary.{json,md}. Over an hour at default sizes on 2 cores;
## `make run-all ARGS="--env=test"` for the tiny sizes, `ARGS="--only digits,ctc"` for some.
run-all: $(STAMP)
	$(BIN)/python scripts/run_all.py $(ARGS)

## An Optuna sweep of conf/*/parameters_sweep.yml (docs/sweeps.md), e.g. `make sweep
## SWEEP=ctc_cnn` or `make sweep SWEEP=tiny SWEEP_ARGS="--env test"`. Start the same command
## in more terminals (or machines sharing the storage) to run trials in parallel.
SWEEP ?= digits_simclr
sweep: $(STAMP)
	$(BIN)/python -m contrastive_signals.sweep run $(SWEEP) $(SWEEP_ARGS)

## One pipeline over training seeds, each in its own project copy: per-seed figures, mean and
## standard deviation in data/08_reporting/<pipeline>_seeds.{json,md}, e.g. `make seeds
## PIPELINE=denoising SEEDS="0 1 2" SEED_ARGS="--parallel 2 --threads 1"`.
PIPELINE ?= denoising
SEEDS ?= 0 1 2
seeds: $(STAMP)
	$(BIN)/python scripts/seed_runs.py $(PIPELINE) --seeds $(SEEDS) $(SEED_ARGS)

## The full test suite (what CI runs), on TEST_WORKERS pytest-xdist workers (auto: one per core);
## tests sharing an expensive fixture (one `kedro run`) stay on one worker (tests/conftest.py).
TEST_WORKERS ?= auto
test: $(STAMP)
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadgroup $(PYTEST_ARGS)

## Only the fast tests (no end-to-end runs or browsers).
test-fast: $(STAMP)
	$(BIN)/python -m pytest -m "not slow" $(PYTEST_ARGS)

## kedro-viz on http://$(HOST):$(VIZ_PORT) (plot and table previews read data/ of the last run)
viz: $(STAMP)
	$(BIN)/kedro viz run --host $(HOST) --port $(VIZ_PORT) --no-browser

## kedro-viz as a static site in build/ (previews included); any static file server shows it
viz-build: $(STAMP)
	$(BIN)/kedro viz build --include-previews

## Serve build/ on http://$(HOST):$(VIZ_PORT) (browsers do not run the site from file://)
viz-static:
	test -f build/index.html || $(MAKE) viz-build
	$(BIN)/python -m http.server --bind $(HOST) --directory build $(VIZ_PORT)

## The MLflow UI over the project's store on http://$(HOST):$(MLFLOW_PORT). Runs logged to
## sqlite:///mlflow.db keep their artifacts in ./mlruns/<experiment>/<run>/artifacts; runs logged
## through this server (MLFLOW_TRACKING_URI=http://...) store theirs in the same ./mlruns.
## The GenAI job runner (a pool of worker processes) is off: the UI does not need it.
mlflow-ui: $(STAMP)
	MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false $(BIN)/mlflow server --backend-store-uri sqlite:///mlflow.db \
		--artifacts-destination ./mlruns --host $(HOST) --port $(MLFLOW_PORT) --workers 1

## docs/images/{pipeline_graph,mlflow_compare}.png from two small runs in a temporary copy
## (SCREENSHOTS_SOURCE=project: from this project's data/ and mlflow.db instead)
## plus docs/images/sweep_*.png from the tiny sweep (or SWEEP_PROJECT=<folder where a sweep ran>)
SCREENSHOTS_SOURCE ?= temp
screenshots: $(STAMP)
	$(BIN)/python scripts/screenshots.py --source $(SCREENSHOTS_SOURCE) $(if $(SWEEP_PROJECT),--sweep-project $(SWEEP_PROJECT))

## Benchmarks; each writes JSON into benchmarks/results/
bench: $(STAMP)
	$(BIN)/python benchmarks/losses_and_sampling.py --out benchmarks/results/losses_and_sampling.json
	$(BIN)/python benchmarks/pretraining_throughput.py --out benchmarks/results/pretraining_throughput.json
	$(BIN)/python benchmarks/ddp_throughput.py --out benchmarks/results/ddp_throughput.json
	$(BIN)/python benchmarks/ddp_scaling_model.py --out benchmarks/results/ddp_scaling_model.json
	$(BIN)/python benchmarks/augmentations.py --out benchmarks/results/augmentations.json
	$(BIN)/python benchmarks/signal_features.py --out benchmarks/results/signal_features.json
	$(BIN)/python benchmarks/sleep_ingestion.py --out benchmarks/results/sleep_ingestion.json
	$(BIN)/python benchmarks/sparse_view_noise.py --out benchmarks/results/sparse_view_noise.json
	$(BIN)/python benchmarks/sweep_parallel.py --out benchmarks/results/sweep_parallel.json
	# kedro-viz start-up time, measured by the browser test (benchmarks/results/viz_ready.json)
	CONTRASTIVE_SIGNALS_RECORD_VIZ_READY=1 $(BIN)/python -m pytest -q tests/e2e/test_viz_browser.py

## Wall time of whole pipeline runs against their budgets (each in a fresh project copy;
## 5-10 minutes each on 2 CPU cores), the TS2Vec authors' code beside ours
## (benchmarks/ts2vec_reference.py, about 6 minutes), and `airflow dags test` of the test DAG
## beside a plain `kedro run --env=test` (benchmarks/airflow_dag.py, about 7 minutes)
bench-pipelines: $(STAMP) airflow-setup
	$(BIN)/python benchmarks/afm_pipeline.py --out benchmarks/results/afm_pipeline.json
	$(BIN)/python benchmarks/timeseries_pipeline.py --out benchmarks/results/timeseries_pipeline.json
	$(BIN)/python benchmarks/ts2vec_reference.py --out benchmarks/results/ts2vec_reference.json
	$(BIN)/python benchmarks/pipeline_run.py --pipeline denoising --report data/08_reporting/denoising_metrics.json --out benchmarks/results/denoising_pipeline.json
	$(BIN)/python benchmarks/airflow_dag.py --out benchmarks/results/airflow_dag.json

## Everything that needs a GPU, under 8 minutes, into benchmarks/results/gpu_check.json: the
## gpu-marked tests (2-rank nccl DDP fit with two GPUs), the DDP and training-throughput
## benchmarks on CUDA. Without CUDA it says so, writes status "skipped" and exits 0.
gpu-check: $(STAMP)
	$(BIN)/python scripts/gpu_check.py --out benchmarks/results/gpu_check.json

## The Airflow DAG of a pipeline (docs/airflow.md): $(AIRFLOW_DAGS)/contrastive_signals[_<env>][_<pipeline>]_dag.py,
## one task per top-level namespace, this project's folder baked in (it works from any working
## directory). E.g. make airflow-dag AIRFLOW_ENV=test AIRFLOW_DAGS=$$AIRFLOW_HOME/dags
AIRFLOW_ENV ?= local
AIRFLOW_PIPELINE ?= __default__
AIRFLOW_DAGS ?= airflow_dags
airflow-setup: $(STAMP)
	$(BIN)/python -c "import importlib.util as u, sys; sys.exit(not (u.find_spec('airflow') and u.find_spec('kedro_airflow')))" \
		|| $(BIN)/pip install --disable-pip-version-check -q -e ".[airflow]"

airflow-dag: airflow-setup
	$(BIN)/kedro airflow create --env=$(AIRFLOW_ENV) --pipelines=$(AIRFLOW_PIPELINE) --group-by=namespace \
		--jinja-file=scripts/airflow_dag_template.j2 --target-dir=$(AIRFLOW_DAGS) --params="project_path=$(CURDIR)"

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks

## Register the best logged inference model of a task: make register MODEL=sleep (alias champion)
register: $(STAMP)
	$(BIN)/python scripts/register_model.py $(MODEL) $(ARGS)

## Serve models:/$(MODEL)@champion on http://$(HOST):$(SERVE_PORT)/invocations from this
## environment (no conda/virtualenv): make serve MODEL=digits (docs/inference.md)
serve: $(STAMP)
	PATH=$(CURDIR)/$(BIN):$$PATH MLFLOW_TRACKING_URI=$${MLFLOW_TRACKING_URI:-sqlite:///mlflow.db} $(BIN)/mlflow models serve \
		-m "models:/$(MODEL)@champion" --env-manager local --host $(HOST) --port $(SERVE_PORT) --workers 1
