# models: the shipped model, installed where the configuration loader looks for the default model
# ($(pkgdatadir)/models/cxrseg.cxm, see src/config), with its card, plots and the training recipe
# (the recipe is Python and is never run by the build or by `make check`).
modelsdir = $(pkgdatadir)/models
dist_models_DATA = models/cxrseg.cxm models/cxrseg.md
EXTRA_DIST += models/cxrseg-training.png models/cxrseg-pr.png models/cxrseg-roc.png docs/training.md \
	models/train/cxrdata.py models/train/train.py models/train/make_split.py models/train/split.json \
	models/train/dsform.py models/train/raster.py models/train/supervisely.py models/train/coco.py \
	models/train/evaluate.py models/train/tune.py models/train/plots.py models/train/release.sh \
	models/train/make_eval_fixture.py models/train/make_decision_fixture.py \
	models/train/tests/test_importers.py models/train/tests/test_export.py \
	models/train/maskfolder.py models/train/operating_point.py models/train/curve.py \
	models/train/tests/test_maskfolder.py models/train/tests/test_thresholds.py \
	models/train/thresholds.py models/train/thresholds.sh models/train/ship-rules.md \
	models/train/make_eval_mf_fixture.py models/train/worst.py models/FORMAT.md \
	models/tools/cxm.py models/tools/cxr_arch.py models/tools/export.py models/tools/import_cxm.py \
	models/tools/make_parity_refs.py models/tools/verify_export.py

# The recipe's Python unit tests (skip, exit 77, without Debian's torch).
TESTS += tests/train_recipe.sh
EXTRA_DIST += tests/train_recipe.sh
