"""Hyperparameters: `--set NAME=VALUE` overrides checked against a recipe's search space."""

from kerasdl.errors import UsageError

TRUE = ("true", "1", "yes", "on")
FALSE = ("false", "0", "no", "off")


def parse_assignments(assignments):
    """Parses `NAME=VALUE` strings into a dict of raw values.

    Raises:
        UsageError: for a string without `=` or with an empty name.
    """
    overrides = {}
    for assignment in assignments:
        name, sep, value = str(assignment).partition("=")
        if not sep or not name.strip():
            raise UsageError(
                f"`--set` takes NAME=VALUE, for example `--set learning_rate=0.01`. "
                f"Received: {assignment!r}"
            )
        overrides[name.strip()] = value.strip()
    return overrides


def describe(hp):
    """Returns one dict per hyperparameter of `hp.space`: name, type, range or values, default."""
    rows = []
    for param in hp.space:
        kind = type(param).__name__
        row = {"name": param.name, "type": kind, "default": param.default}
        if kind in ("Int", "Float"):
            row.update(min_value=param.min_value, max_value=param.max_value,
                       step=param.step, sampling=param.sampling)
        elif kind == "Choice":
            row["values"] = list(param.values)
        elif kind == "Fixed":
            row["value"] = param.value
        rows.append(row)
    return rows


def _domain(param):
    kind = type(param).__name__
    if kind == "Int":
        return f"an integer in [{param.min_value}, {param.max_value}]"
    if kind == "Float":
        return f"a number in [{param.min_value}, {param.max_value}]"
    if kind == "Choice":
        return "one of " + ", ".join(map(str, param.values))
    if kind == "Boolean":
        return "true or false"
    return f"{param.value!r} (fixed)"


def check_value(param, raw):
    """Converts `raw` (a string or a typed value) to `param`'s type and checks its domain.

    Returns:
        The typed value.

    Raises:
        UsageError: naming the hyperparameter, its domain and the received value.
    """
    kind = type(param).__name__
    text = str(raw).strip()
    error = UsageError(
        f"`{param.name}` must be {_domain(param)}. Received: {param.name}={text}"
    )
    try:
        if kind == "Int":
            if isinstance(raw, bool):
                raise ValueError
            value = int(raw) if not isinstance(raw, str) else int(text)
            if isinstance(raw, float) and raw != value:
                raise ValueError
            if not param.min_value <= value <= param.max_value:
                raise ValueError
        elif kind == "Float":
            value = float(text)
            if not param.min_value <= value <= param.max_value:
                raise ValueError
        elif kind == "Choice":
            matches = [choice for choice in param.values if str(choice) == text
                       or (not isinstance(choice, str) and _same_number(choice, text))]
            if not matches:
                raise ValueError
            value = matches[0]
        elif kind == "Boolean":
            if isinstance(raw, bool):
                value = raw
            elif text.lower() in TRUE:
                value = True
            elif text.lower() in FALSE:
                value = False
            else:
                raise ValueError
        else:
            if str(param.value) != text:
                raise ValueError
            value = param.value
    except ValueError:
        raise error from None
    return value


def _same_number(choice, text):
    try:
        return float(choice) == float(text)
    except ValueError:
        return False


def pinned(overrides, space_hp):
    """Returns a fresh HyperParameters with `overrides` pinned by `hp.Fixed`.

    Args:
        overrides: dict of name -> raw value.
        space_hp: a HyperParameters holding the recipe's whole search space (after
            building the default model and pipeline with it).

    Raises:
        UsageError: for an unknown name (listing the valid names) or a bad value.
    """
    import keras_tuner

    params = {param.name: param for param in space_hp.space}
    hp = keras_tuner.HyperParameters()
    for name, raw in overrides.items():
        if name not in params:
            raise UsageError(
                f"Unknown hyperparameter: {name!r}. Valid names: {', '.join(sorted(params))}"
            )
        hp.Fixed(name, check_value(params[name], raw))
    return hp


def check_overrides(overrides, search_space):
    """Checks `--set` values against a recipe's declared search space, before TensorFlow.

    Args:
        overrides: dict of name -> raw value (`parse_assignments`).
        search_space: rows of `kerasdl.registry.recipe_info(...)["search_space"]`, which
            the contract test holds equal to the space building the recipe declares.

    Raises:
        UsageError: for an unknown name (listing the valid names), or a value outside
            its hyperparameter's range or choices.
    """
    rows = {row["name"]: row for row in search_space}
    for name, raw in overrides.items():
        row = rows.get(name)
        if row is None and rows:
            raise UsageError(
                f"Unknown hyperparameter: {name!r}. Valid names: {', '.join(sorted(rows))}"
            )
        if row is None or row["type"] == "Fixed":
            continue
        values = row.get("values")
        if row["type"] == "Choice" and not isinstance(values, list):
            continue  # choices the source does not spell out: the built model checks them
        if row["type"] in ("Int", "Float") and not all(
                isinstance(row.get(key), (int, float)) for key in ("min_value", "max_value")):
            continue
        param = type(row["type"], (), {})()
        param.__dict__.update(row)
        check_value(param, raw)
