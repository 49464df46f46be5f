"""The versioned model artifact: save, load and validate; ``RiskModelSet`` for batch scoring.

Layout of an artifact directory::

    metadata.json   format_version, version, created, feature_names, components, horizon_days,
                    training window, data sizes, per-component metrics, calibration, baseline
                    metrics, library versions, sha256 of model.joblib
    model.joblib    {"models": {component: ComponentRiskModel}, "baselines": {component: ...}}
    split.json      train / evaluation VINs and the time cut (``models.risk.split.Split``)
    MANIFEST.sha256 SHA-256 of each file above, in ``sha256sum`` format (``sha256sum -c MANIFEST.sha256``)

Loading first checks every file against the manifest, before anything is parsed or unpickled
(a missing, unlisted or changed file raises :class:`ArtifactIntegrityError`), then the format
version and that the artifact's feature list is exactly ``models.risk.feature_names.FEATURE_NAMES``
(same names, same order); any mismatch raises :class:`ArtifactError` naming it. A retrained
or edited artifact gets a new manifest from :func:`write_manifest`.

>>> # rs = load_model_set("var/risk/model"); rs.predict_proba(X)  # (n, len(rs.components))
"""

from __future__ import annotations

import hashlib
import json
import platform
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import sklearn
from numpy.typing import ArrayLike, NDArray

from models.risk.attribution import TreeWalker
from models.risk.features import paused_gc
from models.risk.feature_names import COMPONENTS, FEATURE_NAMES
from models.risk.model import ComponentRiskModel

FORMAT_VERSION = 1
MODEL_FILE = "model.joblib"
METADATA_FILE = "metadata.json"
SPLIT_FILE = "split.json"
MANIFEST_FILE = "MANIFEST.sha256"
#: files the loader reads: each must be in the manifest (split.json only when present)
COVERED = (METADATA_FILE, MODEL_FILE, SPLIT_FILE)


class ArtifactError(ValueError):
    """An artifact that cannot be used with this code (names what is wrong)."""


class ArtifactIntegrityError(ArtifactError):
    """An artifact whose files do not match its SHA-256 manifest (tampered with, or corrupted)."""


def describe_mismatch(artifact: Sequence[str], code: Sequence[str]) -> str | None:
    """Why two feature lists differ (None if they are identical)."""
    a, c = list(artifact), list(code)
    if a == c:
        return None
    parts = []
    missing = [n for n in c if n not in a]
    extra = [n for n in a if n not in c]
    if missing:
        parts.append(f"missing from the artifact: {missing}")
    if extra:
        parts.append(f"unknown to this code: {extra}")
    if not missing and not extra:
        i = next(i for i, (x, y) in enumerate(zip(a, c)) if x != y)
        parts.append(f"same names in a different order (first at position {i}: artifact {a[i]!r}, code {c[i]!r})")
    return (f"artifact feature list ({len(a)} features) does not match models.risk.feature_names.FEATURE_NAMES "
            f"({len(c)} features): " + "; ".join(parts))


def validate_metadata(meta: Mapping[str, Any]) -> None:
    """Raise :class:`ArtifactError` unless ``meta`` fits this code."""
    if meta.get("format_version") != FORMAT_VERSION:
        raise ArtifactError(f"artifact format_version {meta.get('format_version')!r} is not {FORMAT_VERSION}")
    for key in ("version", "feature_names", "components", "horizon_days"):
        if key not in meta:
            raise ArtifactError(f"artifact metadata lacks {key!r}")
    why = describe_mismatch(meta["feature_names"], FEATURE_NAMES)
    if why:
        raise ArtifactError(why)
    unknown = [c for c in meta["components"] if c not in COMPONENTS]
    if unknown:
        raise ArtifactError(f"artifact components {unknown} are not in {COMPONENTS}")


class RiskModelSet:
    """One calibrated model per component (plus the age+mileage baselines), scored together."""

    def __init__(self, models: Mapping[str, ComponentRiskModel], metadata: Mapping[str, Any],
                 baselines: Mapping[str, ComponentRiskModel] | None = None) -> None:
        self.metadata = dict(metadata)
        self.components: tuple[str, ...] = tuple(self.metadata["components"])
        missing = [c for c in self.components if c not in models]
        if missing:
            raise ArtifactError(f"artifact has no model for components {missing}")
        self.models = {c: models[c] for c in self.components}
        self.baselines = {c: baselines[c] for c in self.components} if baselines else {}
        self.version: str = str(self.metadata["version"])
        self.feature_names: tuple[str, ...] = tuple(self.metadata["feature_names"])
        self.feature_name_array = np.array(self.feature_names, dtype=object)     # names[idx] for whole batches
        self.horizon_days: float = float(self.metadata["horizon_days"])
        self._cand: dict[tuple[str, int], NDArray[np.int64]] = {}
        self._walkers: dict[int, tuple[TreeWalker | None, tuple[str, ...]]] = {}
        for c, m in self.models.items():
            if m.n_features_in_ != len(self.feature_names):
                raise ArtifactError(f"model {c!r} expects {m.n_features_in_} features, "
                                    f"metadata lists {len(self.feature_names)}")

    def _check(self, X: ArrayLike) -> NDArray[np.float64]:
        Xa = np.asarray(X, dtype=np.float64)
        if Xa.ndim != 2 or Xa.shape[1] != len(self.feature_names):
            raise ValueError(f"X must have shape (n, {len(self.feature_names)}), got {Xa.shape}")
        return Xa

    def predict_proba(self, X: ArrayLike) -> NDArray[np.float64]:
        """``(n, len(components))``: calibrated P(failure within ``horizon_days``) per component."""
        Xa = self._check(X)
        out = np.empty((len(Xa), len(self.components)))
        for k, c in enumerate(self.components):
            out[:, k] = self.models[c].predict_proba(Xa)[:, 1]
        return out

    def decision_function(self, X: ArrayLike, baseline: bool = False) -> NDArray[np.float64]:
        """``(n, len(components))`` uncalibrated log-odds (for ranking without calibration ties)."""
        Xa = self._check(X)
        models = self.baselines if baseline else self.models
        if not models:
            raise ArtifactError("this artifact has no baseline models")
        return np.column_stack([models[c].decision_function(Xa) for c in self.components])

    def baseline_proba(self, X: ArrayLike) -> NDArray[np.float64]:
        """Same as :meth:`predict_proba` for the age+mileage baselines."""
        if not self.baselines:
            raise ArtifactError("this artifact has no baseline models")
        Xa = self._check(X)
        return np.column_stack([self.baselines[c].predict_proba(Xa)[:, 1] for c in self.components])

    def explain(self, X: ArrayLike, k: int = 3, n_candidates: int = 8
                ) -> tuple[NDArray[np.float64], NDArray[np.intp], NDArray[np.float64]]:
        """Probabilities and explanations in arrays, one walk of every tree per component.

        Returns ``proba`` ``(n, C)`` (equal to :meth:`predict_proba`), and per row and component
        the ``k`` features raising the risk most: their index into ``feature_names`` ``(n, C, k)``
        and their path contribution to the log-odds ``(n, C, k)``, largest first. Candidates are
        each model's ``max(k, n_candidates)`` globally most important features and as many with the
        most split gain.
        """
        Xa = self._check(X)
        n, C = len(Xa), len(self.components)
        proba = np.empty((n, C))
        idx = np.zeros((n, C, k), dtype=np.intp)
        val = np.zeros((n, C, k))
        width = max(k, n_candidates)
        walker, fitted = self._walker(width)
        if walker is not None:
            raw, order, vals = walker.top(Xa, [self._candidates(c, width) for c in fitted], k)
        for ci, c in enumerate(self.components):
            m = self.models[c]
            cand = self._candidates(c, width)
            kk = min(k, len(cand))
            if c in fitted:
                j = fitted.index(c)
                proba[:, ci] = m._proba(raw[:, j])
                idx[:, ci, :kk] = m.columns_[cand][order[:, j, :kk]]
                val[:, ci, :kk] = vals[:, j, :kk]
            else:                                  # a constant model: nothing to explain
                proba[:, ci] = m._proba(m._raw(Xa[:, m.columns_]))
                idx[:, ci, :kk] = m.columns_[cand[:kk]]
        return proba, idx, val

    def _walker(self, width: int) -> tuple[TreeWalker | None, tuple[str, ...]]:
        """One compiled walker over the trees of every fitted component model (each row is read once)."""
        hit = self._walkers.get(width)
        if hit is None:
            fitted = tuple(c for c in self.components if self.models[c].estimator_ is not None)
            walker = TreeWalker([self.models[c].estimator_ for c in fitted],
                                [self.models[c].columns_ for c in fitted]) if fitted else None
            hit = self._walkers[width] = (walker, fitted)
        return hit

    def _candidates(self, component: str, n: int) -> NDArray[np.int64]:
        """Model columns explained for ``component``: the ``n`` with the largest mean |contribution| on training
        rows, plus the ``n`` with the most split gain (rare but decisive ones, e.g. a precursor trouble code)."""
        key = (component, n)
        hit = self._cand.get(key)
        if hit is None:
            m = self.models[component]
            by_effect = np.argsort(-m.importances_, kind="stable")[:n]
            gain = np.zeros(len(m.columns_))
            if m.estimator_ is not None:
                for (pred,) in m.estimator_._predictors:
                    split = pred.nodes["is_leaf"] == 0
                    np.add.at(gain, pred.nodes["feature_idx"][split], pred.nodes["gain"][split])
            by_gain = np.argsort(-gain, kind="stable")[:n]
            by_gain = by_gain[gain[by_gain] > 0]
            hit = self._cand[key] = np.concatenate([by_effect, by_gain[~np.isin(by_gain, by_effect)]])
        return hit

    def score(self, X: ArrayLike, k: int = 3, n_candidates: int = 8
              ) -> tuple[NDArray[np.float64], list[list[list[tuple[str, float]]]]]:
        """:meth:`predict_proba` and :meth:`top_features` together (one walk of the trees)."""
        proba, idx, val = self.explain(X, k, n_candidates)
        names = self.feature_names
        with paused_gc():
            return proba, [[[(names[j], v) for j, v in zip(ic, vc)] for ic, vc in zip(ir, vr)]
                           for ir, vr in zip(idx.tolist(), val.tolist())]

    def top_features(self, X: ArrayLike, k: int = 3, n_candidates: int = 8
                     ) -> list[list[list[tuple[str, float]]]]:
        """Per row, per component: the ``k`` features raising the risk most, ``(name, Δ log-odds)``.

        Method: path contributions (``models.risk.attribution.TreeWalker``) of the
        ``n_candidates`` globally most important features of that component's model and the
        ``n_candidates`` with the most split gain.
        """
        return self.score(X, k, n_candidates)[1]


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def write_manifest(path: str | Path) -> Path:
    """Write ``MANIFEST.sha256`` over the artifact's files (after training, or after editing one on purpose)."""
    root = Path(path)
    names = sorted(n for n in COVERED if (root / n).is_file())
    out = root / MANIFEST_FILE
    out.write_text("".join(f"{_sha256(root / n)}  {n}\n" for n in names))
    return out


def verify_manifest(path: str | Path) -> str:
    """Check every file the loader reads against ``MANIFEST.sha256``; returns the manifest's own SHA-256.

    Raises :class:`ArtifactIntegrityError` naming the file when the manifest is missing or
    malformed, a file is missing from it or from disk, or a file's digest differs.
    """
    root = Path(path)
    manifest = root / MANIFEST_FILE
    if not manifest.is_file():
        raise ArtifactIntegrityError(f"{manifest} does not exist: an artifact without a manifest is not loaded")
    listed: dict[str, str] = {}
    for n, line in enumerate(manifest.read_text(errors="replace").splitlines(), start=1):
        digest, sep, name = line.partition("  ")
        if not sep or len(digest) != 64 or name not in COVERED:
            raise ArtifactIntegrityError(f"{manifest} line {n} is not '<sha256>  <file>' for a file of the artifact")
        listed[name] = digest.lower()
    for name in COVERED:
        on_disk = (root / name).is_file()
        if name not in listed:
            if on_disk or name != SPLIT_FILE:
                raise ArtifactIntegrityError(f"{root / name} is not covered by {manifest}")
            continue
        if not on_disk:
            raise ArtifactIntegrityError(f"{root / name} is listed in {manifest} but missing")
        if _sha256(root / name) != listed[name]:
            raise ArtifactIntegrityError(f"{root / name} does not match its sha256 in {manifest} (tampered with "
                                         "or corrupted)")
    return _sha256(manifest)


def save_model_set(out_dir: str | Path, models: Mapping[str, ComponentRiskModel], metadata: Mapping[str, Any],
                   baselines: Mapping[str, ComponentRiskModel] | None = None,
                   split: Mapping[str, Any] | None = None, versioned: bool = False) -> Path:
    """Write the artifact; fills in format_version, created, version, checksum and library versions.

    ``versioned``: ``out_dir`` is a directory of artifacts and this one goes into
    ``out_dir/<version>`` (names sort by creation time; the stream loads the newest).
    """
    if versioned:
        root = Path(out_dir)
        root.mkdir(parents=True, exist_ok=True)
        tmp = root / f".incoming-{datetime.now(timezone.utc):%Y%m%dT%H%M%S%f}"
        written = save_model_set(tmp, models, metadata, baselines, split)
        final = root / json.loads((written / METADATA_FILE).read_text())["version"]
        tmp.rename(final)
        return final
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    joblib.dump({"models": dict(models), "baselines": dict(baselines or {})}, out / MODEL_FILE, compress=3)
    digest = _sha256(out / MODEL_FILE)
    created = datetime.now(timezone.utc)
    meta = {"format_version": FORMAT_VERSION, **dict(metadata),
            "created": created.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "version": f"risk-{created:%Y%m%dT%H%M%SZ}-{digest[:8]}",
            "model_sha256": digest,
            "libraries": {"python": platform.python_version(), "numpy": np.__version__,
                          "scikit-learn": sklearn.__version__}}
    validate_metadata(meta)
    (out / METADATA_FILE).write_text(json.dumps(meta, indent=2, sort_keys=False, default=_json_default) + "\n")
    if split is not None:
        (out / SPLIT_FILE).write_text(json.dumps(dict(split)) + "\n")
    write_manifest(out)
    return out


def _json_default(o: Any) -> Any:
    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (np.floating,)):
        return float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    raise TypeError(f"not JSON serialisable: {type(o)}")


def load_metadata(path: str | Path) -> dict[str, Any]:
    """``metadata.json`` of an artifact, validated."""
    p = Path(path) / METADATA_FILE
    if not p.exists():
        raise ArtifactError(f"{p} does not exist: not a risk-model artifact")
    meta = json.loads(p.read_text())
    validate_metadata(meta)
    return meta


def load_model_set(path: str | Path) -> RiskModelSet:
    """Load and validate an artifact directory: its manifest first, so nothing unverified is parsed or unpickled."""
    if not (Path(path) / METADATA_FILE).exists():
        raise ArtifactError(f"{Path(path) / METADATA_FILE} does not exist: not a risk-model artifact")
    verify_manifest(path)
    meta = load_metadata(path)
    model_path = Path(path) / MODEL_FILE
    if meta.get("model_sha256") and _sha256(model_path) != meta["model_sha256"]:
        raise ArtifactError(f"{model_path} does not match the sha256 in metadata.json (a mixed-up artifact)")
    blob = joblib.load(model_path)
    return RiskModelSet(blob["models"], meta, blob.get("baselines") or None)


def load_split(path: str | Path) -> dict[str, Any]:
    """``split.json`` of an artifact."""
    return json.loads((Path(path) / SPLIT_FILE).read_text())
