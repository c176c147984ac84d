"""Finds recipes and reads what they declare, without importing TensorFlow.

A recipe is named (`cnn`: a file of the package `kerasdl.recipes`) or given as the
path of a Python file that keeps the contract (`./house_prices.py`; it runs with the
user's permissions: it is their code). `list_recipes()`, `recipe_info()` and
`recipe_source()` read recipe files as text (`ast`), so `kerasdl list`, `show`,
`copy` and `--help` stay fast; `load_recipe()` imports a recipe module and checks
the names the contract requires (recipes/README.md); `kerasdl.check` checks the rest.
"""

import ast
import difflib
import hashlib
import importlib
import importlib.util
import os
import sys
from pathlib import Path

from kerasdl.errors import RecipeError

PACKAGE = "kerasdl.recipes"
# Module names of recipes loaded from a file path (`kerasdl train ./mine.py`).
FILE_PACKAGE = "kerasdl_recipe_files"
REQUIRED = ("DEFAULTS", "OBJECTIVE", "TASK", "build_model", "make_pipeline")
HP_METHODS = ("Int", "Float", "Choice", "Boolean", "Fixed")
# The TASK vocabulary: what each task's data yields (recipes/README.md, "TASK").
TASKS = ("classification", "image_classification", "sequence_classification", "regression",
         "forecasting", "reconstruction", "generation")
# The tasks whose models classify (class names, confusion matrices, per-class recall).
CLASSIFICATION = ("image_classification", "classification", "sequence_classification")
# Optional functions a recipe declares by defining them (recipes/README.md, "Hooks"),
# each with the arguments the library passes to it.
HOOKS = {
    "fit": ("hp", "model", "train_data", "validation_data", "epochs", "initial_epoch",
            "callbacks", "verbose"),
    "reconstruction_target": ("images",),
    "generate": ("model", "num_samples", "seed"),
    "image_grids": ("model",),
    "serving_model": ("model",),
}
# Hooks a task cannot do without.
TASK_HOOKS = {"reconstruction": ("reconstruction_target",), "generation": ("generate",)}


def recipes_dir():
    """Returns the folder holding the recipe files.

    Installed, they are the package `kerasdl.recipes`; in a checkout that was not
    installed (`python cli.py ...`) they are the `recipes/` folder beside `kerasdl/`.
    """
    spec = importlib.util.find_spec(PACKAGE)
    if spec is not None and spec.submodule_search_locations:
        return Path(list(spec.submodule_search_locations)[0])
    return Path(__file__).resolve().parent.parent / "recipes"


def contract_path():
    """The installed copy of the recipe contract (recipes/README.md), shipped with the recipes.

    Installed, it is `README.md` of the package `kerasdl.recipes` (package data); error
    messages, `kerasdl copy` and a failed `kerasdl check` point there, not at a repository
    path an installed user does not have.
    """
    return recipes_dir() / "README.md"


def _see_contract():
    return f"see the recipe contract, {contract_path()}"


def list_recipes():
    """Returns the sorted names of all recipes."""
    return sorted(
        path.stem for path in recipes_dir().glob("*.py") if not path.stem.startswith("_")
    )


def is_file_reference(recipe):
    """Whether `recipe` is the path of a recipe file rather than a recipe's name."""
    text = str(recipe)
    return text.endswith(".py") or "/" in text or os.sep in text


def recipe_path(name):
    """Returns the file of recipe `name`, or the recipe file `name` is the path of.

    Raises:
        RecipeError: when no recipe has that name (the message lists the valid names),
            or the path is not an existing `.py` file.
    """
    if is_file_reference(name):
        path = Path(str(name)).expanduser()
        if path.suffix != ".py":
            raise RecipeError(f"A recipe file must be a .py file. Received: {str(name)!r}")
        if not path.is_file():
            raise RecipeError(f"Recipe file not found: {str(name)!r}. Give the path of a .py "
                              "file that keeps the recipe contract, or a recipe name "
                              f"({', '.join(list_recipes())}).")
        return path.resolve()
    names = list_recipes()
    if name not in names:
        close = difflib.get_close_matches(str(name), names, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise RecipeError(f"Unknown recipe: {name!r}.{hint} Valid recipes: {', '.join(names)}")
    return recipes_dir() / f"{name}.py"


def recipe_reference(recipe):
    """What a run records to find its recipe again: the name, or the file's absolute path."""
    return str(recipe_path(recipe)) if is_file_reference(recipe) else recipe


def recipe_name(recipe):
    """A recipe's short name: `cnn`, or a recipe file's stem (`house_prices`)."""
    return Path(str(recipe)).stem if is_file_reference(recipe) else recipe


def copy_recipe(name, dest, force=False):
    """Copies shipped recipe `name`'s file to `dest`: a .py file name, or a folder (created).

    A `dest` that is not a .py file is a folder: the file is `dest/NAME.py`. The file is
    written atomically and never through a symbolic link or outside its folder.

    Returns:
        The `Path` written.

    Raises:
        UsageError: for a path instead of a name, a file `dest` without .py, or an
            existing file without `force`.
        KerasdlError: for a target that is a link, a folder, or resolves elsewhere.
    """
    from kerasdl.errors import KerasdlError
    from kerasdl.errors import UsageError
    from kerasdl.runs import write_text

    if is_file_reference(name):
        raise UsageError(f"`copy` copies a shipped recipe by name ({', '.join(list_recipes())}); "
                         f"{name!r} is a path, not a name (a file of your own: copy it with "
                         "your shell).")
    source = recipe_source(name)  # a packaged recipe's name, never a path
    target = Path(dest)
    if target.is_dir() or str(dest).endswith(("/", os.sep)) or target.suffix != ".py":
        if target.exists() and not target.is_dir():
            raise UsageError(f"{str(dest)!r} is a file without a .py suffix; give a folder or "
                             "a .py file name.")
        target = target / f"{name}.py"
    if target.is_symlink():
        raise KerasdlError(f"{str(target)!r} is a symbolic link; refusing to write through it.")
    if target.parent.exists() and target.parent.resolve() != target.resolve().parent:
        raise KerasdlError(f"{str(target)!r} resolves outside {str(target.parent)!r}; refusing.")
    if target.exists() and not force:
        raise UsageError(f"{str(target)!r} exists; pass --force to overwrite it.")
    if target.is_dir():
        raise KerasdlError(f"{str(target)!r} is a folder; give a file name or another folder.")
    write_text(target, source)
    return target


def recipe_source(name):
    """Returns the source text of recipe `name` (a name or a file path)."""
    return recipe_path(name).read_text(encoding="utf-8")


def recipe_info(name):
    """Reads a recipe's header, task, defaults and search space from its source.

    Returns:
        A dict with `name`, `title`, `description`, `doc` (the whole header),
        `task`, `defaults`, `objective`, `parameters` (the default model's parameter
        count stated in the header, or None), `search_space` (a list of dicts,
        one per `hp.*` call, in source order), `hooks` (the optional functions it
        defines), `has_fit` (whether the recipe trains with its own `fit`) and
        `pretrained` (its `PRETRAINED` declaration, or None).

    Raises:
        RecipeError: for an unknown name, a missing file, or a file that is not Python.
    """
    source = recipe_source(name)
    try:
        tree = ast.parse(source)
    except SyntaxError as error:
        raise RecipeError(f"Recipe {str(name)!r} is not valid Python: {error.msg} at line "
                          f"{error.lineno}.") from None
    doc = ast.get_docstring(tree) or ""
    lines = doc.splitlines()
    nodes = _constant_nodes(tree)
    constants = {name: _literal(node, nodes) for name, node in nodes.items()}
    description = next((line for line in lines[1:] if line.strip()), "")
    functions = {node.name for node in tree.body if isinstance(node, ast.FunctionDef)}
    name = recipe_name(name)
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
        "hooks": [hook for hook in HOOKS if hook in functions],
        "has_fit": "fit" in functions,
        "pretrained": constants.get("PRETRAINED"),
        "missing": [attr for attr in REQUIRED if attr not in _defined_names(tree)],
    }


def _defined_names(tree):
    """The names a module's top level defines: functions, classes, assignments, imports."""
    names = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names.update(target.id for target in targets if isinstance(target, ast.Name))
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names.update((alias.asname or alias.name).split(".")[0] for alias in node.names)
    return names


def contract_info(recipe):
    """`recipe_info(recipe)`, refusing a recipe whose source lacks a required name.

    What the commands read before TensorFlow starts: a recipe file that breaks the
    contract is one line naming what it lacks (exit 2), at once.

    Raises:
        RecipeError: for an unknown recipe, or a source without a required name or with
            a TASK outside the vocabulary.
    """
    info = recipe_info(recipe)
    if info["missing"]:
        raise RecipeError(f"Recipe {str(recipe)!r} breaks the recipe contract: it lacks "
                          f"{', '.join(info['missing'])} ({_see_contract()}).")
    if isinstance(info["task"], str) and info["task"] not in TASKS \
            and info["task"].isidentifier():
        raise RecipeError(f"Recipe {str(recipe)!r} breaks the recipe contract: TASK must be "
                          f"one of {', '.join(TASKS)}. Received: TASK={info['task']!r}")
    return info


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
    """Imports recipe `name` (a name or a file path) and checks the contract's names.

    A recipe file is imported as a module of its own (its code runs with the user's
    permissions), once per process.

    Raises:
        RecipeError: for an unknown name or file, a file that fails to import, or a
            module missing a required name, with a TASK outside the vocabulary, or
            without a hook its task needs; the message names what is missing.
    """
    path = recipe_path(name)
    if is_file_reference(name):
        module = _import_file(path)
    else:
        module = _import_packaged(name, path)
    missing = [attr for attr in REQUIRED if not hasattr(module, attr)]
    if missing:
        raise RecipeError(
            f"Recipe {str(name)!r} breaks the recipe contract: it lacks {', '.join(missing)} "
            f"({_see_contract()})."
        )
    if module.TASK not in TASKS:
        raise RecipeError(f"Recipe {str(name)!r} breaks the recipe contract: TASK must be one "
                          f"of {', '.join(TASKS)}. Received: TASK={module.TASK!r}")
    needed = [hook for hook in TASK_HOOKS.get(module.TASK, ()) if hook_of(module, hook) is None]
    if needed:
        raise RecipeError(f"Recipe {str(name)!r} breaks the recipe contract: a "
                          f"{module.TASK} recipe defines {', '.join(needed)} "
                          f"({_see_contract()}).")
    return module


def hook_of(recipe, name):
    """The optional function `name` a recipe module declares (defines), or None.

    The one place the library asks whether a recipe offers a hook; `name` must be one
    of the contract's `HOOKS`.
    """
    if name not in HOOKS:
        raise ValueError(f"Unknown recipe hook: {name!r}. Valid hooks: {', '.join(HOOKS)}")
    function = getattr(recipe, name, None)
    return function if callable(function) else None


def pretrained_of(recipe):
    """A recipe's `PRETRAINED` declaration (a dict), or None for a recipe without one."""
    return getattr(recipe, "PRETRAINED", None)


def _import_packaged(name, path):
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
    return importlib.import_module(module_name)


def _import_file(path):
    """Imports the recipe file `path` once per process, as a module of its own name."""
    digest = hashlib.sha256(str(path).encode()).hexdigest()[:12]
    stem = "".join(ch if ch.isalnum() else "_" for ch in path.stem)
    module_name = f"{FILE_PACKAGE}.{stem}_{digest}"
    if module_name in sys.modules:
        return sys.modules[module_name]
    spec = importlib.util.spec_from_file_location(module_name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as error:
        del sys.modules[module_name]
        where = ""
        if isinstance(error, SyntaxError) and error.lineno:
            where = f" at line {error.lineno}"
        message = str(error).strip().splitlines()[0] if str(error).strip() else ""
        raise RecipeError(f"Recipe file {str(path)!r} fails to import{where}: "
                          f"{type(error).__name__}: {message}") from None
    return module


def servable(model, recipe=None):
    """The part of a model that serves predictions: what the recipe's `serving_model`
    hook returns (a GAN's generator), else the model."""
    serving_model = hook_of(recipe, "serving_model") if recipe is not None else None
    return serving_model(model) if serving_model is not None else model
