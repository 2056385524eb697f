"""The account's applications and their package versions: what the account plane creates,
uploads and activates, what the data plane lists (``GET /applications``), and what nodes
extract. A version's zip is kept on disk once the version is active.

References are checked as Batch checks them when a pool or task names a package: the
application and version must exist and be active, and a reference without a version needs
the application's default version (409 ``InvalidApplicationPackageReferences``).
"""

from __future__ import annotations

import json
import shutil
import time
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Sequence, Tuple

from ...deploy.localbatch.documents import PackageRef
from .errors import BatchError

if TYPE_CHECKING:
    from .app import Call
    from .service import BatchService


class Package:
    """One version of an application."""

    def __init__(self, version: str) -> None:
        self.version = version
        self.state = "Pending"
        self.format: Optional[str] = None
        self.path: Optional[Path] = None
        self.created = time.time()
        self.activated: Optional[float] = None
        self.version_stamp = 0


class Application:
    def __init__(self, app_id: str, display_name: Optional[str] = None) -> None:
        self.id = app_id
        self.display_name = display_name
        self.allow_updates = True
        self.default_version: Optional[str] = None
        self.packages: Dict[str, Package] = {}
        self.created = time.time()
        self.version_stamp = 0

    def active(self) -> List[str]:
        return [v for v, p in self.packages.items() if p.state == "Active"]


class Applications:
    """The account's applications (ids are case-insensitive, as Batch's)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.apps: Dict[str, Application] = {}

    def get(self, app_id: str) -> Optional[Application]:
        return self.apps.get(app_id.lower())

    def ensure(self, app_id: str) -> Application:
        app = self.get(app_id)
        if app is None:
            app = self.apps[app_id.lower()] = Application(app_id)
        return app

    def activate(self, app: Application, package: Package, data_path: Path, fmt: str) -> None:
        """Keep the uploaded zip as the version's package."""
        target = self.folder / app.id.lower() / (package.version + ".zip")
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_suffix(".tmp")
        shutil.copyfile(str(data_path), str(tmp))
        tmp.replace(target)
        package.path, package.state, package.format = target, "Active", fmt
        package.activated = time.time()
        package.version_stamp += 1

    def add_zip(self, archive: Path, app_id: Optional[str] = None,
                version: Optional[str] = None, default: bool = True) -> Tuple[str, str]:
        """An active version from a zip (``emulate --batch-package``, tests): the app id and
        version come from the package's manifest.json (``python -m worker package``) unless
        given."""
        if app_id is None or version is None:
            manifest = _manifest(archive)
            app_id = app_id or str(manifest["name"])
            version = version or str(manifest["version"])
        app = self.ensure(app_id)
        package = app.packages.setdefault(version, Package(version))
        self.activate(app, package, archive, "zip")
        if default or app.default_version is None:
            app.default_version = version
        return app.id, version

    def resolve(self, ref: PackageRef) -> Tuple[str, str, Path, bool]:
        """(app id, version, zip, whether the reference is to the default version)."""
        app = self.get(ref.app)
        version = ref.version or (app.default_version if app else None)
        package = app.packages.get(version) if app and version else None
        if app is None or package is None or package.path is None:
            raise BatchError("InvalidApplicationPackageReferences", values=[
                ("ApplicationId", ref.app), ("Version", ref.version or "(default)")])
        return app.id, package.version, package.path, ref.version is None

    def check_refs(self, refs: Optional[Sequence[Dict[str, Any]]]) -> None:
        for ref in refs or []:
            self.resolve(PackageRef(ref["applicationId"], ref.get("version")))

    def to_json(self, app: Application) -> Dict[str, Any]:
        return {"id": app.id, "displayName": app.display_name or app.id,
                "versions": sorted(app.active())}


def _manifest(archive: Path) -> Dict[str, Any]:
    try:
        with zipfile.ZipFile(str(archive)) as handle:
            return json.loads(handle.read("manifest.json").decode("utf-8"))
    except (OSError, KeyError, ValueError, zipfile.BadZipFile) as e:
        raise ValueError("%s is not an application package with a manifest.json (%s): give "
                         "its application id and version" % (archive, e)) from None


# -- the data plane's operations ---------------------------------------------------------------

def list_applications(service: "BatchService", call: "Call") -> Any:
    apps = [a for a in service.apps.apps.values() if a.active()]
    return call.listing(apps, "applications", filterable=False, render=service.apps.to_json,
                        key=lambda a: a.id.lower())


def get_application(service: "BatchService", call: "Call") -> Any:
    app = service.apps.get(call.params["applicationId"])
    if app is None or not app.active():
        raise BatchError("ApplicationNotFound")
    return call.document(200, service.apps.to_json(app), "applications/@Element")
