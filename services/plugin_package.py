"""Build the Lightroom plug-in's release zip: ``LightroomBridge-<version>.lrplugin.zip``.

The zip holds exactly the plug-in folder's tracked files (``git ls-files`` of
``plugin/LightroomBridge.lrdevplugin``) under one ``LightroomBridge.lrplugin/``
folder, ready to unzip and add in Lightroom's Plug-in Manager. Nothing is
generated or bundled: the folder loads in Lightroom as it is checked out.

Only the standard library is used and the archive is reproducible (sorted
entries, fixed times and modes), so it builds the same on macOS, Windows and
Linux. The version is the package's (``pyproject.toml``, or the installed
metadata); the plug-in's ``Info.lua`` must carry the same one, or the build
stops with a message saying so.

    python -m services.plugin_package [DEST_DIR]     # default: dist
"""

import argparse
import os
import re
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PLUGIN_DIR = "LightroomBridge.lrdevplugin"
SHARED = Path("share") / "lightroom-bridge" / PLUGIN_DIR  # where the wheel installs it (pyproject data-files)


def _source():
    """The plug-in folder: the checkout's, else the copy an installed wheel put under share/."""
    checkout = ROOT / "plugin" / PLUGIN_DIR
    if checkout.is_dir():
        return checkout
    import site
    for prefix in (sys.prefix, getattr(site, "USER_BASE", None) or ""):
        installed = Path(prefix) / SHARED
        if prefix and installed.is_dir():
            return installed
    return checkout  # missing: build() says so


SOURCE = _source()
FOLDER = "LightroomBridge.lrplugin"  # the folder name inside the zip (a release plug-in)
DISTRIBUTION = "lightroom-bridge"
ZIP_TIME = (1980, 1, 1, 0, 0, 0)  # the earliest time a zip entry can hold: the same bytes on every build


class PackageError(Exception):
    """The plug-in cannot be packaged as it is (missing folder or files, versions that disagree)."""


def package_version(root=ROOT):
    """The release version: ``[project] version`` of ``root/pyproject.toml``, else the installed metadata."""
    pyproject = Path(root) / "pyproject.toml"
    if pyproject.is_file():
        text = pyproject.read_text(encoding="utf-8")
        try:
            import tomllib  # Python 3.11+
        except ImportError:  # 3.10: the [project] table's version line
            match = re.search(r'^\[project\]\s*$(.*?)^version\s*=\s*"([^"]+)"', text, re.M | re.S)
            if match and not re.search(r"^\[", match.group(1), re.M):
                return match.group(2)
        else:
            version = tomllib.loads(text).get("project", {}).get("version")
            if version:
                return version
    from importlib import metadata
    try:
        return metadata.version(DISTRIBUTION)
    except metadata.PackageNotFoundError:
        raise PackageError(f"no version: neither {pyproject} nor an installed {DISTRIBUTION}") from None


def info_version(source=SOURCE):
    """``major.minor.revision`` from the ``VERSION`` table of the plug-in's Info.lua."""
    text = (Path(source) / "Info.lua").read_text(encoding="utf-8")
    table = re.search(r"VERSION\s*=\s*\{([^}]*)\}", text)
    fields = dict(re.findall(r"(\w+)\s*=\s*(\d+)", table.group(1))) if table else {}
    try:
        return f"{fields['major']}.{fields['minor']}.{fields['revision']}"
    except KeyError:
        raise PackageError(f"{source}/Info.lua has no VERSION = {{ major =, minor =, revision = }}") from None


def plugin_files(source=SOURCE):
    """The plug-in's files as sorted paths relative to ``source`` ('/'-separated).

    In a git checkout: the tracked files (so a stray or ignored file never
    ships). Elsewhere (a source archive): every file but hidden ones.
    """
    source = Path(source)
    try:
        res = subprocess.run(["git", "ls-files", "-z", "--", "."], cwd=source, capture_output=True, timeout=60)
    except (OSError, subprocess.SubprocessError):
        res = None
    if res is not None and res.returncode == 0 and res.stdout:
        names = [n for n in res.stdout.decode("utf-8").split("\0") if n]
    else:
        names = [p.relative_to(source).as_posix() for p in source.rglob("*")
                 if p.is_file() and not any(part.startswith(".") for part in p.relative_to(source).parts)]
    missing = [n for n in names if not (source / n).is_file()]
    if missing:
        raise PackageError(f"tracked by git but missing from {source}: {', '.join(missing)} (git rm them, or restore)")
    return sorted(names)


def build(dest_dir, source=SOURCE, version=None):
    """Write ``dest_dir/LightroomBridge-<version>.lrplugin.zip``; returns its path.

    Raises PackageError when the plug-in folder is missing or incomplete, or
    when Info.lua's version is not the package's.
    """
    source = Path(source)
    if not (source / "Info.lua").is_file():
        raise PackageError(f"no plug-in at {source} (Info.lua missing): build from a checkout of the project")
    version = version or package_version()
    plugin = info_version(source)
    if plugin != version:
        raise PackageError(f"{source / 'Info.lua'} says version {plugin}, the package {version}: keep them in step "
                           "(Info.lua VERSION, WebSocketClient.PLUGIN_VERSION, pyproject.toml)")
    names = plugin_files(source)
    dest = Path(dest_dir)
    dest.mkdir(parents=True, exist_ok=True)
    target = dest / f"LightroomBridge-{version}.lrplugin.zip"
    fd, partial = tempfile.mkstemp(prefix=".LightroomBridge-", suffix=".zip.part", dir=dest)
    os.close(fd)
    try:
        with zipfile.ZipFile(partial, "w", zipfile.ZIP_DEFLATED) as archive:
            for name in names:
                entry = zipfile.ZipInfo(f"{FOLDER}/{name}", date_time=ZIP_TIME)
                entry.create_system = 3  # Unix, whatever system builds it, so the modes below are read
                entry.external_attr = 0o100644 << 16
                entry.compress_type = zipfile.ZIP_DEFLATED
                archive.writestr(entry, (source / name).read_bytes())
        os.replace(partial, target)
    except BaseException:
        Path(partial).unlink(missing_ok=True)
        raise
    return target


def main(argv=None):
    """``python -m services.plugin_package [DEST_DIR]``: build the zip, print its path; exit 1 with a reason."""
    parser = argparse.ArgumentParser(prog="python -m services.plugin_package", description=__doc__.split("\n")[0])
    parser.add_argument("dest_dir", nargs="?", default="dist", help="where to write the zip (default: dist)")
    args = parser.parse_args(argv)
    try:
        path = build(args.dest_dir)
    except (PackageError, OSError) as ex:
        print(f"cannot build the plug-in: {ex}", file=sys.stderr)
        return 1
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
