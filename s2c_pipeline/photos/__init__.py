"""Photos with provenance: the evaluation set (pip packages) and the training set (Debian packages)."""

from s2c_pipeline.photos.catalogue import (
    EXCLUDED,
    Photo,
    evaluation_photos,
    package_training_photos,
    training_photo_files,
)

__all__ = ["EXCLUDED", "Photo", "evaluation_photos", "package_training_photos", "training_photo_files"]
