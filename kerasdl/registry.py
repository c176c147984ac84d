"""Finds recipes and reads what they declare, without importing TensorFlow.

`list_recipes()`, `recipe_info()` and `recipe_source()` read the recipe files as
text (`ast`), so `kerasdl list`, `show`, `copy` and `--help` stay fast;
`load_recipe()` imports a recipe module and checks the recipe contract.
"""

import ast
import importlib
import importlib.util
import sys
from pathlib import Path

from kerasdl.errors import RecipeError

PACKAGE = "kerasdl.recipes"
REQUIRED = ("DEFAULTS", "OBJECTIVE", "TASK", "build_model", "make_pipeline")
HP_METHODS = ("Int", "Float", "Choice", "Boolean", "Fixed")


def recipes_dir():
    """Returns the folder holding the recipe files.

    Installed, they are the package `kerasdl.recipes`; in a checkout that was not
    installed (`python cli.py ...`) they are the `recipes/` folder beside `kerasdl/`.
    """
    spec = importlib.util.find_spec(PACKAGE)
    if spec is not None and spec.submodule_search_locations:
        return Path(list(spec.submodule_search_locations)[0])
    return Path(__file__).resolve().parent.parent / "recipes"


def list_recipes():
    """Returns the sorted names of all recipes."""
    return sorted(
        path.stem for path in recipes_dir().glob("*.py") if not path.stem.startswith("_")
    )


def recipe_path(name):
    """Returns the file of recipe `name`.

    Raises:
        RecipeError: when no recipe has that name; the message lists the valid names.
    """
    names = list_recipes()
    if name not in names:
        raise RecipeError(
            f"Unknown recipe: {name!r}. Valid recipes: {', '.join(names)}"
        )
    return recipes_dir() / f"{name}.py"


def recipe_source(name):
    """Returns the source text of recipe `name`."""
    return recipe_path(name).read_text(encoding="utf-8")


def recipe_info(name):
    """Reads a recipe's header, task, defaults and search space from its source.

    Returns:
        A dict with `name`, `title`, `description`, `doc` (the whole header),
        `task`, `defaults`, `objective`, `parameters` (the default model's parameter
        count stated in the header, or None), `search_space` (a list of dicts,
        one per `hp.*` call, in source order) and `has_fit` (whether the recipe
        trains with its own `fit`).
    """
    tree = ast.parse(recipe_source(name))
    doc = ast.get_docstring(tree) or ""
    lines = doc.splitlines()
    nodes = _constant_nodes(tree)
    constants = {name: _literal(node, nodes) for name, node in nodes.items()}
    description = next((line for line in lines[1:] if line.strip()), "")
    return {
        "name": name,
        "title": lines[0] if lines else name,
        "description": description.strip(),
        "doc": doc,
        "task": constants.get("TASK", "?"),
        "defaults": constants.get("DEFAULTS", {}),
        "objective": _objective(nodes.get("OBJECTIVE")),
        "parameters": _stated_parameters(lines),
        "search_space": _search_space(tree, nodes),
        "has_fit": any(isinstance(node, ast.FunctionDef) and node.name == "fit"
                       for node in tree.body),
    }


def _stated_parameters(lines):
    for line in lines:
        if line.strip().lower().startswith("parameters:"):
            digits = "".join(ch for ch in line.split(":", 1)[1].split("(")[0] if ch.isdigit())
            return int(digits) if digits else None
    return None


def _constant_nodes(tree):
    """Maps the module's UPPER_CASE names to the expressions assigned to them."""
    nodes = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1:
            target = node.targets[0]
            if isinstance(target, ast.Name) and target.id.isupper():
                nodes[target.id] = node.value
    return nodes


def _objective(node):
    """Reads `OBJECTIVE` as `{"name", "direction"}`, the way Keras Tuner reads it.

    A plain metric name gets the direction `kerasdl tune` gives it: `max` for
    accuracy and AUC, `min` for the rest (losses, errors).
    """
    if node is None:
        return {"name": "?", "direction": "?"}
    if isinstance(node, ast.Call) and _name_of(node.func) == "Objective":
        args = dict(zip(("name", "direction"), (_literal(arg) for arg in node.args)))
        args.update({keyword.arg: _literal(keyword.value) for keyword in node.keywords})
        return {"name": args.get("name", "?"), "direction": args.get("direction", "?")}
    name = str(_literal(node))
    # The rule of `kerasdl.tuning.objective_from`, which the search uses.
    direction = "max" if "acc" in name or "auc" in name else "min"
    return {"name": name, "direction": direction}


def _name_of(func):
    if isinstance(func, ast.Attribute):
        return func.attr
    return func.id if isinstance(func, ast.Name) else None


# What Keras Tuner gives a hyperparameter whose call leaves an argument out.
_KT_DEFAULTS = {"Int": {"step": 1, "sampling": "linear"},
                "Float": {"step": None, "sampling": "linear"}}


def _search_space(tree, constants=None):
    """Lists the `hp.Int/Float/Choice/Boolean/Fixed(...)` calls of a recipe.

    Each entry holds what Keras Tuner makes of the call (the keys of
    `kerasdl.hparams.describe`): names of module constants are resolved (`VARIANTS`,
    `list(APPLICATIONS)`), and a left-out `default` is Keras Tuner's (the minimum, the
    first choice, False).
    """
    constants = constants or {}
    space = {}
    calls = sorted(
        (node for node in ast.walk(tree) if isinstance(node, ast.Call)),
        key=lambda node: (node.lineno, node.col_offset),
    )
    for node in calls:
        if not (
            isinstance(node.func, ast.Attribute)
            and node.func.attr in HP_METHODS
            and isinstance(node.func.value, ast.Name)
            and node.func.value.id == "hp"
        ):
            continue
        kind = node.func.attr
        names = {"Int": ("name", "min_value", "max_value", "step", "sampling", "default"),
                 "Float": ("name", "min_value", "max_value", "step", "sampling", "default"),
                 "Choice": ("name", "values", "ordered", "default"),
                 "Boolean": ("name", "default"),
                 "Fixed": ("name", "value")}[kind]
        args = dict(_KT_DEFAULTS.get(kind, {}))
        for key, value in zip(names, node.args):
            args[key] = _literal(value, constants)
        for keyword in node.keywords:
            if keyword.arg in names:
                args[keyword.arg] = _literal(keyword.value, constants)
        args.pop("ordered", None)
        name = args.get("name")
        if not isinstance(name, str) or name in space:
            continue
        if kind == "Choice" and isinstance(args.get("values"), (list, tuple)):
            args["values"] = list(args["values"])
        if "default" not in args:
            args["default"] = {"Int": args.get("min_value"), "Float": args.get("min_value"),
                               "Boolean": False, "Fixed": args.get("value"),
                               "Choice": (args.get("values") or [None])[0]
                               if isinstance(args.get("values"), list) else None}[kind]
        if kind == "Fixed":
            args["default"] = args.get("value")
        space[name] = {"type": kind, **args}
    return list(space.values())


def _literal(node, constants=None):
    """The value of an expression made of literals and module constants, else its text."""
    try:
        return _evaluate(node, constants or {}, depth=0)
    except (ValueError, TypeError, KeyError, RecursionError):
        return ast.unparse(node)


def _evaluate(node, constants, depth):
    if depth > 10:
        raise ValueError("too deep")
    try:
        return ast.literal_eval(node)
    except ValueError:
        pass
    if isinstance(node, ast.Name) and node.id in constants:
        return _evaluate(constants[node.id], constants, depth + 1)
    if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
            and node.func.id in ("list", "tuple", "sorted") and len(node.args) == 1
            and not node.keywords):
        inner = node.args[0]
        if isinstance(inner, ast.Name) and inner.id in constants:
            inner = constants[inner.id]
        if isinstance(inner, ast.Dict):  # iterating a dict gives its keys
            values = [ast.literal_eval(key) for key in inner.keys]
        else:
            values = list(_evaluate(inner, constants, depth + 1))
        return {"list": list, "tuple": tuple, "sorted": sorted}[node.func.id](values)
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        return -_evaluate(node.operand, constants, depth + 1)
    raise ValueError(ast.unparse(node))


def data_sets():
    """Returns the embedded data sets, name -> (modality, description), without imports.

    Read from `kerasdl.data.sources.EMBEDDED` as text, so `--help` stays fast.
    """
    source = Path(__file__).resolve().parent / "data" / "sources.py"
    tree = ast.parse(source.read_text(encoding="utf-8"))
    return ast.literal_eval(_constant_nodes(tree)["EMBEDDED"])


def load_recipe(name):
    """Imports recipe `name` and checks that it keeps the recipe contract.

    Raises:
        RecipeError: for an unknown name or a module missing a contract name.
    """
    path = recipe_path(name)
    module_name = f"{PACKAGE}.{name}"
    if importlib.util.find_spec(PACKAGE) is None and PACKAGE not in sys.modules:
        # A checkout that was not installed: register `recipes/` as kerasdl.recipes.
        init = path.parent / "__init__.py"
        spec = importlib.util.spec_from_file_location(
            PACKAGE, init, submodule_search_locations=[str(path.parent)]
        )
        package = importlib.util.module_from_spec(spec)
        sys.modules[PACKAGE] = package
        spec.loader.exec_module(package)
    module = importlib.import_module(module_name)
    missing = [attr for attr in REQUIRED if not hasattr(module, attr)]
    if missing:
        raise RecipeError(
            f"Recipe {name!r} breaks the recipe contract: it lacks {', '.join(missing)}."
        )
    return module
