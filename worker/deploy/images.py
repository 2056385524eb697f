"""The pool's image and node agent: the Ubuntu release whose Python the package is built for.

The start task provisions each Python the worker is locked for on one Ubuntu release
(docs/design.md, "Pythons"): 3.8 on 22.04 (from the deadsnakes PPA), 3.12 on 24.04 (the
distribution's own). ``spec pool`` takes the image and node agent of the package's Python
(its manifest, else ``[package] python``, else 3.8, the package command's default); an image
in the spec file (``[pool] image`` with ``[pool] node_agent``) wins, and one whose node agent
names another Ubuntu release is refused before anything is deployed.
"""

from __future__ import annotations

import re
from typing import Any, Dict, NamedTuple, Tuple

from .errors import SpecError
from .specfile import Spec

DEFAULT_PYTHON = "3.8"


class NodeImage(NamedTuple):
    """A marketplace image and the Batch node agent that goes with it."""

    ubuntu: str
    image: Dict[str, str]
    node_agent: str


#: 22.04: the project's seed pool (BATCH.md 6). 24.04: Batch's own pool examples,
#: learn.microsoft.com/azure/batch/batch-spot-vms ("Canonical", "ubuntu-24_04-lts", "server"
#: with "batch.node.ubuntu 24.04"); publisher names are case-insensitive.
NODE_IMAGES: Dict[str, NodeImage] = {
    "3.8": NodeImage("22.04", {"publisher": "canonical", "offer": "0001-com-ubuntu-server-jammy",
                               "sku": "22_04-lts", "version": "latest"},
                     "batch.node.ubuntu 22.04"),
    "3.12": NodeImage("24.04", {"publisher": "canonical", "offer": "ubuntu-24_04-lts",
                                "sku": "server", "version": "latest"},
                      "batch.node.ubuntu 24.04"),
}
_UBUNTU_AGENT = re.compile(r"^batch\.node\.ubuntu (\d\d\.\d\d)$")
_MARKETPLACE = ("publisher", "offer", "sku")


def pool_image(spec: Spec) -> Tuple[Dict[str, str], str]:
    """The ``imageReference`` and ``nodeAgentSkuId`` of the pool for the package's Python."""
    python = spec.get("package", "python") or DEFAULT_PYTHON
    if python not in NODE_IMAGES:
        raise SpecError(
            "%s: the package is built for Python %s, but the worker's nodes run %s: build the "
            "package with --python %s" % (spec.source, python, _pairs(),
                                          " or ".join(NODE_IMAGES)))
    image, agent = spec.get("pool", "image"), spec.get("pool", "node_agent")
    if image is None and agent is None:
        ours = NODE_IMAGES[python]
        return dict(ours.image), ours.node_agent
    if image is None or agent is None:
        given, needed = ("image", "node_agent") if agent is None else ("node_agent", "image")
        raise SpecError("%s: [pool] %s needs [pool] %s too (the image and the node agent that "
                        "goes with it, e.g. %r for %r): add it, or remove [pool] %s"
                        % (spec.source, given, needed, NODE_IMAGES[python].node_agent,
                           NODE_IMAGES[python].image["offer"], given))
    _check_match(spec.source, python, agent)
    return _image_reference(spec.source, image), agent


def _check_match(source: str, python: str, agent: str) -> None:
    """An Ubuntu node agent must be the release the package's Python is provisioned on."""
    match = _UBUNTU_AGENT.match(agent)
    ours = NODE_IMAGES[python]
    if not match or match.group(1) == ours.ubuntu:
        return  # not Ubuntu: the user's own image, whose Python the start task looks for
    release = match.group(1)
    other = [p for p, node in NODE_IMAGES.items() if node.ubuntu == release]
    rebuild = ", or build the package with --python %s" % other[0] if other else ""
    raise SpecError(
        "%s: [pool] node_agent %r makes Ubuntu %s nodes, but the package is built for Python "
        "%s, which the worker provisions on Ubuntu %s: set [pool] image and node_agent to a "
        "%s image with %r (or remove both to take %s %s %s)%s"
        % (source, agent, release, python, ours.ubuntu, ours.ubuntu, ours.node_agent,
           ours.image["publisher"], ours.image["offer"], ours.image["sku"], rebuild))


def _image_reference(source: str, image: Dict[str, Any]) -> Dict[str, str]:
    """``[pool] image``: a marketplace image (publisher, offer, sku, optional version) or an
    Azure Compute Gallery image (id)."""
    keys = set(image)
    bad = sorted(k for k in keys if k not in _MARKETPLACE + ("version", "id"))
    values_ok = all(isinstance(v, str) and v for v in image.values())
    marketplace = keys >= set(_MARKETPLACE) and "id" not in keys
    if bad or not values_ok or not (marketplace or keys == {"id"}):
        raise SpecError(
            "%s: [pool] image must be {publisher, offer, sku[, version]} or {id} (strings), "
            "got %r; e.g. image = {publisher = \"canonical\", offer = \"ubuntu-24_04-lts\", "
            "sku = \"server\"}" % (source, image))
    if marketplace:
        return {"publisher": image["publisher"], "offer": image["offer"], "sku": image["sku"],
                "version": image.get("version", "latest")}
    return {"id": image["id"]}


def _pairs() -> str:
    return " or ".join("Python %s (Ubuntu %s)" % (python, node.ubuntu)
                       for python, node in NODE_IMAGES.items())
