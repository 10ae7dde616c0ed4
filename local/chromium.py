"""Debian's Chromium for the console's browser tests (tests/console), installed like DynamoDB Local.

Playwright's own browser download (`playwright install`) fetches a build from outside the
package registries, which this workplace (and CI) cannot reach; Debian's `chromium` package
can be installed by apt. Playwright for Python drives it through `executable_path`.

    python -m local.chromium --install   # apt-get install chromium when /usr/bin/chromium is missing
    python -m local.chromium             # print the path, or exit 1 when missing

`CHROMIUM` names another binary (e.g. a Chrome of your own); then nothing is installed.
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from pathlib import Path

# One lock for installing the test tools: two test runs installing at once wait for each other.
from local.dynamodb_local import _install_lock

DEFAULT_PATH = Path("/usr/bin/chromium")
APT_PACKAGES = ("chromium", "fonts-wqy-zenhei")  # the browser, and a font for the console's Chinese text
CJK_FONT = Path("/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc")
INSTALL_TIMEOUT_SECONDS = 900

# Headless, and nothing that reaches out to the network on its own (the machine's network is closed).
LAUNCH_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync")


class ChromiumUnavailable(RuntimeError):
    """No Chromium binary, and it could not be installed."""


def chromium_path() -> Path:
    return Path(os.environ.get("CHROMIUM") or DEFAULT_PATH)


def find_chromium() -> Path | None:
    path = chromium_path()
    return path if path.is_file() and os.access(path, os.X_OK) else None


def _apt(args: list[str]) -> None:
    if shutil.which("apt-get") is None:
        raise ChromiumUnavailable("apt-get is missing: install Chromium yourself and set CHROMIUM=/path/to/it")
    prefix: list[str] = []
    if os.geteuid() != 0:
        if shutil.which("sudo") is None:
            raise ChromiumUnavailable("not root and no sudo: run `apt-get install -y chromium` as root")
        prefix = ["sudo", "-n"]
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    result = subprocess.run([*prefix, "apt-get", *args], env=env, timeout=INSTALL_TIMEOUT_SECONDS)
    if result.returncode != 0:
        raise ChromiumUnavailable(f"apt-get {' '.join(args)} exited with {result.returncode}")


def _missing_packages() -> list[str]:
    missing = []
    if find_chromium() is None and not os.environ.get("CHROMIUM"):
        missing.append(APT_PACKAGES[0])
    if not CJK_FONT.is_file():
        missing.append(APT_PACKAGES[1])
    return missing


def install(verbose: bool = True) -> Path:
    """Install Debian's chromium (and the CJK font) when missing (a no-op otherwise)."""
    if os.environ.get("CHROMIUM") and find_chromium() is None:
        raise ChromiumUnavailable(f"CHROMIUM={os.environ['CHROMIUM']} is not an executable file")
    if _missing_packages():
        with _install_lock():
            missing = _missing_packages()
            if missing:
                if verbose:
                    print(f"chromium: installing Debian's {' '.join(missing)} (once) ...", flush=True)
                try:
                    _apt(["install", "-y", "--no-install-recommends", *missing])
                except ChromiumUnavailable:  # an empty or stale package list: refresh it once, then retry
                    _apt(["update"])
                    _apt(["install", "-y", "--no-install-recommends", *missing])
    found = find_chromium()
    if found is None:
        raise ChromiumUnavailable(f"{APT_PACKAGES[0]} installed but {chromium_path()} is missing")
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--install", action="store_true", help="install Debian's chromium when missing")
    args = parser.parse_args(argv)
    try:
        path = install() if args.install else find_chromium()
    except ChromiumUnavailable as error:
        print(f"chromium: {error}", file=sys.stderr)
        return 1
    if path is None:
        print(f"chromium: {chromium_path()} is missing; run `python -m local.chromium --install`", file=sys.stderr)
        return 1
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
