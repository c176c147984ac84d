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
    constants = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1:
            target = node.targets[0]
            if isinstance(target, ast.Name) and target.id.isupper():
                try:
                    constants[target.id] = ast.literal_eval(node.value)
                except ValueError:
                    constants[target.id] = ast.unparse(node.value)
    description = next((line for line in lines[1:] if line.strip()), "")
    return {
        "name": name,
        "title": lines[0] if lines else name,
        "description": description.strip(),
        "doc": doc,
        "task": constants.get("TASK", "?"),
        "defaults": constants.get("DEFAULTS", {}),
        "objective": constants.get("OBJECTIVE", "?"),
        "parameters": _stated_parameters(lines),
        "search_space": _search_space(tree),
        "has_fit": any(isinstance(node, ast.FunctionDef) and node.name == "fit"
                       for node in tree.body),
    }


def _stated_parameters(lines):
    for line in lines:
        if line.strip().lower().startswith("parameters:"):
            digits = "".join(ch for ch in line.split(":", 1)[1].split("(")[0] if ch.isdigit())
            return int(digits) if digits else None
    return None


def _search_space(tree):
    """Lists the `hp.Int/Float/Choice/Boolean/Fixed(...)` calls of a recipe."""
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
        names = {"Int": ("name", "min_value", "max_value", "step"),
                 "Float": ("name", "min_value", "max_value", "step"),
                 "Choice": ("name", "values"),
                 "Boolean": ("name",),
                 "Fixed": ("name", "value")}[kind]
        args = {}
        for key, value in zip(names, node.args):
            args[key] = _literal(value)
        for keyword in node.keywords:
            args[keyword.arg] = _literal(keyword.value)
        name = args.get("name")
        if isinstance(name, str) and name not in space:
            space[name] = {"type": kind, **args}
    return list(space.values())


def _literal(node):
    try:
        return ast.literal_eval(node)
    except ValueError:
        return ast.unparse(node)


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
