"""Class integrity: which students handed in the same network, or one made from another's.

    tensors       read a checkpoint's tensors from its bytes (nothing unpickled)
    fingerprint   weight digests blind to file format, key names, tensor and unit order   (pure)
    matching      weight matching of two same-architecture networks over unit orders      (pure)
    behaviour     every pair's agreement, kappa on errors, same wrong labels              (pure)
    rank          candidates, costly evidence, thresholds, flagged pairs                  (pure)
    words         a pair's evidence in English or Chinese                                 (pure)
    kept          what one grade keeps (logits.npy, similarity.json, weights.npz)
    outputs       the class's run over graded folders, similarity.csv

See docs/similarity.md for what each kind of evidence means and what a TA should do with it.
"""

from grader.similarity.kept import Kept, write_kept
from grader.similarity.rank import KINDS, THRESHOLDS, Thresholds

__all__ = ["KINDS", "THRESHOLDS", "Kept", "Thresholds", "write_kept"]
