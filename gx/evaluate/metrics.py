"""Sample-quality figures computed in numpy from the classifier's outputs.

- **Agreement** (conditional models): the fraction of generated images the classifier reads as
  the label they were generated for, overall and per class.
- **Fréchet distance** between two sets of feature vectors, each summarised as a Gaussian
  (mean mu, covariance S)::

      FD = |mu_r - mu_g|^2 + Tr(S_r + S_g - 2 (S_r^1/2 S_g S_r^1/2)^1/2)

  The last term is Tr((S_r S_g)^1/2) written with symmetric matrices only, so both square roots
  come from an eigendecomposition of a symmetric positive semi-definite matrix (``numpy.linalg
  .eigh``, negative rounding-noise eigenvalues clipped to 0). This is the FID formula, in the
  evaluation classifier's 128-value feature space instead of Inception's, so its values are not
  comparable with published FIDs; 0 means identical statistics.
- **Diversity**: the mean pairwise Euclidean distance between generated feature vectors divided
  by the same for real ones; within each class for conditional models (then averaged over
  classes), over all images otherwise. About 1 for samples as varied as the data; it falls to 0
  when the generator collapses to one image (per class).
"""

from __future__ import annotations

import numpy as np

# Pairs per class grow quadratically; this many images per group is plenty for a mean.
DIVERSITY_SAMPLE = 250


def agreement(
    predictions: np.ndarray, requested: np.ndarray, classes: int
) -> tuple[float, list[float | None]]:
    """Overall and per-class fraction of predictions equal to the requested labels."""
    hits = predictions == requested
    per_class = [
        float(hits[requested == c].mean()) if np.any(requested == c) else None
        for c in range(classes)
    ]
    return float(hits.mean()), per_class


def feature_statistics(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and covariance (unbiased, float64) of feature vectors (N, D), N >= 2."""
    features = np.asarray(features, np.float64)
    return features.mean(axis=0), np.cov(features, rowvar=False)


def symmetric_sqrt(matrix: np.ndarray) -> np.ndarray:
    """The square root of a symmetric positive semi-definite matrix, by eigendecomposition."""
    symmetric = (matrix + matrix.T) / 2  # remove rounding asymmetry before eigh
    values, vectors = np.linalg.eigh(symmetric)
    return (vectors * np.sqrt(np.clip(values, 0.0, None))) @ vectors.T


def frechet_distance(
    mean_a: np.ndarray, cov_a: np.ndarray, mean_b: np.ndarray, cov_b: np.ndarray
) -> float:
    """The Fréchet distance between two Gaussians (formula in the module docstring)."""
    root_a = symmetric_sqrt(cov_a)
    cross = symmetric_sqrt(root_a @ cov_b @ root_a)
    difference = mean_a - mean_b
    value = difference @ difference + np.trace(cov_a) + np.trace(cov_b) - 2 * np.trace(cross)
    return float(max(value, 0.0))


def feature_frechet_distance(features_a: np.ndarray, features_b: np.ndarray) -> float:
    return frechet_distance(*feature_statistics(features_a), *feature_statistics(features_b))


def mean_pairwise_distance(features: np.ndarray) -> float:
    """Mean Euclidean distance over all pairs of distinct rows (0 for fewer than two rows)."""
    points = np.asarray(features, np.float64)
    if len(points) < 2:
        return 0.0
    squares = (points**2).sum(axis=1)
    distances = squares[:, None] + squares[None, :] - 2 * points @ points.T
    distances = np.sqrt(np.clip(distances, 0.0, None))
    count = len(points)
    return float(distances.sum() / (count * (count - 1)))


def _grouped_spread(features: np.ndarray, labels: np.ndarray | None) -> float:
    if labels is None:
        return mean_pairwise_distance(features[: DIVERSITY_SAMPLE * 4])
    spreads = [
        mean_pairwise_distance(features[labels == c][:DIVERSITY_SAMPLE]) for c in np.unique(labels)
    ]
    return float(np.mean(spreads))


def diversity(
    generated: np.ndarray,
    real: np.ndarray,
    generated_labels: np.ndarray | None = None,
    real_labels: np.ndarray | None = None,
) -> float:
    """Generated spread / real spread in feature space (see the module docstring).

    With labels for both sets, spreads are within classes, and only classes present in both
    sets count, so the figure compares like with like.
    """
    if generated_labels is None or real_labels is None:
        generated_labels = real_labels = None
    else:
        shared = np.intersect1d(generated_labels, real_labels)
        keep_generated = np.isin(generated_labels, shared)
        keep_real = np.isin(real_labels, shared)
        generated, generated_labels = generated[keep_generated], generated_labels[keep_generated]
        real, real_labels = real[keep_real], real_labels[keep_real]
    reference = _grouped_spread(real, real_labels)
    if reference == 0:
        return 0.0
    return _grouped_spread(generated, generated_labels) / reference
