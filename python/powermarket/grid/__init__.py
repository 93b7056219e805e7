"""Networked scenarios from pandapower and PyPSA grids.

``from_pandapower(net)`` and ``from_pypsa(network)`` build a ``pm.Scenario``
with one node per bus, one generator per power plant and one line per branch;
``extract_pandapower`` / ``extract_pypsa`` return the same conversion as a
``GridImport`` (the ``Scenario`` keyword arguments plus which grid element
became which node, generator and line) without building the scenario. Every
conversion rule is stated in ``docs/grids.md``.

pandapower and PyPSA are optional: they are imported when a function is
called, and ``pip install "powermarket[grid]"`` installs both.

The package: ``_common.py`` (the import result, islands, node names, the
checks both importers share), ``_pandapower.py`` and ``_pypsa.py`` (one
importer each).
"""

from powermarket.grid._common import GridImport
from powermarket.grid._pandapower import extract_pandapower, from_pandapower
from powermarket.grid._pypsa import extract_pypsa, from_pypsa

__all__ = [
    "GridImport",
    "extract_pandapower",
    "extract_pypsa",
    "from_pandapower",
    "from_pypsa",
]
