"""Licences of the packages the app ships, from their own metadata (never typed by hand).

``build.spec`` calls :func:`collect_licenses` at build time for every distribution whose modules went
into the frozen app: each one's licence files (``License-File`` entries of its metadata, else the
usual LICENSE/COPYING/NOTICE names in its dist-info) are copied under ``licenses/<name>/`` with an
``index.json`` of names, versions and licence expressions. Help → About shows that index in a frozen
app; from source it reads the same facts live from the installed metadata (:func:`bundled_packages`).
"""

from __future__ import annotations

import importlib.metadata as metadata
import json
import re
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

from core.resources import is_frozen, licenses_dir

INDEX_FILE = "index.json"
LICENSE_NAME = re.compile(r"^(LICEN[CS]E|COPYING|NOTICE|AUTHORS)", re.IGNORECASE)
APP_DISTRIBUTION = "vision-platform"
STANDARD_TEXT_DIRS = (Path("/usr/share/common-licenses"),)
STANDARD_FILES = {"LGPL-3.0": "LGPL-3", "LGPL-2.1": "LGPL-2.1", "GPL-3.0": "GPL-3", "GPL-2.0": "GPL-2",
                  "Apache-2.0": "Apache-2.0", "MPL-2.0": "MPL-2.0", "CC0-1.0": "CC0-1.0"}


@dataclass(frozen=True)
class PackageLicense:
    name: str
    version: str
    license: str  # SPDX expression or the metadata's licence field / classifier ("unknown" if none)
    files: tuple[str, ...] = ()  # relative to the licences folder (frozen app only)


def _field(meta: metadata.PackageMetadata, name: str) -> str:
    values = meta.get_all(name) or []
    return str(values[0]) if values else ""


def _license_text(dist: metadata.Distribution) -> str:
    meta = dist.metadata
    expression = _field(meta, "License-Expression")
    if expression:
        return expression
    declared = _field(meta, "License").strip()
    if declared and len(declared) < 80 and "\n" not in declared:
        return declared
    classifiers = [c.split("::")[-1].strip() for c in meta.get_all("Classifier") or [] if c.startswith("License ::")]
    return ", ".join(classifiers) or ("see licence file" if declared else "unknown")


def _license_files(dist: metadata.Distribution) -> list[metadata.PackagePath]:
    files = dist.files or []
    declared = set(dist.metadata.get_all("License-File") or [])
    chosen = [f for f in files if ".dist-info" in str(f) and (f.name in declared or LICENSE_NAME.match(f.name))]
    return [f for f in chosen if not str(f).endswith((".pyc", ".py"))]


def standard_texts(expression: str) -> list[Path]:
    """The operating system's copies of the standard licences an SPDX expression names (Debian/Ubuntu
    keep them in /usr/share/common-licenses), for a package whose metadata ships no licence file of its
    own (PySide6 and shiboken6 declare LGPL-3.0 but ship no text)."""
    found = []
    for spdx in re.findall(r"[A-Za-z0-9.+-]+", expression):
        name = STANDARD_FILES.get(re.sub(r"-(only|or-later)$|\+$", "", spdx))
        for folder in STANDARD_TEXT_DIRS:
            if name and (folder / name).is_file() and folder / name not in found:
                found.append(folder / name)
    return found


def distributions_for(top_level_modules: Iterable[str]) -> list[metadata.Distribution]:
    """The installed distributions that provide these top-level modules (one each, sorted by name)."""
    providers = metadata.packages_distributions()
    names = {dist for module in top_level_modules for dist in providers.get(module, [])}
    found = {}
    for name in names:
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            continue
        found[dist.metadata["Name"].lower()] = dist
    return [found[key] for key in sorted(found)]


def _describe(dist: metadata.Distribution, files: tuple[str, ...] = ()) -> PackageLicense:
    return PackageLicense(dist.metadata["Name"], dist.version, _license_text(dist), files)


def collect_licenses(top_level_modules: Iterable[str], out: Path) -> list[PackageLicense]:
    """Copy each providing distribution's licence files under ``out/<name>/`` and write ``index.json``."""
    packages = []
    for dist in distributions_for(top_level_modules):
        name = dist.metadata["Name"]
        sources = [Path(str(dist.locate_file(entry))) for entry in _license_files(dist)]
        copied = []
        for source in sources or standard_texts(_license_text(dist)):
            target = out / name / source.name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(source.read_bytes())
            copied.append(f"{name}/{source.name}")
        packages.append(_describe(dist, tuple(copied)))
    out.mkdir(parents=True, exist_ok=True)
    (out / INDEX_FILE).write_text(json.dumps([asdict(p) for p in packages], indent=1), encoding="utf-8")
    return packages


def _runtime_requirements() -> list[str]:
    requirements = metadata.requires(APP_DISTRIBUTION) or []
    return [re.split(r"[ ;<>=!~\[]", line, maxsplit=1)[0] for line in requirements if "extra ==" not in line]


def bundled_packages() -> list[PackageLicense]:
    """What the app ships, with versions and licences: the build's index when frozen, else the app's
    declared runtime dependencies as installed."""
    index = licenses_dir() / INDEX_FILE
    if is_frozen() and index.is_file():
        rows = json.loads(index.read_text(encoding="utf-8"))
        return [PackageLicense(row["name"], row["version"], row["license"], tuple(row["files"])) for row in rows]
    packages = []
    for name in sorted({APP_DISTRIBUTION, *_runtime_requirements()}, key=str.lower):
        try:
            packages.append(_describe(metadata.distribution(name)))
        except metadata.PackageNotFoundError:
            continue
    return packages


def license_texts(package: PackageLicense) -> list[str]:
    """The licence files of one package: the bundled copies when frozen, else its installed dist-info's."""
    if package.files:
        files = [licenses_dir() / name for name in package.files]
        return [file.read_text(encoding="utf-8", errors="replace") for file in files if file.is_file()]
    try:
        dist = metadata.distribution(package.name)
    except metadata.PackageNotFoundError:
        return []
    files = [Path(str(dist.locate_file(entry))) for entry in _license_files(dist)] or standard_texts(package.license)
    return [file.read_text(encoding="utf-8", errors="replace") for file in files]
