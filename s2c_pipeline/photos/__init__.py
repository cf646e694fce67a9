"""Photos with provenance: the evaluation set (pip packages), the training and validation splits (Debian)."""

from s2c_pipeline.photos.catalogue import (
    EXCLUDED,
    Photo,
    evaluation_photos,
    package_training_photos,
    training_photo_files,
    validation_photo_files,
)

__all__ = [
    "EXCLUDED",
    "Photo",
    "evaluation_photos",
    "package_training_photos",
    "training_photo_files",
    "validation_photo_files",
]
