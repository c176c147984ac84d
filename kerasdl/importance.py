"""Which hyperparameters mattered in a search: `kerasdl show SEARCH_DIR`.

The method, stated where it is shown: for each hyperparameter, the share of the
objective's variance across the finished trials that its values explain (eta squared,
one-way ANOVA's between-group sum of squares over the total). The trials are grouped by
the hyperparameter's value; a number with more than 4 distinct values is split into 3
quantile bins. 1 means the objective is fully told by that hyperparameter alone, 0 that
its groups score alike. It looks at one hyperparameter at a time, so with few trials
(or hyperparameters that moved together) the shares are rough and can add up past 1.
"""

import pandas as pd

METHOD = ("eta squared: the share of the objective's variance that each hyperparameter's "
          "values explain, one at a time (numbers in 3 quantile bins); rough with few trials")
MIN_TRIALS = 3


def importance(frame, names, objective):
    """Eta squared of each hyperparameter in `names` for `objective`, largest first.

    Args:
        frame: one row per finished trial with the hyperparameters and the objective.

    Returns:
        A list of `(name, share)`; empty with fewer than 3 trials or a constant objective.
        A hyperparameter that took one value has share 0; one whose groups hold one trial
        each (3 trials in 3 bins, or a choice never repeated) is left out: each trial
        would be its own group, and the share 1 whatever the hyperparameter did.
    """
    frame = frame[frame[objective].notna()] if objective in frame else frame.iloc[0:0]
    if len(frame) < MIN_TRIALS:
        return []
    y = frame[objective].astype(float)
    total = float(((y - y.mean()) ** 2).sum())
    if y.max() - y.min() <= 1e-12 * max(1.0, abs(y.max())):
        return []
    shares = []
    for name in names:
        if name not in frame:
            continue
        values = frame[name]
        groups = values.astype(str).where(values.notna(), "(inactive)")
        numeric = pd.to_numeric(values, errors="coerce")
        if numeric.notna().all() and values.nunique() > 4 and values.dtype != bool:
            groups = pd.qcut(numeric.rank(method="first"), 3, labels=False)
        if groups.nunique() == len(frame):
            # Every trial a group of its own: any such grouping "explains" everything.
            continue
        means = y.groupby(groups).transform("mean")
        shares.append((name, float(((means - y.mean()) ** 2).sum()) / total))
    return sorted(shares, key=lambda item: -item[1])
