"""Component failure risk: features from the twin, per-component calibrated models, artifact, evaluation.

Public API::

    FEATURE_NAMES, twin_features(twin, hourly_lookup, *, now_ms, in_service_ms, component_ages_days)
    feature_matrix(twins, hourly_lookup, *, now_ms, in_service_ms=None, component_ages_days=None)
    ComponentRiskModel(...).fit(X, y, groups=...).calibrate(X_later, y_later, groups=...)
    load_model_set(path) -> RiskModelSet  (.version .components .feature_names .horizon_days
                                          .predict_proba(X) .top_features(X, k=3))

CLIs: ``python -m models.risk.train``, ``python -m models.risk.evaluate``; see README.md.
"""

from models.risk.artifact import ArtifactError, RiskModelSet, load_model_set
from models.risk.features import feature_matrix, twin_features
from models.risk.feature_names import COMPONENTS, FEATURE_NAMES
from models.risk.model import ComponentRiskModel

__all__ = ["ArtifactError", "COMPONENTS", "ComponentRiskModel", "FEATURE_NAMES", "RiskModelSet", "feature_matrix",
           "load_model_set", "twin_features"]
