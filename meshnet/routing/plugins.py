"""Policies from outside meshnet: files, modules and installed entry points.

A name in ``[routing].policy``, ``[allocation].method`` or ``[links].topology`` is one of:

``name``
    A built-in (``shortest_delay``), or an entry point of the group ``meshnet.routing``
    (``meshnet.allocation``, ``meshnet.topology``) that a pip-installed package declares::

        [project.entry-points."meshnet.routing"]
        contact_plan = "my_package.policies:ContactPlan"

``package.module:Name``
    ``Name`` imported from an importable module.
``path/to/file.py:Name``
    ``Name`` from a Python file; a relative path resolves against the scenario file's folder.

The Python API registers directly: ``ROUTING_POLICIES.register("mine")(MyPolicy)``.

:class:`PluginRegistry` is the :class:`meshnet.config.Registry` that knows these forms; its
``get`` returns the loaded object and its errors are one line naming the spec and the fix.

Examples
--------
>>> split_spec("examples/contact_plan.py:ContactPlan")
('examples/contact_plan.py', 'ContactPlan')
>>> is_spec("shortest_delay"), is_spec("pkg.mod:Cls")
(False, True)
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import sys
from importlib import metadata
from pathlib import Path

from ..config import Registry
from ..errors import MeshnetError, ScenarioError, quote_excerpt

#: Entry-point group of each registry kind.
GROUPS = {"routing policy": "meshnet.routing", "allocation method": "meshnet.allocation",
          "ISL topology": "meshnet.topology"}


class PluginError(ScenarioError):
    """A plugin spec cannot be loaded (missing file, module or name, or an import error)."""


def is_spec(name: str) -> bool:
    """True when ``name`` has the ``target:Name`` form (a module or a file)."""
    return isinstance(name, str) and ":" in name.strip(":") and not name.startswith(":")


def split_spec(spec: str) -> tuple[str, str]:
    """``"a/b.py:Name"`` -> ``("a/b.py", "Name")`` (split at the last colon)."""
    target, _, attr = spec.rpartition(":")
    return target, attr


def _is_file(target: str) -> bool:
    return target.endswith(".py") or "/" in target or "\\" in target


def absolute_spec(spec: str, base_dir) -> str:
    """A file spec with a relative path made absolute against ``base_dir``; others unchanged.

    Examples
    --------
    >>> absolute_spec("pol.py:P", "/srv/scen")
    '/srv/scen/pol.py:P'
    >>> absolute_spec("pkg.mod:P", "/srv")
    'pkg.mod:P'
    """
    if not is_spec(spec):
        return spec
    target, attr = split_spec(spec)
    if not _is_file(target) or Path(target).is_absolute() or base_dir is None:
        return spec
    return f"{(Path(base_dir) / target).resolve()}:{attr}"


def _load_file(target: str, attr: str, spec: str):
    path = Path(target).expanduser()
    if not path.is_file():
        raise PluginError(f"{spec}: no such Python file {path}; give a path relative to the "
                          "scenario file or an absolute one")
    # One module per file content path, so two files called policy.py do not collide.
    digest = hashlib.sha1(str(path.resolve()).encode()).hexdigest()[:12]
    mod_name = f"meshnet_plugin_{path.stem}_{digest}"
    module = sys.modules.get(mod_name)
    if module is None:
        loader_spec = importlib.util.spec_from_file_location(mod_name, path)
        if loader_spec is None or loader_spec.loader is None:
            raise PluginError(f"{spec}: {path} cannot be imported as a Python module")
        module = importlib.util.module_from_spec(loader_spec)
        sys.modules[mod_name] = module
        try:
            loader_spec.loader.exec_module(module)
        except Exception as exc:  # the user's code: report it in one line
            del sys.modules[mod_name]
            raise PluginError(f"{spec}: importing {path} failed: {type(exc).__name__}: "
                              f"{_short(exc)}") from None
    return _attr(module, attr, spec)


def _load_module(target: str, attr: str, spec: str):
    try:
        module = importlib.import_module(target)
    except ModuleNotFoundError as exc:
        raise PluginError(f"{spec}: no module named {exc.name!r}; install the package or give "
                          "a file path (path/to/file.py:Name)") from None
    except Exception as exc:
        raise PluginError(f"{spec}: importing {target} failed: {type(exc).__name__}: "
                          f"{_short(exc)}") from None
    return _attr(module, attr, spec)


def _attr(module, attr: str, spec: str):
    obj = module
    for part in attr.split("."):
        if not part.isidentifier() or not hasattr(obj, part):
            names = [n for n in dir(module) if not n.startswith("_")][:8]
            raise PluginError(f"{spec}: {module.__name__} has no attribute {attr!r}; it "
                              f"defines {', '.join(names) or 'nothing public'}")
        obj = getattr(obj, part)
    return obj


def _short(exc: BaseException, limit: int = 160) -> str:
    text = " ".join(str(exc).split())
    return text if len(text) <= limit else text[:limit - 3] + "..."


def load_spec(spec: str):
    """The object named by ``module:Name`` or ``path.py:Name``.

    Raises
    ------
    PluginError
        One line naming the spec, what is missing and how to fix it.
    """
    target, attr = split_spec(spec)
    if not target or not attr:
        raise PluginError(f"{quote_excerpt(spec)}: expected module:Name or path/to/file.py:Name")
    if _is_file(target):
        return _load_file(target, attr, spec)
    return _load_module(target, attr, spec)


def entry_points(group: str) -> dict:
    """``{name: EntryPoint}`` of an entry-point group (installed distributions)."""
    return {ep.name: ep for ep in metadata.entry_points(group=group)}


class PluginRegistry(Registry):
    """A :class:`~meshnet.config.Registry` that also resolves plugin specs and entry points.

    Parameters
    ----------
    what : str
        ``"routing policy"``, ``"allocation method"`` or ``"ISL topology"``.
    group : str, optional
        Entry-point group (default from :data:`GROUPS`).
    """

    def __init__(self, what: str, group: str | None = None):
        super().__init__(what)
        self.group = group or GROUPS[what]
        self._loaded: dict[str, object] = {}

    def builtin(self, name: str) -> bool:
        """True for a name registered in this process (built-ins and API registrations)."""
        return name in self._items

    def get(self, name: str):
        if name in self._items:
            return self._items[name]
        if name in self._loaded:
            return self._loaded[name]
        if is_spec(name):
            obj = load_spec(name)
        else:
            eps = entry_points(self.group)
            if name not in eps:
                try:
                    return super().get(name)
                except ScenarioError as exc:
                    more = (f" (installed: {', '.join(sorted(eps))})" if eps else "")
                    raise ScenarioError(
                        f"{exc}{more}; or name a plugin as package.module:Name or "
                        "path/to/file.py:Name") from None
            try:
                obj = eps[name].load()
            except Exception as exc:
                raise PluginError(f"{self.what} '{name}' (entry point {eps[name].value} of "
                                  f"group {self.group}) failed to load: {type(exc).__name__}:"
                                  f" {_short(exc)}") from None
        self._loaded[name] = obj
        return obj

    def __contains__(self, name: str) -> bool:
        if name in self._items:
            return True
        try:
            self.get(name)
        except MeshnetError:
            return False
        return True

    def choices(self) -> PluginChoices:
        """The names for a config ``option(choices=...)``: built-ins listed, plugins accepted."""
        return PluginChoices(self)


class PluginChoices(list):
    """Built-in names (listed in docs and hints) that also accept plugin specs and entry
    points, so :func:`meshnet.config.parse_table`'s choice check lets them through; the
    table's ``validate`` then loads them (:func:`check_plugin`)."""

    def __init__(self, registry: PluginRegistry):
        super().__init__(registry.names())
        self.registry = registry

    def __contains__(self, name) -> bool:
        if list.__contains__(self, name):
            return True
        if not isinstance(name, str):
            return False
        return is_spec(name) or name in entry_points(self.registry.group)


def check_plugin(registry: PluginRegistry, cfg, field: str, table: str, where: str) -> None:
    """Resolve ``cfg.<field>`` against the scenario folder and load it, or raise one line.

    A relative file path is made absolute (``where`` is the scenario file) so the run finds
    it from any working directory.
    """
    name = getattr(cfg, field)
    if registry.builtin(name):
        return
    base = Path(where).parent if where and not where.startswith("<") else None
    if is_spec(name):
        target = split_spec(name)[0]
        # A path given on the command line (--set) may be relative to the working folder.
        if _is_file(target) and base is not None and not (base / target).exists() \
                and Path(target).exists():
            base = Path.cwd()
    name = absolute_spec(name, base)
    object.__setattr__(cfg, field, name)
    try:
        registry.get(name)
    except ScenarioError as exc:
        raise ScenarioError(f"{where}: [{table}].{field}: {exc}") from None


def short_name(spec: str) -> str:
    """A label for reports and folder names: ``/a/b/pol.py:Greedy`` -> ``pol.py-Greedy``."""
    if not is_spec(spec):
        return spec
    target, attr = split_spec(spec)
    return f"{Path(target).name if _is_file(target) else target}-{attr}"
