# The two commands a new user types: `make demo` and `make test`. Both build .venv from nothing.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
STAMP := $(VENV)/.s2c-installed
export RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER := 0
export AWS_REQUEST_CHECKSUM_CALCULATION := when_required

.PHONY: venv demo test lint clean bench photos pack packs device-packs pack-enlightenment train-small train-small-detail train-ablation device-prep train-small-stage5 train-small-stage6

venv: $(STAMP)

$(STAMP): pyproject.toml requirements/constraints.txt requirements/compressai.txt
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q -c requirements/constraints.txt torch
	$(PIP) install -q --no-deps -r requirements/compressai.txt
	$(PIP) install -q -c requirements/constraints.txt -e '.[test]'
	touch $(STAMP)

demo: $(STAMP)
	$(PY) -m s2c_pipeline demo

test: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m pytest -q

lint: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

bench: $(STAMP)
	$(PY) benchmarks/codec_speed.py

# Training data (not needed for demo or tests): Debian and scikit-image photos, then the compact pack.
photos: $(STAMP)
	$(PY) -m s2c_pipeline.photos.fetch

# The small wallpaper pack of configs/train-small-cpu.yaml: the packages of the earlier default set.
pack: photos
	$(PY) -m s2c_pipeline.train.datapack --photos data-cache/photos/train --out data-cache/train-pack.tar \
		$(foreach g,$(filter-out enlightenment-*,$(WALLPAPERS)),--include '$(g)')

# The whole training split as packs of at most 60 MB (train-pack-1.tar, ...), and the validation pack;
# training reads them all with data: data-cache/train-pack-*.tar (docs/photos.md).
packs: photos
	$(PY) -m s2c_pipeline.train.datapack --photos data-cache/photos/train --packs data-cache/train-pack
	$(PY) -m s2c_pipeline.train.datapack --photos data-cache/photos/validation --out data-cache/validation-pack.tar

# The wallpaper pack (the packages of the 65 photos stage 3 of the bundled weights trained on; the
# inventory has grown since, so it holds 76 now) that the stage configs and GPU scripts name.
pack-enlightenment: data-cache/train-pack-enlightenment.tar

WALLPAPERS := lomiri-* mate-* plasma-* lxqt-* digikam-* libjxl-* palapeli-* libelementary-* enlightenment-* scikit-image-*
data-cache/train-pack-enlightenment.tar: | $(STAMP)
	$(PY) -m s2c_pipeline.photos.fetch
	$(PY) -m s2c_pipeline.train.datapack --photos data-cache/photos/train --out $@ $(foreach g,$(WALLPAPERS),--include '$(g)')

# What infra/device/train_gpu.sh needs carried to a lent GPU machine (Python 3.12, no compressai):
# the two wheels it lacks, the pack, and streams written here for its CPU <-> GPU decode check.
device-prep: $(STAMP) data-cache/train-pack-enlightenment.tar
	$(PY) -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
		--platform manylinux_2_34_x86_64 -d .whl compressai==1.2.8
	$(PY) -m pip download -q --no-deps --only-binary=:all: -d .whl pytorch-msssim==1.0.0
	$(PY) infra/device/cross_device_check.py encode --device cpu --out .gpu-check/cpu --decoded runs/cpu-decoded.npz

# The new training set for a lent GPU (docs/weights.md, "Shipping the new training set"): packs of at
# most 25 MB, so that each fits a call beside the working tree, and the validation split as a pack.
device-packs: photos
	$(PY) -m s2c_pipeline.train.datapack --photos data-cache/photos/train --packs data-cache/device/train-pack --max-mb 25
	$(PY) -m s2c_pipeline.train.datapack --photos data-cache/photos/validation --out data-cache/validation-pack.tar

# The bundled s2c-conv-small weights (docs/weights.md): stage 1 (3000 steps, exported as the
# first bundled checkpoint), then the same run resumed to 10000 steps. Rerun to resume after a stop.
train-small: $(STAMP)
	$(PY) -m s2c_pipeline train --config configs/train-small-cpu.yaml --export runs/export
	$(PY) -m s2c_pipeline train --config configs/train-small-cpu.yaml --set steps=10000 --set max_minutes=120 --export runs/export --bundle

# Stage 3: stage 2's export (which left the package; git still has it)
# continued on detailed crops of the larger pack with 8 rate points. Rerun to resume after a stop.
STAGE2 := runs/init/s2c-conv-small-c6f7da3467192b73.pt
train-small-detail: $(STAMP) data-cache/train-pack-enlightenment.tar $(STAGE2)
	$(PY) -m s2c_pipeline train --config configs/train-small-detail-cpu.yaml --export runs/export --bundle

# A checkpoint that left the package, from a commit that still holds it: $(call from-git,COMMIT,SHA256)
define from-git
	mkdir -p $(@D)
	git show $(1):s2c_pipeline/codec/weights/$(@F) > $@.tmp
	echo "$(2)  $@.tmp" | sha256sum -c --quiet
	mv $@.tmp $@
endef

$(STAGE2):
	$(call from-git,c0de7b3,c6f7da3467192b73c3beeb33627828e7891c72e777ef9dbb0ffe5446756bacda)

# Stage 5: stage 4 (the first H100 run, infra/device/train_gpu.sh; it left the package, git still
# has it) continued on this CPU for 100 minutes. Rerun to resume after a stop.
STAGE4 := runs/init/s2c-conv-small-069dd301e38412d1.pt
train-small-stage5: $(STAMP) data-cache/train-pack-enlightenment.tar $(STAGE4)
	$(PY) -m s2c_pipeline train --config configs/train-small-stage5-cpu.yaml --export runs/export --bundle

$(STAGE4):
	$(call from-git,dff791c,069dd301e38412d1dbfe3a8b97f83c2c6a180d8845bc360731e5ab484f6b72e3)

# Stage 6 (an experiment, exported but not bundled): stage 5 with samples weighted to the top
# quality levels (quality_weights). Rerun to resume after a stop; evaluate before bundling.
STAGE5 := runs/init/s2c-conv-small-25375d82d80a646a.pt
train-small-stage6: $(STAMP) data-cache/train-pack-enlightenment.tar $(STAGE5)
	$(PY) -m s2c_pipeline train --config configs/train-small-stage6-cpu.yaml --export runs/export-stage6

$(STAGE5):
	$(call from-git,b135053,25375d82d80a646a0b5360d9e63ac113539db3e248a943714a095d71e5071642)

# Stage 7 (the second H100 lease), stage 8's starting point; it left the package when stage 8 was
# bundled. Stages 7 and 8 were trained on lent GPUs (docs/weights.md has their commands).
STAGE7 := runs/init/s2c-conv-small-4e765c39ecfe47ce.pt
$(STAGE7):
	$(call from-git,18ef922,4e765c39ecfe47cefaac9b4e050d4b96a6e8c9429a806759a143bb2b17a08c51)

# The s2c-identity-small ablation (docs/ablation.md): stage 1's recipe without the spatial operator.
train-ablation: $(STAMP)
	$(PY) -m s2c_pipeline train --config configs/train-identity-small-cpu.yaml --export runs/export-ablation

clean:
	rm -rf $(VENV) build *.egg-info
